// Row-level vector helpers shared by the fused steps. `H` is the history storage type:
// the compute type T itself, or Bf16 (bfloat16 bits, widened to T on load).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
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

// Projection onto [lo, hi] by value (same NaN behaviour as std::min(std::max(v, lo), hi)):
// std::min and std::max return references, which keep GCC 12 from vectorising float loops
// under `omp simd`.
template <typename T>
inline T clamp(T v, T lo, T hi) {
  v = v < lo ? lo : v;
  return hi < v ? hi : v;
}

// |v| by value, for the same reason.
template <typename T>
inline T magnitude(T v) { return v < 0 ? -v : v; }

// Walks byte ranges (the next problem's rows) a cache line at a time, so that they stream
// into L2 while the current problem computes on data already there. Lines are asked for
// one or two per block of a pass, not in bursts: a burst fills the line-fill buffers and
// stalls the pass.
class Prefetcher {
 public:
  void add(const void* begin, int64_t bytes) {
    if (count_ < kRanges && bytes > 0) {
      const char* p = static_cast<const char*>(begin);
      range_[count_++] = {p, p + bytes};
    }
  }
  void next_line() {
    if (cur_ >= end_) {
      if (at_ == count_) return;
      cur_ = range_[at_].begin, end_ = range_[at_].end, ++at_;
    }
    __builtin_prefetch(cur_, 0, 2);
    cur_ += 64;
  }

 private:
  static constexpr int kRanges = 4;
  struct Range {
    const char *begin, *end;
  };
  Range range_[kRanges];
  const char *cur_ = nullptr, *end_ = nullptr;
  int count_ = 0, at_ = 0;
};

// Asks for the lines of [p, p + bytes) with intent to write, ahead of the stores.
inline void prefetch_for_write(const void* p, int64_t bytes) {
  for (int64_t o = 0; o < bytes; o += 64) __builtin_prefetch(static_cast<const char*>(p) + o, 1, 2);
}

// Independent partial sums per reduction: a single vector accumulator would make every
// step of a row wait on the latency of the previous add (4 cycles) instead of its loads.
template <typename T>
inline constexpr int64_t kLanes = 128 / sizeof(T);

// Sum of term(i) over i < n, in one pass that keeps kLanes<T> partial sums and asks `pf` for
// two cache lines per block. term may also update element i of its own buffers.
template <typename T, typename Term>
inline T pass_sum(int64_t n, Prefetcher& pf, Term term) {
  T part[kLanes<T>] = {};
  int64_t i = 0;
  for (; i + kLanes<T> <= n; i += kLanes<T>) {
    pf.next_line();
    pf.next_line();
#pragma omp simd
    for (int64_t j = 0; j < kLanes<T>; ++j) part[j] += term(i + j);
  }
  T acc = 0;
  for (; i < n; ++i) acc += term(i);
  for (int64_t j = 0; j < kLanes<T>; ++j) acc += part[j];
  return acc;
}

// Euclidean norm of d (n values) given dd = d.d, rescaled where dd overflowed or underflowed
// (engine/backends/reference.py safe_norm); never below the smallest normal number.
template <typename T>
T safe_norm(const T* d, T dd, int64_t n) {
  const T tiny = std::numeric_limits<T>::min();
  if (std::isfinite(dd) && dd >= tiny / std::numeric_limits<T>::epsilon()) return std::sqrt(dd);
  T scale = 0;
  for (int64_t i = 0; i < n; ++i) scale = std::max(scale, std::abs(d[i]));
  scale = std::max(scale, tiny);
  T sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += (d[i] / scale) * (d[i] / scale);
  return std::max(scale * std::sqrt(sum), tiny);
}

}  // namespace intriguing_fast
