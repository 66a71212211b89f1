// mse: the clipping that minimises ‖Q(x) − x‖² over the sampled calibration values. Candidates
// shrink the observed range [min, max] by a common factor α = 1.00, 0.99, ..., 0.10 (a grid
// search; the error is not convex in α at low widths, so no bisection).
#include "mpq/quant/observer.h"

namespace mpq::quant {
namespace {

class Mse : public Observer {
 public:
  std::pair<double, double> range(const ActivationStats& stats, int bits,
                                  const ObserverOptions& /*options*/) const override {
    if (!stats.sample.defined() || stats.sample.numel() == 0) return {stats.min, stats.max};
    double lo = std::min(stats.min, 0.0), hi = std::max(stats.max, 0.0);
    std::pair<double, double> best{lo, hi};
    double best_err = INFINITY;
    for (int step = 100; step >= 10; --step) {
      double a = step / 100.0;
      double err = quantization_error(stats.sample, a * lo, a * hi, bits);
      if (err < best_err) {
        best_err = err;
        best = {a * lo, a * hi};
      }
    }
    return best;
  }
};

MPQ_REGISTER(Observer, "mse", Mse);

}  // namespace
}  // namespace mpq::quant
