// proportional (the coding-length rule): widths in proportion to each layer's information
// density, b_l ∝ r_l (the report's per-layer importance, coding_length's r_l = L_l/n_l), with
// no combinatorial search. The scale c is found by bisection so that the plan of b_l = c·r_l
// snapped down to the candidates meets every budget; then water-filling: while some layer can
// move to its next wider candidate within every budget, the one furthest below its target c·r_l
// moves up. Activations take the widest --a-candidates width that the budgets allow, as one
// width for all layers.
#include <algorithm>
#include <cmath>

#include "mpq/allocation/allocator.h"
#include "mpq/core/error.h"

namespace mpq::allocation {
namespace {

class Proportional : public Allocator {
 public:
  BitPlan allocate(const Problem& p) const override {
    const sensitivity::Report& r = *p.sensitivity;
    MPQ_CHECK(!r.importance.empty(), ErrorCode::kInvalidArgument,
              "the proportional allocator needs a metric with a per-layer importance "
              "(coding_length, bn_scale, imprint, hessian_trace, random); '{}' has none",
              r.metric);
    std::vector<int> a_sorted = p.a_candidates;
    std::sort(a_sorted.rbegin(), a_sorted.rend());
    BitPlan best;
    for (int a : a_sorted) {
      Problem q = p;
      q.a_candidates = {a};
      best = fill(q, r.importance);
      if (q.meets(best)) return best;
    }
    return best;  // the caller repairs
  }

 private:
  static BitPlan snapped(const Problem& p, const std::vector<double>& r, double c) {
    BitPlan plan;
    const auto& layers = p.costs->layers();
    for (size_t l = 0; l < layers.size(); ++l) {
      // The widest option not above the target c·r_l, else the narrowest.
      auto options = p.options(l);
      std::pair<int, int> pick{-1, 0}, narrowest = options.front();
      for (auto o : options) {
        if (o.first <= c * r[l] + 1e-9 && o.first > pick.first) pick = o;
        if (o.first < narrowest.first) narrowest = o;
      }
      if (pick.first < 0) pick = narrowest;
      plan.layers.push_back({layers[l].name, pick.first, pick.second});
    }
    return plan;
  }

  static BitPlan fill(const Problem& p, const std::vector<double>& r) {
    double lo = 0, hi = 1;
    while (p.meets(snapped(p, r, hi)) && hi < 1e12) hi *= 2;
    for (int i = 0; i < 100; ++i) {
      double mid = (lo + hi) / 2;
      (p.meets(snapped(p, r, mid)) ? lo : hi) = mid;
    }
    BitPlan plan = snapped(p, r, lo);
    if (!p.meets(plan)) return plan;
    // Water-filling: the layer furthest below its target moves up while the budgets allow.
    for (;;) {
      double best_gap = -INFINITY;
      size_t best = 0;
      std::pair<int, int> next{0, 0};
      for (size_t l = 0; l < plan.layers.size(); ++l) {
        std::pair<int, int> up{99, 0};
        for (auto o : p.options(l))
          if (o.first > plan.layers[l].w_bits && o.first < up.first) up = o;
        if (up.first == 99) continue;
        BitPlan trial = plan;
        trial.layers[l].w_bits = up.first;
        trial.layers[l].a_bits = up.second;
        if (!p.meets(trial)) continue;
        double gap = lo * r[l] - plan.layers[l].w_bits;
        if (gap > best_gap) {
          best_gap = gap;
          best = l;
          next = up;
        }
      }
      if (!std::isfinite(best_gap)) break;
      plan.layers[best].w_bits = next.first;
      plan.layers[best].a_bits = next.second;
    }
    return plan;
  }
};

MPQ_REGISTER(Allocator, "proportional", Proportional);

}  // namespace
}  // namespace mpq::allocation
