// arena_trim.h — giving glibc's free malloc pages back to the OS from any
// worker thread, safely even where glibc's malloc is not the process's
// allocator.
//
// Any thread may call TrimMallocArenas, at any time, concurrently.
#ifndef THREADER_V8C_ARENA_TRIM_H_
#define THREADER_V8C_ARENA_TRIM_H_

namespace v8c {

// malloc_trim(0) where the C library is glibc; nothing elsewhere.
void TrimMallocArenas();

}  // namespace v8c

#endif  // THREADER_V8C_ARENA_TRIM_H_
