typedef int thr_placeholder_timer;
