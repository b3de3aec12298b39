// Step 3 (TorchKernels.accept), fused per problem rows[i], whose trial point, f and g are row i
// of x_trial, f_t and g_t: Armijo decision, curvature pair and ring-buffer write, move,
// projected-gradient norm and status for an accepted trial, which may lengthen the step along
// the same path instead of asking for a new direction; step shrink, restart or failure for a
// rejected one (a trial that did not move, or where f or g is not finite, is rejected). Two
// passes: reductions, then writes; meanwhile the slot the next problem may write is prefetched.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "batch.h"
#include "vec.h"

namespace intriguing_fast {

template <typename T, typename H>
void accept(const Batch<T, H>& st, const int64_t* rows, int64_t k, const T* f_t, const T* g_t, const Settings& opt) {
  const int64_t n = st.n, m = st.m;
#pragma omp parallel
  {
    int64_t begin, end;
    thread_share(k, begin, end);
    for (int64_t i = begin; i < end; ++i) {
      const int64_t b = rows[i];
      const T *xt = st.x_trial + i * n, *gt = g_t + i * n, *lo = st.lower + b * st.bound_stride,
              *hi = st.upper + b * st.bound_stride;
      const T* d = st.d + b * n;
      T *x = st.x + b * n, *g = st.g + b * n;
      if (i + 1 < end) {  // the slot the next problem may write: its stores then need not wait for the lines
        const int64_t next = (rows[i + 1] * m + st.head[rows[i + 1]]) * n;
        prefetch_for_write(st.S + next, n * int64_t(sizeof(H)));
        prefetch_for_write(st.Y + next, n * int64_t(sizeof(H)));
      }
      // The pair is the one the history will hold (rounded to H), so gamma matches it exactly;
      // pg is the projected-gradient norm at the trial point, used if it is accepted.
      // slope_on: the slope at the trial along the rest of the path (the components not at a bound).
      T sy = 0, yy = 0, nonfinite = 0, pg = 0, moved = 0, slope_on = 0;
#pragma omp simd reduction(+ : sy, yy, nonfinite, moved, slope_on) reduction(max : pg)
      for (int64_t j = 0; j < n; ++j) {
        const T s = rounded<H>(xt[j] - x[j]), y = rounded<H>(gt[j] - g[j]);
        sy += s * y;
        yy += y * y;
        nonfinite += gt[j] * T(0);  // NaN iff some g_t[j] is NaN or inf
        moved += xt[j] != x[j] ? T(1) : T(0);
        slope_on += lo[j] < xt[j] && xt[j] < hi[j] ? gt[j] * d[j] : T(0);
        const T step = magnitude(clamp(-gt[j], lo[j] - xt[j], hi[j] - xt[j]));  // |P(xt - gt) - xt|
        pg = pg < step ? step : pg;
      }
      const T ft = f_t[i], f_old = st.f[b];
      const bool finite = std::isfinite(ft) && nonfinite == 0;
      const bool ok = finite && ft <= f_old + T(opt.c1) * std::min(st.slope[b], T(0)) && moved > 0;
      if (ok) {
        if (sy > std::numeric_limits<T>::epsilon() * yy) {
          const int64_t slot = st.head[b];
          H *S = st.S + (b * m + slot) * n, *Y = st.Y + (b * m + slot) * n;
#pragma omp simd
          for (int64_t j = 0; j < n; ++j) {
            S[j] = narrow<H>(xt[j] - x[j]);
            Y[j] = narrow<H>(gt[j] - g[j]);
          }
          st.gamma[b] = sy / yy;
          st.head[b] = (slot + 1) % m;
          st.hist_len[b] = std::min(st.hist_len[b] + 1, m);
        }
        std::memcpy(x, xt, n * sizeof(T));
        std::memcpy(g, gt, n * sizeof(T));
        st.f[b] = ft;
        st.nit[b] += 1;
        st.pg_norm[b] = pg;
        const T scale = std::max(std::max(std::abs(f_old), std::abs(ft)), T(1));
        int64_t status = RUNNING;
        if (st.nit[b] >= opt.max_iter) status = MAX_ITER;
        if (f_old - ft <= T(opt.ftol) * scale) status = CONVERGED_FTOL;
        if (pg <= T(opt.gtol)) status = CONVERGED_GTOL;
        st.status[b] = status;
        if (status == RUNNING && slope_on < T(opt.c2) * st.gd[b]) {  // f still falls steeply: lengthen
          st.t[b] *= T(3);  // P(x_new + 3t d) = P(x + 4t d)
          st.gd[b] = slope_on;
          st.ls_iter[b] = 0;
        } else {
          st.need_dir[b] = true;
        }
      } else {  // shrink the step by safeguarded quadratic interpolation (halve it where f or g is not finite)
        const T t = st.t[b], gd = st.gd[b];
        const T denom = T(2) * (ft - f_old - gd * t);
        const T t_quad = -gd * t * t / denom;
        st.t[b] = !finite ? T(0.5) * t
                  : std::isfinite(t_quad) && denom > 0 ? std::min(std::max(t_quad, T(0.1) * t), T(0.5) * t)
                                                       : T(0.1) * t;
        if (++st.ls_iter[b] >= opt.max_ls) {  // exhausted: retry once from a gradient step
          if (st.hist_len[b] > 0) {
            st.hist_len[b] = 0;
            st.head[b] = 0;
            st.need_dir[b] = true;
          } else {
            st.status[b] = finite ? LINE_SEARCH_FAILED : NONFINITE;
          }
        }
      }
      st.nfev[b] += 1;
      if (st.status[b] == RUNNING && st.nfev[b] >= opt.max_fun) st.status[b] = MAX_FUN;
    }
  }
}

}  // namespace intriguing_fast
