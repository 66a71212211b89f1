// minmax: the full range seen in calibration. Nothing is clipped, so outliers stretch the grid.
#include "mpq/quant/observer.h"

namespace mpq::quant {
namespace {

class MinMax : public Observer {
 public:
  std::pair<double, double> range(const ActivationStats& stats, int /*bits*/,
                                  const ObserverOptions& /*options*/) const override {
    return {stats.min, stats.max};
  }
};

MPQ_REGISTER(Observer, "minmax", MinMax);

}  // namespace
}  // namespace mpq::quant
