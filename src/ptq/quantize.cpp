#include "mpq/ptq/quantize.h"

#include <chrono>

#include "mpq/core/memory.h"
#include "mpq/quant/observer.h"

namespace mpq::ptq {

QuantizedModel quantize(const ir::Graph& model, const allocation::BitPlan& plan,
                        const data::Loader& calib, const QuantizeOptions& options) {
  auto rounder = make_rounding(options.rounding);
  quant::make_observer(options.calibration.observer);
  auto start = std::chrono::steady_clock::now();
  QuantizedModel q{
      quant::QuantSim(model, plan, options.plan_source, options.weight_grid), {}, 0, 0, 0};
  q.sim.calibrate(calib, options.calibration);
  q.calibration_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  q.rounding = rounder->apply(q.sim, calib, options.round);
  q.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  q.peak_rss_mb = peak_rss_mb();
  return q;
}

nlohmann::json to_json(const QuantizedModel& q) {
  return {{"calibration_seconds", q.calibration_seconds},
          {"seconds", q.seconds},
          {"peak_rss_mb", q.peak_rss_mb},
          {"rounding", to_json(q.rounding)}};
}

}  // namespace mpq::ptq
