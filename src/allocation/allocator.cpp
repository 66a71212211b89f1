#include "mpq/allocation/allocator.h"

#include <algorithm>
#include <limits>

#include "mpq/core/error.h"

namespace mpq::allocation {

std::vector<std::pair<int, int>> Problem::options(size_t layer) const {
  size_t n = costs->layers().size();
  if (first_last_bits > 0 && (layer == 0 || layer + 1 == n))
    return {{first_last_bits, first_last_bits}};
  std::vector<std::pair<int, int>> out;
  for (int w : w_candidates)
    for (int a : a_candidates) out.emplace_back(w, a);
  return out;
}

double Problem::omega(size_t layer, int w, int a) const {
  if (omega_fn) return omega_fn(layer, w, a);
  double o = sensitivity->omega_at(layer, w);
  if (a_candidates.size() > 1)
    o += sensitivity->measures_activations() ? sensitivity->a_omega_at(layer, a)
                                             : sensitivity->omega_at(layer, a);
  return o;
}

void Problem::check_feasible() const {
  for (const Budget& b : budgets) {
    double least = 0;
    for (size_t l = 0; l < costs->layers().size(); ++l) {
      double best = std::numeric_limits<double>::infinity();
      for (auto [w, a] : options(l)) best = std::min(best, costs->cost(b.kind, l, w, a));
      least += best;
    }
    double limit = costs->limit(b);
    double shown = b.kind == CostKind::kAvgWBits ? least / (limit / b.limit) : least;
    MPQ_CHECK(least <= limit * (1 + 1e-12), ErrorCode::kInvalidArgument,
              "--budget {} is infeasible: the smallest {} reachable is {} (every layer at its "
              "narrowest candidate, first and last at {} bits); raise the budget or add "
              "narrower --candidates",
              b.text, cost_name(b.kind), format_cost(b.kind, shown), first_last_bits);
  }
}

bool Problem::meets(const BitPlan& plan) const {
  for (const Budget& b : budgets) {
    double total = 0;
    for (size_t l = 0; l < costs->layers().size(); ++l) {
      const LayerBits* bits = plan.find(costs->layers()[l].name);
      total += costs->cost(b.kind, l, bits->w_bits, bits->a_bits);
    }
    if (total > costs->limit(b)) return false;
  }
  return true;
}

namespace {

// The plan's entry for `layer` (plans from allocators and files cover every layer).
LayerBits& entry(BitPlan& plan, const std::string& layer) {
  for (LayerBits& b : plan.layers)
    if (b.name == layer) return b;
  fail(ErrorCode::kInternal, "the plan has no layer '{}'", layer);
}

// Normalised cost of moving layer `l` from `from` to (w, a), summed over the budgets.
double cost_change(const Problem& p, size_t l, const LayerBits& from, int w, int a) {
  double change = 0;
  for (const Budget& b : p.budgets)
    change +=
        (p.costs->cost(b.kind, l, w, a) - p.costs->cost(b.kind, l, from.w_bits, from.a_bits)) /
        p.costs->limit(b);
  return change;
}

}  // namespace

void repair(const Problem& problem, BitPlan& plan) {
  const auto& layers = problem.costs->layers();
  while (!problem.meets(plan)) {
    // The step down (to the next narrower option) with the least Ω increase per unit of
    // normalised cost saved, over all budgets that are still exceeded.
    double best_ratio = std::numeric_limits<double>::infinity();
    size_t best_layer = 0;
    std::pair<int, int> best_option{0, 0};
    for (size_t l = 0; l < layers.size(); ++l) {
      const LayerBits& cur = entry(plan, layers[l].name);
      for (auto [w, a] : problem.options(l)) {
        double saved = -cost_change(problem, l, cur, w, a);
        if (saved <= 0) continue;
        double worse = problem.omega(l, w, a) - problem.omega(l, cur.w_bits, cur.a_bits);
        double ratio = std::max(worse, 0.0) / saved;
        if (ratio < best_ratio) {
          best_ratio = ratio;
          best_layer = l;
          best_option = {w, a};
        }
      }
    }
    MPQ_CHECK(std::isfinite(best_ratio), ErrorCode::kInvalidArgument,
              "the budgets cannot all be met together with these candidates");
    LayerBits& b = entry(plan, layers[best_layer].name);
    b.w_bits = best_option.first;
    b.a_bits = best_option.second;
  }
}

void fill(const Problem& problem, BitPlan& plan) {
  const auto& layers = problem.costs->layers();
  for (;;) {
    double best_ratio = std::numeric_limits<double>::infinity();
    size_t best_layer = 0;
    std::pair<int, int> best_option{0, 0};
    for (size_t l = 0; l < layers.size(); ++l) {
      LayerBits& cur = entry(plan, layers[l].name);
      for (auto [w, a] : problem.options(l)) {
        if (w < cur.w_bits || a < cur.a_bits || (w == cur.w_bits && a == cur.a_bits)) continue;
        double added = cost_change(problem, l, cur, w, a);
        double worse = problem.omega(l, w, a) - problem.omega(l, cur.w_bits, cur.a_bits);
        LayerBits keep = cur;
        cur.w_bits = w;
        cur.a_bits = a;
        bool fits = problem.meets(plan);
        cur = keep;
        if (!fits) continue;
        double ratio = added > 0 ? worse / added : -std::numeric_limits<double>::infinity();
        if (ratio < best_ratio) {
          best_ratio = ratio;
          best_layer = l;
          best_option = {w, a};
        }
      }
    }
    if (!std::isfinite(best_ratio) && best_ratio > 0) return;  // nothing fits
    LayerBits& b = entry(plan, layers[best_layer].name);
    b.w_bits = best_option.first;
    b.a_bits = best_option.second;
  }
}

BitPlan allocate(const std::string& allocator, const Problem& problem) {
  MPQ_CHECK(!problem.budgets.empty(), ErrorCode::kInvalidArgument,
            "give at least one --budget (size=, bops=, latency=, energy= or avg-w-bits=)");
  MPQ_CHECK(problem.sensitivity->layers.size() == problem.costs->layers().size(),
            ErrorCode::kInvalidArgument,
            "the sensitivity report has {} layers but the model has {} quantized layers",
            problem.sensitivity->layers.size(), problem.costs->layers().size());
  for (size_t l = 0; l < problem.costs->layers().size(); ++l)
    MPQ_CHECK(problem.sensitivity->layers[l] == problem.costs->layers()[l].name,
              ErrorCode::kInvalidArgument,
              "the sensitivity report's layer {} is '{}', the model's is '{}' (a report of "
              "another model?)",
              l, problem.sensitivity->layers[l], problem.costs->layers()[l].name);
  problem.check_feasible();
  BitPlan plan = Registry<Allocator>::create(allocator, "allocator")->allocate(problem);
  repair(problem, plan);
  nlohmann::json budget = nlohmann::json::object();
  for (const Budget& b : problem.budgets) budget[cost_name(b.kind)] = b.limit;
  plan.budget = budget;
  plan.budget["allocator"] = allocator;
  plan.budget["metric"] = problem.sensitivity->metric;
  nlohmann::json notes = plan.predicted;
  plan.predicted = problem.costs->predicted(plan);
  if (notes.is_object()) plan.predicted.update(notes);
  double omega = 0;
  for (size_t l = 0; l < plan.layers.size(); ++l)
    omega += problem.omega(l, plan.layers[l].w_bits, plan.layers[l].a_bits);
  plan.predicted["omega"] = omega;
  return plan;
}

nlohmann::json pareto(const Problem& problem, int points) {
  MPQ_CHECK(points >= 2, ErrorCode::kInvalidArgument, "--points {}: at least 2", points);
  const Budget& base = problem.budgets.at(0);
  const CostModel& c = *problem.costs;
  double lo = 0, hi = 0;
  for (size_t l = 0; l < c.layers().size(); ++l) {
    double least = std::numeric_limits<double>::infinity(), most = 0;
    for (auto [w, a] : problem.options(l)) {
      least = std::min(least, c.cost(base.kind, l, w, a));
      most = std::max(most, c.cost(base.kind, l, w, a));
    }
    lo += least;
    hi += most;
  }
  double unit = c.limit(base) / base.limit;  // avg-w-bits: Σ params
  nlohmann::json frontier = nlohmann::json::array();
  for (int i = 0; i < points; ++i) {
    Problem p = problem;
    Budget b = base;
    b.limit = (lo + (hi - lo) * i / (points - 1)) / unit;
    b.text = fmt::format("{}={}", cost_name(b.kind), b.limit);
    p.budgets[0] = b;
    BitPlan plan = allocate("ilp", p);
    frontier.push_back(
        {{"budget", b.limit}, {"predicted", plan.predicted}, {"plan", to_json(plan)}});
  }
  return frontier;
}

double over_budget(const Problem& p, const BitPlan& plan) {
  double worst = 0;
  for (const Budget& b : p.budgets)
    worst = std::max(worst, p.costs->total(b.kind, plan) / p.costs->limit(b));
  return worst;
}

std::vector<UniformWidths> uniform_baselines(const Problem& p,
                                             const std::vector<ir::LayerInfo>& layers) {
  std::vector<int> ws = p.w_candidates;
  if (std::find(ws.begin(), ws.end(), 8) == ws.end()) ws.push_back(8);
  auto plan_of = [&](const UniformWidths& u) {
    return uniform_plan(layers, u.w, u.a, p.first_last_bits);
  };
  std::vector<UniformWidths> fit, above;
  for (int w : ws)
    for (int a : p.a_candidates) (p.meets(plan_of({w, a})) ? fit : above).push_back({w, a});
  std::vector<UniformWidths> out;
  for (const UniformWidths& u : fit) {
    bool dominated = std::any_of(fit.begin(), fit.end(), [&](const UniformWidths& v) {
      return v.w >= u.w && v.a >= u.a && (v.w > u.w || v.a > u.a);
    });
    if (!dominated) out.push_back(u);
  }
  if (!above.empty()) {
    std::vector<double> over;
    for (const UniformWidths& u : above) over.push_back(over_budget(p, plan_of(u)));
    out.push_back(above[std::min_element(over.begin(), over.end()) - over.begin()]);
  }
  return out;
}

}  // namespace mpq::allocation
