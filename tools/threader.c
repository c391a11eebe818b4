/*
 * threader — a d8-like shell: runs a script in a host isolate whose globals
 * are `threader`, `thread` and `console.log`.
 *
 *   out/threader script.js [args...]
 *
 * It pumps completions and microtasks until nothing is pending, then exits 0;
 * on an uncaught exception (or a promise rejected with no handler) it prints
 * the error and exits 1.  It is the reference embedder of include/threader.h
 * and uses nothing else.
 *
 * Environment: THREADER_MAX_WORKERS=N sets the pool size (default: one per
 * online CPU).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "threader.h"

static void usage(FILE* out) {
  fprintf(out,
          "usage: threader script.js [args...]\n"
          "  Runs script.js with the globals threader, thread and console.\n");
}

int main(int argc, char** argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
    usage(stdout);
    return 0;
  }

  thr_host_options_t options;
  thr_host_options_init(&options);
  options.argc = argc - 2;
  options.argv = argv + 2;
  const char* workers = getenv("THREADER_MAX_WORKERS");
  if (workers != NULL) options.pool.max_workers = (unsigned)atoi(workers);

  thr_host_t* host = NULL;
  int rc = thr_host_init(&options, &host);
  if (rc != 0) {
    fprintf(stderr, "threader: cannot start: %s (%s)\n", thr_strerror(rc),
            thr_err_name(rc));
    return 1;
  }
  char* error = NULL;
  rc = thr_host_run_file(host, argv[1], &error);
  if (rc != 0) {
    fprintf(stderr, "%s\n", error != NULL ? error : thr_strerror(rc));
  }
  free(error);
  thr_host_close(host);
  return rc == 0 ? 0 : 1;
}
