// L-BFGS two-loop recursion for one problem: q <- H q over its ring buffer of curvature
// pairs (S[j], Y[j]), rho[j] = 1 / s_j.y_j, initial scaling gamma. Each history row is read
// once per loop; the dot product of the next step rides on the update of the current one,
// so q (n values, in L1/L2) is swept 2 len + 1 times instead of 4 len. Each block of a pass
// also asks `pf` for two cache lines of the next problem's data.
#pragma once

#include <cstdint>

#include "batch.h"
#include "vec.h"

namespace intriguing_fast {

template <typename T, typename H>
void two_loop_row(T* q, const H* S, const H* Y, const T* rho, T gamma, int64_t len, int64_t head,
                  int64_t m, int64_t n, T* alpha, Prefetcher& pf) {
  if (len == 0) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) q[i] *= gamma;
    return;
  }
  auto row = [&](const H* A, int64_t i) { return A + newest(head, i, m) * n; };
  auto rho_of = [&](int64_t i) { return rho[newest(head, i, m)]; };
  // Newest to oldest: alpha_i = rho_i s_i.q, q -= alpha_i y_i; the last step also scales by gamma.
  T s_dot_q = dot(row(S, 0), q, n, pf);
  for (int64_t i = 0; i < len; ++i) {
    alpha[i] = rho_of(i) * s_dot_q;
    const bool last = i + 1 == len;
    s_dot_q = axpy_dot(-alpha[i], row(Y, i), last ? gamma : T(1), last ? row(Y, i) : row(S, i + 1), q, n, pf);
  }
  // Oldest to newest: beta_i = rho_i y_i.q, q += (alpha_i - beta_i) s_i (s_dot_q now holds y.q).
  for (int64_t i = len - 1; i > 0; --i) {
    const T c = alpha[i] - rho_of(i) * s_dot_q;
    s_dot_q = axpy_dot(c, row(S, i), T(1), row(Y, i - 1), q, n, pf);
  }
  axpy(alpha[0] - rho_of(0) * s_dot_q, row(S, 0), q, n);
}

}  // namespace intriguing_fast
