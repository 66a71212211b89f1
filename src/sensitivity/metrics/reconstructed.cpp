// reconstructed: the damage the PTQ leaves, not the damage of round-to-nearest.
//
// For every quantized layer l and candidate weight width b, the model with only layer l's
// weights at b bits (everything else float) is calibrated and rounded by the same method the
// PTQ uses (default: block-wise Attention Round with QDrop 0.5, i.e. layer l's block is
// reconstructed, on a short schedule: Options::recon_iters), and
//   Ω_l(b) = mean squared difference of the model's logits from the float model's
// over the metric's images. Block reconstruction repairs some layers far better than others (a
// 3×3 conv in a residual block vs a depthwise conv or the classifier); this ranking sees it.
//
// Activations separately, when Options::a_candidates is given: the model with only layer l's
// input quantized to a bits (calibrated range, as the PTQ starts from; nothing to round) gives
// Ω^a_l(a) in the same unit, so the allocator adds Ω_l(w) + Ω^a_l(a) and trades weight bits
// against activation bits on measured damage rather than on an assumption.
//
// Cost: one calibration statistics pass, then per (layer, width) one short reconstruction of
// one block and one forward pass over the images (8 bits: nearest, no reconstruction).
#include <c10/core/InferenceMode.h>

#include "mpq/core/progress.h"
#include "mpq/exec/executor.h"
#include "mpq/ptq/rounding.h"
#include "mpq/quant/quant_sim.h"
#include "mpq/sensitivity/metric.h"

namespace mpq::sensitivity {
namespace {

class Reconstructed : public Metric {
 public:
  bool needs_data() const override { return true; }

  Report compute(const Context& ctx) const override {
    const Options& o = ctx.options;
    const data::Loader& data = *ctx.data;
    std::vector<ir::LayerInfo> layers = exec::quantizable_layers(ctx.model);
    ptq::make_rounding(o.rounding);  // an unknown name fails before any work
    // Every layer's input statistics, once: each probe below calibrates from them.
    allocation::BitPlan all = allocation::uniform_plan(layers, 8, 8, 0);
    quant::QuantSim probe(ctx.model, all, "reconstructed", ctx.options.weight_grid);
    quant::CalibrationStats stats = probe.collect(data, false);
    OutputReference reference(probe.float_graph(), data);
    auto damage = [&](const quant::QuantSim& sim) { return reference.mse(sim.frozen()); };
    quant::CalibrationOptions calibration;
    calibration.progress = false;  // mse ranges and mse weight scales, as the PTQ's defaults
    ptq::RoundingOptions ropts;
    ropts.iters = o.recon_iters;
    ropts.progress = false;
    ropts.granularity = o.granularity;
    ropts.qdrop = o.qdrop;
    allocation::BitPlan none = allocation::uniform_plan(layers, 32, 32, 0);

    Report r;
    r.metric = "reconstructed";
    r.bits = o.candidates;
    r.a_bits = o.a_candidates;
    Progress bar("reconstructed",
                 static_cast<int64_t>(layers.size() * (r.bits.size() + r.a_bits.size())),
                 o.progress);
    for (size_t l = 0; l < layers.size(); ++l) {
      std::vector<double> row, a_row;
      for (int b : r.bits) {
        allocation::BitPlan p = none;
        p.layers[l].w_bits = b;
        quant::QuantSim sim(ctx.model, p, "reconstructed", ctx.options.weight_grid);
        sim.calibrate(stats, calibration);
        // 8 bits and wider: learned rounding changes nothing there (compress's baselines agree).
        ptq::make_rounding(b >= 8 ? "nearest" : o.rounding)->apply(sim, data, ropts);
        row.push_back(damage(sim));
        bar.advance(1, layers[l].name);
      }
      for (int a : r.a_bits) {
        allocation::BitPlan p = none;
        p.layers[l].a_bits = a;
        quant::QuantSim sim(ctx.model, p, "reconstructed", ctx.options.weight_grid);
        sim.calibrate(stats, calibration);
        a_row.push_back(damage(sim));
        bar.advance(1, layers[l].name);
      }
      r.layers.push_back(layers[l].name);
      r.params.push_back(layers[l].params);
      r.omega.push_back(row);
      if (!r.a_bits.empty()) r.a_omega.push_back(a_row);
    }
    bar.finish();
    r.details["images"] = data.size();
    r.details["rounding"] = o.rounding;
    r.details["granularity"] = o.granularity;
    r.details["qdrop"] = o.qdrop;
    r.details["iters"] = o.recon_iters;
    r.details["omega"] = "mean squared logit difference from float after reconstruction";
    return r;
  }
};

MPQ_REGISTER(Metric, "reconstructed", Reconstructed);

}  // namespace
}  // namespace mpq::sensitivity
