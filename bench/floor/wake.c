// The machine's floor for tiny-task latency: a round trip between two threads
// that sleep while waiting (mutex + condition variable, the way a parked
// worker and an event loop wait), and the same with both threads spinning.
// Any pool whose workers park pays at least the first number per task.
//
//   cc -O2 -pthread bench/floor/wake.c -o /tmp/wake && /tmp/wake
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { N = 2000 };
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t to_pong = PTHREAD_COND_INITIALIZER, to_ping = PTHREAD_COND_INITIALIZER;
static int turn;
static atomic_int spin_turn;

static void *pong(void *arg) {
  (void)arg;
  for (int i = 0; i < N; i++) {
    pthread_mutex_lock(&mu);
    while (turn != 1) pthread_cond_wait(&to_pong, &mu);
    turn = 0;
    pthread_cond_signal(&to_ping);
    pthread_mutex_unlock(&mu);
  }
  for (int i = 0; i < N; i++) {
    while (atomic_load(&spin_turn) != 1) {}
    atomic_store(&spin_turn, 0);
  }
  return NULL;
}

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(void) {
  static double s[N];
  pthread_t t;
  pthread_create(&t, NULL, pong, NULL);
  for (int i = 0; i < N; i++) {
    double t0 = now_us();
    pthread_mutex_lock(&mu);
    turn = 1;
    pthread_cond_signal(&to_pong);
    while (turn != 0) pthread_cond_wait(&to_ping, &mu);
    pthread_mutex_unlock(&mu);
    s[i] = now_us() - t0;
    struct timespec gap = {0, 50000};  // let the other thread go to sleep
    nanosleep(&gap, NULL);
  }
  qsort(s, N, sizeof s[0], cmp);
  printf("sleeping threads: round trip p50 %.1f us, p99 %.1f us\n", s[N / 2], s[N * 99 / 100]);
  for (int i = 0; i < N; i++) {
    double t0 = now_us();
    atomic_store(&spin_turn, 1);
    while (atomic_load(&spin_turn) != 0) {}
    s[i] = now_us() - t0;
  }
  qsort(s, N, sizeof s[0], cmp);
  printf("spinning threads: round trip p50 %.2f us, p99 %.2f us\n", s[N / 2], s[N * 99 / 100]);
  pthread_join(t, NULL);
  return 0;
}
