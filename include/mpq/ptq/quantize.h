// Post-training quantization as one call: a float model and a bit plan in, a calibrated and
// rounded simulation out, with what the rounding did and what it cost.
//   ptq::QuantizedModel q = ptq::quantize(model, plan, calib, options);
//   export_::...(q.sim);  eval::evaluate(q.sim.frozen(), ...);
// mpq quantize, mpq eval --w-bits, mpq bench and mpq compress's quantize stage all call it.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "mpq/allocation/bit_plan.h"
#include "mpq/data/dataset.h"
#include "mpq/ptq/rounding.h"
#include "mpq/quant/quant_sim.h"

namespace mpq::ptq {

struct QuantizeOptions {
  quant::WeightGrid weight_grid = quant::kDefaultWeightGrid;
  quant::CalibrationOptions calibration;  // activation ranges and weight scales
  std::string rounding = "nearest";  // a registered Rounding (nearest, adaround, attention, ...)
  RoundingOptions round;             // its iterations, granularity, QDrop
  std::string plan_source = "bit plan";  // how errors about the plan name it
};

struct QuantizedModel {
  quant::QuantSim sim;
  RoundingReport rounding;
  double calibration_seconds = 0, seconds = 0, peak_rss_mb = 0;
};

// Calibrates `model` quantized to `plan` on `calib`, then rounds its weights. An unknown
// rounding method fails before any work.
QuantizedModel quantize(const ir::Graph& model, const allocation::BitPlan& plan,
                        const data::Loader& calib, const QuantizeOptions& options);

nlohmann::json to_json(const QuantizedModel& q);  // the costs and the rounding report

}  // namespace mpq::ptq
