// Activation range observers: from statistics collected once on the calibration set, each
// observer picks the clipping range [lo, hi] for a bit-width. One file per observer under
// src/quant/observers/, registered by name:  MPQ_REGISTER(Observer, "mse", MseObserver);
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <string>
#include <utility>

#include "mpq/core/registry.h"

namespace mpq::quant {

// What calibration keeps of one tensor: its exact min and max, and a uniform random sample of
// its values (at most `kSampleSize`) for the observers that need the distribution.
struct ActivationStats {
  static constexpr int64_t kSampleSize = 1 << 19;
  double min = 0, max = 0;
  int64_t count = 0;  // values seen
  at::Tensor sample;  // float [n]

  // Adds a batch of values (any shape), keeping a random `take` of them in the sample. Give
  // every batch the same `take` (kSampleSize / batches) so the sample is uniform over the set.
  void observe(const at::Tensor& x, uint64_t seed, int64_t take = kSampleSize / 8);
  bool non_negative() const { return min >= 0; }
};

struct ObserverOptions {
  double percentile = 99.99;  // `percentile`: the kept fraction of values, in percent
};

class Observer {
 public:
  virtual ~Observer() = default;
  // The clipping range for `bits`; for a non-negative tensor lo is 0.
  virtual std::pair<double, double> range(const ActivationStats& stats, int bits,
                                          const ObserverOptions& options) const = 0;
};

// Squared error of quantizing `x` on the grid [lo, hi] at `bits` (an activation grid).
double quantization_error(const at::Tensor& x, double lo, double hi, int bits);

std::unique_ptr<Observer> make_observer(const std::string& name);

}  // namespace mpq::quant
