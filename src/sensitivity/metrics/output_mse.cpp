// output_mse (baseline): Ω_l(b) = mean squared difference of the model's output (logits) from
// the float model's when only layer l's weights are quantized to b bits (per-channel grid
// scaled by max |w|, round to nearest), over the data given (use @N to bound the cost: one
// forward pass per layer and width).
#include <c10/core/InferenceMode.h>

#include "mpq/core/progress.h"
#include "mpq/exec/executor.h"
#include "mpq/ir/passes.h"
#include "mpq/quant/quantizer.h"
#include "mpq/sensitivity/metric.h"

namespace mpq::sensitivity {
namespace {

class OutputMse : public Metric {
 public:
  bool needs_data() const override { return true; }

  Report compute(const Context& ctx) const override {
    c10::InferenceMode guard;
    ir::Graph g = ctx.model;
    ir::fold_batch_norm(g);
    std::vector<ir::LayerInfo> layers = exec::quantizable_layers(g);
    const data::Loader& data = *ctx.data;
    OutputReference reference(g, data);
    const std::vector<int>& bits = ctx.options.candidates;
    Report r;
    r.metric = "output_mse";
    r.bits = bits;
    Progress bar("output_mse", static_cast<int64_t>(layers.size() * bits.size()),
                 ctx.options.progress);
    for (const ir::LayerInfo& l : layers) {
      const ir::Node& node = g.nodes[static_cast<size_t>(l.node)];
      at::Tensor& w = g.initializer(node.inputs[1]);
      at::Tensor original = w;
      int axis = quant::weight_axis(node.op, node.attr_int("transB", 0) != 0);
      std::vector<double> row;
      for (int b : bits) {
        const quant::WeightGrid grid = ctx.options.weight_grid;
        at::Tensor s = quant::weight_scales(original, axis, b, grid, false);
        w = quant::dequantize_weight(
            quant::quantize_weight(original, s, axis, quant::weight_range(b, grid)), s, axis);
        row.push_back(reference.mse(g));
        bar.advance(1);
      }
      w = original;
      r.layers.push_back(l.name);
      r.params.push_back(l.params);
      r.omega.push_back(row);
    }
    bar.finish();
    r.details["images"] = data.size();
    return r;
  }
};

MPQ_REGISTER(Metric, "output_mse", OutputMse);

}  // namespace
}  // namespace mpq::sensitivity
