// random (baseline): an importance drawn uniformly from [0, 1) per layer (--seed), in the same
// form as the seed metrics: Ω_l(b) = I_l · ‖ΔW_l(b)‖². A metric that does no better than
// this is not telling the allocator anything.
#include <random>

#include "mpq/sensitivity/metric.h"

namespace mpq::sensitivity {
namespace {

class Random : public Metric {
 public:
  Report compute(const Context& ctx) const override {
    LayerWeights w = folded_weights(ctx.model);
    std::mt19937_64 rng(ctx.options.seed);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    std::vector<double> importance;
    for (size_t l = 0; l < w.layers.size(); ++l) importance.push_back(u(rng));
    Report r = importance_report(w, importance, ctx.options);
    r.metric = "random";
    r.details["seed"] = ctx.options.seed;
    return r;
  }
};

MPQ_REGISTER(Metric, "random", Random);

}  // namespace
}  // namespace mpq::sensitivity
