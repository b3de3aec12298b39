// Raw views of the engine's BatchState (intriguing_fast/engine/state.py): row b of every
// field belongs to problem b; S, Y are [rows, m, n] ring buffers. The
// bounds of problem b start at b * bound_stride: bound_stride is n, or 0 when all problems
// share one row of bounds.
#pragma once

#include <omp.h>

#include <cstdint>

namespace intriguing_fast {

// Status codes: engine/status.py's Status (tests/test_kernels_cpp.py pins them together).
enum Status : int64_t { RUNNING = -1, CONVERGED_GTOL = 0, CONVERGED_FTOL = 1, MAX_ITER = 2,
                        MAX_FUN = 3, LINE_SEARCH_FAILED = 4, NONFINITE = 5,
                        STOPPED = 6 };  // STOPPED: set by the caller (engine/solver.py), never by a kernel

template <typename T, typename H>
struct Batch {
  int64_t rows, n, m, bound_stride;
  const T *lower, *upper;
  T *x, *f, *g, *d, *gd, *t, *x_trial, *slope, *gamma, *pg_norm;
  H *S, *Y;
  int64_t *hist_len, *head, *ls_iter, *status, *nit, *nfev;
  bool *need_dir, *box_first;
};

// Solver settings (engine/state.py LBFGSBOptions).
struct Settings {
  int64_t max_iter, max_fun, max_ls;
  double gtol, ftol, c1, c2;
};

// The calling thread's contiguous share [begin, end) of k rows inside a parallel region. A
// thread may read ahead within its own share (to prefetch) without racing the others' writes.
inline void thread_share(int64_t k, int64_t& begin, int64_t& end) {
  const int64_t t = omp_get_thread_num(), threads = omp_get_num_threads();
  begin = k * t / threads;
  end = k * (t + 1) / threads;
}

// Slot of the i-th newest pair of a ring buffer whose next write goes to `head`.
inline int64_t newest(int64_t head, int64_t i, int64_t m) { return ((head - 1 - i) % m + m) % m; }

}  // namespace intriguing_fast
