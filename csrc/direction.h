// Step 1 of an iteration (kernels/reference.py TorchKernels.direction), fused per problem:
// fixed-set mask, two-loop recursion on the free variables, descent check with restart,
// and the first trial step. q lives in a per-thread buffer; x, g and the bounds are read
// once, the history once per loop, and d written once.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "batch.h"
#include "two_loop.h"

namespace intriguing_fast {

template <typename T, typename H>
void direction(const Batch<T, H>& st, const int64_t* rows, int64_t k) {
  const int64_t n = st.n, m = st.m;
#pragma omp parallel
  {
    std::vector<T> q(n), alpha(m);
    std::vector<uint8_t> free(n);
#pragma omp for schedule(static)
    for (int64_t i = 0; i < k; ++i) {
      const int64_t b = rows[i];
      if (!st.need_dir[b]) continue;
      const T *x = st.x + b * n, *g = st.g + b * n, *lo = st.lower + b * st.bound_stride,
              *hi = st.upper + b * st.bound_stride;
      T* d = st.d + b * n;
      T qq = 0;
#pragma omp simd reduction(+ : qq)
      for (int64_t i = 0; i < n; ++i) {
        const bool fr = !((x[i] <= lo[i] && g[i] > 0) || (x[i] >= hi[i] && g[i] < 0));
        free[i] = fr;
        q[i] = fr ? g[i] : T(0);
        qq += q[i] * q[i];
      }
      two_loop_row(q.data(), st.S + b * m * n, st.Y + b * m * n, st.rho + b * m, st.gamma[b], st.hist_len[b],
                   st.head[b], m, n, alpha.data());
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
      const T tiny = std::numeric_limits<T>::min();
      st.t[b] = st.hist_len[b] > 0 ? T(1) : T(1) / std::max(std::sqrt(dd), tiny);
      st.gd[b] = gd;
      st.ls_iter[b] = 0;
      st.need_dir[b] = false;
    }
  }
}

}  // namespace intriguing_fast
