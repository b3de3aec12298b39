// L-BFGS two-loop recursion for one problem, on its free variables: q <- H_F q over its ring
// buffer of curvature pairs (S[j], Y[j]), each pair restricted to the free set (`free` is 1 on
// it and 0 off it; q is zero off it), with rho = 1 / s.y_F and the scaling (s.y_F / y_F.y_F of
// the newest pair with positive curvature there, else `gamma`) recomputed; a pair without
// positive curvature on the free set is skipped (engine/backends/reference.py two_loop). Each history
// row is read from memory once per loop: the sums of the next pair ride on the update of the
// current one, and each block of a pass asks `pf` for a cache line of the next problem's data.
// The passes are plain functions with restrict-qualified rows: written as lambdas returning
// arrays of sums, GCC vectorised them to code that ran the direction step 1.7x slower.
#pragma once

#include <array>
#include <cstdint>
#include <limits>

#include "batch.h"
#include "vec.h"

namespace intriguing_fast {

// One pass of the first loop: q -= a u_F (u the previous pair's y), then the sums s.q, s.y_F and
// y_F.y_F of the next pair (s, y), with 16 partial sums of each.
template <typename T, typename H>
std::array<T, 3> first_loop_pass(T* __restrict q, const T* __restrict free, T a, const H* __restrict u,
                                 const H* __restrict s, const H* __restrict y, int64_t n, Prefetcher& pf) {
  constexpr int64_t L = 16;
  T p0[L] = {}, p1[L] = {}, p2[L] = {};
  int64_t i = 0;
  for (; i + L <= n; i += L) {
    pf.next_line();
#pragma omp simd
    for (int64_t j = 0; j < L; ++j) {
      const T f = free[i + j];
      const T qj = q[i + j] - a * f * widen<T>(u[i + j]);
      q[i + j] = qj;
      const T sj = widen<T>(s[i + j]), yj = f * widen<T>(y[i + j]);
      p0[j] += sj * qj;
      p1[j] += sj * yj;
      p2[j] += yj * yj;
    }
  }
  std::array<T, 3> acc{};
  for (; i < n; ++i) {
    const T f = free[i];
    const T qj = q[i] - a * f * widen<T>(u[i]);
    q[i] = qj;
    const T sj = widen<T>(s[i]), yj = f * widen<T>(y[i]);
    acc[0] += sj * qj;
    acc[1] += sj * yj;
    acc[2] += yj * yj;
  }
  for (int64_t j = 0; j < L; ++j) acc[0] += p0[j], acc[1] += p1[j], acc[2] += p2[j];
  return acc;
}

// q <- scale (q + c u_F), then v.q: one pass of either loop.
template <typename T, typename H>
T update_dot(T* __restrict q, const T* __restrict free, T c, const H* __restrict u, T scale, const H* __restrict v,
             int64_t n, Prefetcher& pf) {
  return pass_sum<T>(n, pf, [=](int64_t j) {
    const T qj = scale * (q[j] + c * free[j] * widen<T>(u[j]));
    q[j] = qj;
    return widen<T>(v[j]) * qj;
  });
}

template <typename T, typename H>
void two_loop_row(T* q, const T* free, const H* S, const H* Y, T gamma, int64_t len, int64_t head, int64_t m,
                  int64_t n, T* alpha, T* rho, Prefetcher& pf) {
  auto row = [&](const H* A, int64_t i) { return A + newest(head, i, m) * n; };
  const T eps = std::numeric_limits<T>::epsilon();
  T scaling = T(0);
  bool scaled = false;
  // Newest to oldest: alpha_i = rho_i s_i.q, q -= alpha_i y_F,i (the last update is made below, with the scaling).
  std::array<T, 3> sums{};
  if (len > 0) sums = first_loop_pass(q, free, T(0), row(Y, 0), row(S, 0), row(Y, 0), n, pf);
  for (int64_t i = 0; i < len; ++i) {
    const bool valid = sums[1] > eps * sums[2];
    rho[i] = valid ? T(1) / sums[1] : T(0);
    if (valid && !scaled) scaling = sums[1] / sums[2], scaled = true;
    alpha[i] = valid ? rho[i] * sums[0] : T(0);  // a skipped pair adds nothing, even to a q gone non-finite
    if (i + 1 < len) sums = first_loop_pass(q, free, alpha[i], row(Y, i), row(S, i + 1), row(Y, i + 1), n, pf);
  }
  const T g0 = scaled ? scaling : gamma;
  if (len == 0) {
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) q[j] *= g0;
    return;
  }
  // The last first-loop update with the scaling, and y.q of the oldest pair (q is zero off F).
  T y_dot_q = update_dot(q, free, -alpha[len - 1], row(Y, len - 1), g0, row(Y, len - 1), n, pf);
  // Oldest to newest: beta_i = rho_i y_i.q, q += (alpha_i - beta_i) s_F,i.
  for (int64_t i = len - 1; i >= 0; --i) {
    const T c = alpha[i] - (rho[i] != 0 ? rho[i] * y_dot_q : T(0));
    y_dot_q = update_dot(q, free, c, row(S, i), T(1), row(Y, i > 0 ? i - 1 : 0), n, pf);
  }
}

}  // namespace intriguing_fast
