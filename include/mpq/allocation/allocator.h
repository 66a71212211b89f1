// Bit allocation under budgets (DESIGN.md section 5). One file per allocator under
// src/allocation/allocators/, registered by name:  MPQ_REGISTER(Allocator, "ilp", Ilp);
//
// Every allocator returns a plan that meets every budget (cost ≤ budget, checked exactly after
// solving); an infeasible budget is an error that states the smallest feasible value.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "mpq/allocation/bit_plan.h"
#include "mpq/allocation/cost_model.h"
#include "mpq/core/registry.h"
#include "mpq/sensitivity/metric.h"

namespace mpq::allocation {

struct Problem {
  const sensitivity::Report* sensitivity = nullptr;
  const CostModel* costs = nullptr;
  std::vector<int> w_candidates;  // default: the report's widths
  std::vector<int> a_candidates = {8};
  std::vector<Budget> budgets;
  int first_last_bits = 8;  // pinned layers' (w, a); 0: not pinned
  // Replaces the report's Ω in omega() when set (SSPS repairs by its own probabilities).
  std::function<double(size_t layer, int w, int a)> omega_fn;

  // The (w, a) options of layer l (pinned layers have one).
  std::vector<std::pair<int, int>> options(size_t layer) const;
  // Ω_l(w, a) = Ω_l(w) + Ω^a_l(a), the activation damage as the report measured it (metric
  // `reconstructed`); a report without it takes the weight's damage at a bits instead (a
  // heuristic). With one activation width the term is a constant and changes nothing.
  double omega(size_t layer, int w, int a) const;
  // Checks the budgets one by one against the cheapest plan; throws stating the smallest
  // feasible value of the first that cannot be met.
  void check_feasible() const;
  bool meets(const BitPlan& plan) const;
};

class Allocator {
 public:
  virtual ~Allocator() = default;
  virtual BitPlan allocate(const Problem& problem) const = 0;
};

BitPlan allocate(const std::string& allocator, const Problem& problem);

// Lowers widths greedily (least Ω increase per unit of cost saved) until every budget is met.
void repair(const Problem& problem, BitPlan& plan);

// Widens layers greedily while every budget still holds, each time the step up (wider weights
// and/or activations) with the least Ω increase (or most decrease) per unit of cost added: a
// plan that leaves budget unused spends it where Ω minds it least.
void fill(const Problem& problem, BitPlan& plan);

// How far `plan` is over the problem's budgets: the largest cost/limit ratio (≤ 1: it fits).
double over_budget(const Problem& problem, const BitPlan& plan);

// A uniform plan's widths (first and last layer pinned as the problem says).
struct UniformWidths {
  int w = 8, a = 8;
  std::string name() const { return "W" + std::to_string(w) + "A" + std::to_string(a); }
};

// The uniform plans a mixed plan should be compared with: every W{w}A{a} (w among the problem's
// weight candidates and 8, a among its activation candidates) that meets the budgets and has no
// other fitting plan at least as wide in both, then the cheapest one above the budgets (least
// over_budget), if any. `layers` are the model's quantized layers.
std::vector<UniformWidths> uniform_baselines(const Problem& problem,
                                             const std::vector<ir::LayerInfo>& layers);

// Pareto sweep: `points` budgets of the first budget's kind, from the smallest feasible to the
// all-8-bit cost, each solved by the ILP. Returns [{budget, plan, predicted, omega}].
nlohmann::json pareto(const Problem& problem, int points);

}  // namespace mpq::allocation
