// arena_trim_unittest.cc — tests for v8c/arena_trim.cc: workers trimming
// glibc's malloc arenas at once must not corrupt glibc's arena accounting.
//
// The race exists only while glibc's malloc has not been set up, that is in
// a process whose allocator is not glibc's (AddressSanitizer's here, an
// embedder's replacement malloc in the field), before its first trim.  So
// the test forks: each child starts with the parent's untouched glibc
// malloc, and this binary calls no trim in the parent.  In the plain build
// glibc's malloc was set up before main() and the test passes trivially;
// tools/test runs it under ASan too, where it fails (a crash or glibc's
// abort in most children) if the first trim is not serialised.

#include <gtest/gtest.h>
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>
#include <vector>

#include "../v8c/arena_trim.h"

namespace {

constexpr int kThreads = 8;
constexpr int kChildren = 40;

// In a forked child: kThreads threads released together each trim; the
// child exits 0 if all of them returned (a corrupted arena aborts it).
[[noreturn]] void TrimFromManyThreadsAndExit() {
  pthread_barrier_t start;
  pthread_barrier_init(&start, nullptr, kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; i++) {
    threads.emplace_back([&start] {
      pthread_barrier_wait(&start);
      v8c::TrimMallocArenas();
    });
  }
  for (auto& t : threads) t.join();
  _exit(0);
}

TEST(ArenaTrimTest, ThreadsTrimmingAtOnceInAFreshProcessDoNotCorruptGlibcsArenas) {
  int failed = 0;
  for (int i = 0; i < kChildren; i++) {
    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) TrimFromManyThreadsAndExit();
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) failed++;
  }
  EXPECT_EQ(failed, 0) << failed << " of " << kChildren << " children died";
}

TEST(ArenaTrimTest, RepeatedTrimsFromManyThreadsAreSafe) {
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; i++) {
    threads.emplace_back([] {
      for (int j = 0; j < 20; j++) v8c::TrimMallocArenas();
    });
  }
  for (auto& t : threads) t.join();
}

}  // namespace
