// Row-level vector helpers shared by the fused steps. `H` is the history storage type:
// the compute type T itself, or Bf16 (bfloat16 bits, widened to T on load).
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

namespace intriguing_fast {

struct Bf16 {
  uint16_t bits;
};

template <typename T>
inline T widen(T v) { return v; }

template <typename T>
inline T widen(Bf16 v) {
  const uint32_t u = uint32_t(v.bits) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return T(f);
}

// Round to the storage type (nearest even for bfloat16, as torch does; inputs are finite).
template <typename H, typename T>
inline H narrow(T v) {
  if constexpr (std::is_same_v<H, Bf16>) {
    const float f = float(v);
    uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return Bf16{uint16_t(u >> 16)};
  } else {
    return H(v);
  }
}

// The value a history store of v reads back as (v itself when H is T).
template <typename H, typename T>
inline T rounded(T v) { return widen<T>(narrow<H>(v)); }

template <typename T, typename H>
inline T dot(const H* __restrict a, const T* __restrict b, int64_t n) {
  T acc = 0;
#pragma omp simd reduction(+ : acc)
  for (int64_t i = 0; i < n; ++i) acc += widen<T>(a[i]) * b[i];
  return acc;
}

template <typename T, typename H>
inline void axpy(T alpha, const H* __restrict x, T* __restrict y, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * widen<T>(x[i]);
}

// q <- scale * (q + alpha * u), then return v . q: one pass where two would do.
template <typename T, typename H>
inline T axpy_dot(T alpha, const H* __restrict u, T scale, const H* __restrict v, T* __restrict q, int64_t n) {
  T acc = 0;
#pragma omp simd reduction(+ : acc)
  for (int64_t i = 0; i < n; ++i) {
    const T qi = scale * (q[i] + alpha * widen<T>(u[i]));
    q[i] = qi;
    acc += widen<T>(v[i]) * qi;
  }
  return acc;
}

}  // namespace intriguing_fast
