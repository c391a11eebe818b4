typedef int thr_placeholder_pool;
