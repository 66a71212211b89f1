// uniform (baseline): Ω_l(b) = n_l · 4^(−b), the same for every layer per weight. Under a size
// budget the minimiser of Σ n_l·4^(−b_l) subject to Σ n_l·b_l ≤ B gives every layer the same
// width (up to integrality), so the ILP returns the uniform plan that fits the budget.
#include <cmath>

#include "mpq/sensitivity/metric.h"

namespace mpq::sensitivity {
namespace {

class Uniform : public Metric {
 public:
  Report compute(const Context& ctx) const override {
    LayerWeights w = folded_weights(ctx.model);
    Report r;
    r.metric = "uniform";
    r.bits = ctx.options.candidates;
    for (const ir::LayerInfo& l : w.layers) {
      r.layers.push_back(l.name);
      r.params.push_back(l.params);
      std::vector<double> row;
      for (int b : r.bits) row.push_back(static_cast<double>(l.params) * std::pow(4.0, -b));
      r.omega.push_back(row);
    }
    return r;
  }
};

MPQ_REGISTER(Metric, "uniform", Uniform);

}  // namespace
}  // namespace mpq::sensitivity
