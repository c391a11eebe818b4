typedef int thr_placeholder_task;
