// Steps 1 and 2 fused (Kernels.propose): for each problem of `rows`, a new direction if it
// needs one, then its trial point, while x, g and d are still in cache, so the trial pass
// costs no second trip through memory.
#pragma once

#include <cstdint>

#include "batch.h"
#include "direction.h"
#include "trial.h"

namespace intriguing_fast {

template <typename T, typename H>
void propose(const Batch<T, H>& st, const int64_t* rows, int64_t k) {
  for_each_direction(st, rows, k, [&](int64_t i, int64_t b) { trial_row(st, i, b); });
}

}  // namespace intriguing_fast
