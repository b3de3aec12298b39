// Step 1 of an iteration (engine/backends/reference.py TorchKernels.direction), fused per problem:
// fixed-set mask, two-loop recursion on the free variables, descent check with restart,
// and the first trial step. q lives in a per-thread buffer; x, g and the bounds are read
// once, the history once per loop, and d written once, while the next problem's data is
// prefetched.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "batch.h"
#include "two_loop.h"

namespace intriguing_fast {

// Per-thread scratch of the direction step: q, the two-loop's alphas and rhos, the free-variable mask.
template <typename T>
struct DirectionScratch {
  std::vector<T> q, alpha, rho, free;
  DirectionScratch(int64_t n, int64_t m) : q(n), alpha(m), rho(m), free(n) {}
};

// Direction of problem b, while `pf` streams in the next problem's data.
template <typename T, typename H>
void direction_row(const Batch<T, H>& st, int64_t b, DirectionScratch<T>& w, Prefetcher& pf) {
  const int64_t n = st.n, m = st.m;
  const T *x = st.x + b * n, *g = st.g + b * n, *lo = st.lower + b * st.bound_stride,
          *hi = st.upper + b * st.bound_stride;
  T *d = st.d + b * n, *q = w.q.data();
  T* free = w.free.data();
  T qq = 0;
#pragma omp simd reduction(+ : qq)
  for (int64_t i = 0; i < n; ++i) {
    const bool fr = !((x[i] <= lo[i] && g[i] > 0) || (x[i] >= hi[i] && g[i] < 0));
    free[i] = fr ? T(1) : T(0);
    q[i] = fr ? g[i] : T(0);
    qq += q[i] * q[i];
  }
  two_loop_row(q, free, st.S + b * m * n, st.Y + b * m * n, st.gamma[b], st.hist_len[b], st.head[b], m, n,
               w.alpha.data(), w.rho.data(), pf);
  T gd = 0, dd = 0;
#pragma omp simd reduction(+ : gd, dd)
  for (int64_t i = 0; i < n; ++i) {
    d[i] = free[i] ? -q[i] : T(0);
    gd += g[i] * d[i];
    dd += d[i] * d[i];
  }
  if (!(gd < 0) && st.hist_len[b] > 0) {  // not a descent direction: drop the history
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) d[i] = free[i] ? -g[i] : T(0);
    gd = -qq;
    dd = qq;
    st.hist_len[b] = 0;
    st.head[b] = 0;
  }
  // A gradient step has unit length, except a problem's first where box_first is set (a box
  // with every bound finite): scipy's first step, the segment to P(x - g) with t = 1, which a
  // rejection shortens along the segment.
  const bool first_boxed = st.box_first[b] && st.nit[b] == 0;
  if (first_boxed) {
    gd = 0;
#pragma omp simd reduction(+ : gd)
    for (int64_t i = 0; i < n; ++i) {  // segment_to_projected_gradient_step in engine/backends/reference.py
      const T c = std::min(std::max(x[i] - g[i], lo[i]), hi[i]), di = c - x[i];
      const T nudge = T(4) * std::numeric_limits<T>::epsilon() * std::max(std::abs(c), std::abs(x[i]));
      d[i] = c == lo[i] || c == hi[i] ? di + T((di > 0) - (di < 0)) * nudge : di;
      gd += g[i] * d[i];
    }
  }
  st.t[b] = st.hist_len[b] > 0 || first_boxed ? T(1) : T(1) / safe_norm(d, dd, n);
  st.gd[b] = gd;
  st.ls_iter[b] = 0;
  st.need_dir[b] = false;
}

// Runs direction_row for the problems of `rows` that need one, then after(i, b) for every row
// i, problem b (the fused propose step puts the trial point there).
template <typename T, typename H, typename After>
void for_each_direction(const Batch<T, H>& st, const int64_t* rows, int64_t k, After after) {
  const int64_t n = st.n, m = st.m;
#pragma omp parallel
  {
    DirectionScratch<T> scratch(n, m);
    int64_t begin, end;
    thread_share(k, begin, end);
    for (int64_t i = begin; i < end; ++i) {
      const int64_t b = rows[i];
      if (st.need_dir[b]) {
        // Stream in the next problem that needs a direction while this one computes: its
        // history (valid slots are 0..len-1 until the ring wraps, all of them after) and rows.
        Prefetcher pf;
        int64_t next = i + 1;
        while (next < end && !st.need_dir[rows[next]]) ++next;
        if (next < end) {
          const int64_t nb = rows[next], bytes = st.hist_len[nb] * n * int64_t(sizeof(H));
          pf.add(st.S + nb * m * n, bytes);
          pf.add(st.Y + nb * m * n, bytes);
          pf.add(st.x + nb * n, n * int64_t(sizeof(T)));
          pf.add(st.g + nb * n, n * int64_t(sizeof(T)));
        }
        direction_row(st, b, scratch, pf);
      }
      after(i, b);
    }
  }
}

template <typename T, typename H>
void direction(const Batch<T, H>& st, const int64_t* rows, int64_t k) {
  for_each_direction(st, rows, k, [](int64_t, int64_t) {});
}

}  // namespace intriguing_fast
