typedef int thr_placeholder_worker;
