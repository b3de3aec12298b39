// Step 2 (TorchKernels.trial): row i of x_trial = P(x + t d) of problem rows[i], with its own
// step t, and the slope g.(x_trial - x) that the Armijo test uses, in one pass per problem.
#pragma once

#include <algorithm>
#include <cstdint>

#include "batch.h"

namespace intriguing_fast {

template <typename T, typename H>
void trial(const Batch<T, H>& st, const int64_t* rows, int64_t k) {
  const int64_t n = st.n;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < k; ++i) {
    const int64_t b = rows[i];
    const T *x = st.x + b * n, *g = st.g + b * n, *d = st.d + b * n, *lo = st.lower + b * st.bound_stride,
            *hi = st.upper + b * st.bound_stride;
    T* xt = st.x_trial + i * n;
    const T t = st.t[b];
    T slope = 0;
#pragma omp simd reduction(+ : slope)
    for (int64_t i = 0; i < n; ++i) {
      const T v = std::min(std::max(x[i] + t * d[i], lo[i]), hi[i]);
      xt[i] = v;
      slope += g[i] * (v - x[i]);
    }
    st.slope[b] = slope;
  }
}

}  // namespace intriguing_fast
