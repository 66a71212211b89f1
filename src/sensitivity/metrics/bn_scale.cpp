// bn_scale: S_l = mean_c |γ_l,c| of the BatchNormalization after conv l, read from the model:
// no data, no forward pass. Ω_l(b) = S_l · ‖ΔW_l(b)‖² (HAWQ's objective with the Hessian
// trace replaced by the BN scale).
// Choice: a layer with no BN after it (the classifier) gets the largest S of the model, i.e. it
// is treated as at least as sensitive as the most sensitive conv.
#include <algorithm>

#include "mpq/core/error.h"
#include "mpq/core/progress.h"
#include "mpq/exec/executor.h"
#include "mpq/sensitivity/metric.h"

namespace mpq::sensitivity {
namespace {

class BnScale : public Metric {
 public:
  Report compute(const Context& ctx) const override {
    std::vector<ir::LayerInfo> layers = ir::describe_layers(ctx.model, {});  // no forward pass
    bool any_bn = std::any_of(layers.begin(), layers.end(), [](auto& l) { return l.has_bn; });
    if (!any_bn) {
      const std::string& fallback = ctx.options.fallback;
      MPQ_CHECK(!fallback.empty(), ErrorCode::kUnsupported,
                "{}: bn_scale needs the BatchNormalization after each conv, but this model has "
                "none (BN was folded at export). Re-export with BN kept: torch.onnx.export(model."
                "eval(), x, f, training=torch.onnx.TrainingMode.PRESERVE, "
                "do_constant_folding=False), or name a fallback metric: --fallback output_mse",
                ctx.model.source);
      MPQ_CHECK(fallback != "bn_scale", ErrorCode::kInvalidArgument,
                "--fallback bn_scale: the fallback must be another metric");
      log_line(fmt::format("bn_scale: {} has no BatchNormalization; using --fallback {}",
                           ctx.model.source, fallback));
      Report r = sensitivity::compute(fallback, ctx);
      r.details["fallback_from"] = "bn_scale";
      return r;
    }
    std::vector<double> scale;
    double largest = 0;
    for (const ir::LayerInfo& l : layers) {
      double s = -1;
      if (l.has_bn)
        for (const ir::Node& n : ctx.model.nodes)
          if (n.name == l.bn_node) {
            auto gamma = ctx.model.constant_input(n, 1);
            if (gamma) s = gamma->abs().mean().item<double>();
          }
      scale.push_back(s);
      largest = std::max(largest, s);
    }
    for (double& s : scale)
      if (s < 0) s = largest;
    Report r = importance_report(folded_weights(ctx.model), scale, ctx.options);
    r.metric = "bn_scale";
    return r;
  }
};

MPQ_REGISTER(Metric, "bn_scale", BnScale);

}  // namespace
}  // namespace mpq::sensitivity
