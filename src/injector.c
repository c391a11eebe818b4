typedef int thr_placeholder_injector;
