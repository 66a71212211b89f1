// percentile: clip at the P-th percentile of the sampled values (P = 99.99 by default); for a
// tensor with negative values, also at the (100 − P)-th from below.
#include "mpq/core/error.h"
#include "mpq/quant/observer.h"

namespace mpq::quant {
namespace {

double sorted_quantile(const at::Tensor& sorted, double q) {
  int64_t n = sorted.numel();
  int64_t k = std::clamp<int64_t>(static_cast<int64_t>(std::llround(q * (n - 1))), 0, n - 1);
  return sorted[k].item<double>();
}

class Percentile : public Observer {
 public:
  std::pair<double, double> range(const ActivationStats& stats, int /*bits*/,
                                  const ObserverOptions& options) const override {
    double p = options.percentile;
    MPQ_CHECK(p > 50 && p <= 100, ErrorCode::kInvalidArgument,
              "--percentile {}: must be in (50, 100]", p);
    if (!stats.sample.defined() || stats.sample.numel() == 0) return {stats.min, stats.max};
    at::Tensor sorted = std::get<0>(stats.sample.sort());
    double hi = std::min(stats.max, sorted_quantile(sorted, p / 100));
    double lo = stats.non_negative() ? 0.0 : std::max(stats.min, sorted_quantile(sorted, 1 - p / 100));
    return {lo, hi};
  }
};

MPQ_REGISTER(Observer, "percentile", Percentile);

}  // namespace
}  // namespace mpq::quant
