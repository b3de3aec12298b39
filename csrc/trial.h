// Step 2 (TorchKernels.trial): row i of x_trial = P(x + t d) of problem rows[i], with its own
// step t, and the slope g.(x_trial - x) that the Armijo test uses, in one pass per problem.
#pragma once

#include <algorithm>
#include <cstdint>

#include "batch.h"
#include "vec.h"

namespace intriguing_fast {

template <typename T, typename H>
void trial_row(const Batch<T, H>& st, int64_t i, int64_t b) {
  const int64_t n = st.n;
  const T *x = st.x + b * n, *g = st.g + b * n, *d = st.d + b * n, *lo = st.lower + b * st.bound_stride,
          *hi = st.upper + b * st.bound_stride;
  T* xt = st.x_trial + i * n;
  const T t = st.t[b];
  T slope = 0;
#pragma omp simd reduction(+ : slope)
  for (int64_t j = 0; j < n; ++j) {
    const T v = clamp(x[j] + t * d[j], lo[j], hi[j]);
    xt[j] = v;
    slope += g[j] * (v - x[j]);
  }
  st.slope[b] = slope;
}

template <typename T, typename H>
void trial(const Batch<T, H>& st, const int64_t* rows, int64_t k) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < k; ++i) trial_row(st, i, rows[i]);
}

}  // namespace intriguing_fast
