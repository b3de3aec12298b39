// Subnormal floats flushed to zero on every thread of the OpenMP pool. torch.set_flush_denormal
// sets the CPU's flags on the calling thread only; torch's workers (the same libgomp pool as
// this core's) keep theirs, and saturated sigmoid units make subnormal activations and
// gradients that x86 cores compute with at a small fraction of their normal speed.
#pragma once

#include <omp.h>

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#define IFK_HAS_MXCSR 1
#endif

namespace intriguing_fast {

#ifdef IFK_HAS_MXCSR
constexpr unsigned kFlushBits = 0x8040;  // MXCSR: flush-to-zero (results) | denormals-are-zero (inputs)

inline bool flushing_denormals() { return (_mm_getcsr() & kFlushBits) == kFlushBits; }

// Sets or clears both flags on the calling thread and on every thread of its OpenMP team;
// threads the pool starts later copy them from the thread that starts them. Returns whether
// this CPU has the flags.
inline bool set_flush_denormals(bool on) {
#pragma omp parallel
  {
    const unsigned csr = _mm_getcsr();
    _mm_setcsr(on ? (csr | kFlushBits) : (csr & ~kFlushBits));
  }
  return true;
}
#else
inline bool flushing_denormals() { return false; }
inline bool set_flush_denormals(bool) { return false; }
#endif

}  // namespace intriguing_fast
