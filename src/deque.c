typedef int thr_placeholder_deque;
