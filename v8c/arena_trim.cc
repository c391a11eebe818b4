// arena_trim.cc — see arena_trim.h.
//
// Why the first call is serialised: glibc sets its malloc up lazily, on
// the first call into it (ptmalloc_init), and that set-up is not
// thread-safe.  In a plain process the main thread's first malloc does it
// long before any worker exists.  But where malloc itself is replaced
// (AddressSanitizer, or an embedder's allocator: jemalloc, tcmalloc,
// Chromium's PartitionAlloc), glibc's malloc_trim may be the process's
// first call into glibc's malloc, and two workers trimming at once (a
// pool shutting down) then both run the set-up: both claim glibc's main
// arena while it counts one owner.  The second to exit aborts the process
// ("malloc assertion failure in __malloc_arena_thread_freeres:
// a->attached_threads > 0"), or mtrim reads a half-built arena and
// crashes.  With an unserialised first trim, 8 threads trimming at once
// in a fresh ASan process (the test in tests/arena_trim_unittest.cc)
// crashed it 148 times in 300.  Once set up, malloc_trim locks each arena
// and is safe to call concurrently, so only the first call needs the
// once-flag.
#include "arena_trim.h"

// Any C library header defines __GLIBC__ on glibc; test it only after one.
#include <cstdlib>

#ifdef __GLIBC__
#include <malloc.h>

#include <mutex>
#endif

namespace v8c {

void TrimMallocArenas() {
#ifdef __GLIBC__
  static std::once_flag first_trim;
  bool trimmed_now = false;
  std::call_once(first_trim, [&trimmed_now] {
    malloc_trim(0);
    trimmed_now = true;
  });
  if (!trimmed_now) malloc_trim(0);
#endif
}

}  // namespace v8c
