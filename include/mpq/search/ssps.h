// SSPS: sequential single-path differentiable bit-width search under hardware constraints
// (DESIGN.md section 6).
//
// The supernet is the model's QuantSim in which every searched layer's weight quantizer (and,
// with several activation candidates, its input quantizer) is an mpq::SuperQuantize node: K
// candidate grids, each with its own learned step size, of which a one-hot gate selects one.
// Each searched decision (layer, side) has logits α over its candidates. A step
//   1. samples every open decision's width with hard Gumbel-softmax (only that quantizer runs;
//      the straight-through gate carries ∂L/∂gate = <∂L/∂y, Q_c(x) − x> back to α),
//   2. runs a minibatch of the search data and computes
//        L = CE (labels, or KL to the float model's outputs) + λ·Σ_k max(0, E[cost_k]/T_k − 1)²
//      with E[cost_k] = Σ_l p_w,lᵀ C_k,l p_a,l, p = softmax(α/τ) (a fixed decision is one-hot),
//   3. updates α and the step sizes with Adam (and the weights, with finetune).
// Every `round` steps, once every expected cost is within 5% of its budget (else λ grows by half
// and the search goes on), each open decision whose certainty max softmax(α/τ) ≥ θ is fixed to its
// argmax and leaves the search: the space shrinks round by round. At the end the open ones take
// their argmax, a greedy repair (allocation::repair, Ω = −log p) makes the plan meet every
// budget, and allocation::fill spends what the plan leaves unused.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mpq/allocation/allocator.h"
#include "mpq/data/dataset.h"
#include "mpq/ir/graph.h"
#include "mpq/quant/quantizer.h"

namespace mpq::search {

struct SspsOptions {
  std::vector<int> w_candidates = {2, 3, 4, 5, 6, 8};
  std::vector<int> a_candidates = {8};  // more than one: activation widths are searched too
  int first_last_bits = 8;              // pinned first and last layers; 0: searched too
  int64_t steps = 600;                  // at most; ends early once every decision is fixed
  int64_t batch = 32;                   // images per step
  int64_t round = 50;                   // K: steps between fixing rounds
  double theta = 0.5;                   // certainty that fixes a decision
  // Temperature of the softmax (the Gumbel samples' gradient path, E[cost] and the certainty),
  // annealed geometrically from tau to tau_end over the steps: the expected cost becomes the
  // argmax plan's cost, and decisions grow certain and leave the search.
  double tau = 1.0;
  double tau_end = 0.2;
  double lambda = 10.0;  // weight of the constraint penalty (grows by half after
                         // each round ending > 5% over a budget)
  // Initial logits α_b = slope·b. At 1 the search starts near the widest candidates and the
  // budget pulls widths down, so each layer's noise is judged in a network that still works (at
  // 0, uniform, most sampled paths have several 2-bit layers and the gradients say little).
  double init_slope = 1.0;
  double lr = 0.05;                // logits (Adam)
  double step_lr = 1e-5;           // candidate step sizes (Adam); 0: keep calibrated
  bool finetune = false;           // train the weights jointly (QAT flavour)
  double weight_lr = 1e-6;         // with finetune (Adam); 1e-5 cost resnet20 4.5 points
  bool labels_from_model = false;  // distil from the float model instead of labels
  std::string observer = "mse";    // initial activation ranges
  quant::WeightGrid weight_grid = quant::kDefaultWeightGrid;
  uint64_t seed = 0;
  bool progress = true;
};

struct SspsResult {
  allocation::BitPlan plan;
  // Per fixing round: {step, fixed: [{layer, side, bits, certainty}], open_layers,
  // open_decisions, log2_space, loss, expected: {cost: E/T}}; the first entry is the start.
  nlohmann::json rounds = nlohmann::json::array();
  ir::Graph finetuned;  // finetune: the BN-folded model with the trained weights
  double seconds = 0;
};

// Throws (one line) on options SSPS cannot use: no budget, a candidate outside 2..8, ...; with
// `costs`, also on a budget no plan can meet (stating the smallest feasible value).
void check_options(const SspsOptions& options, const std::vector<allocation::Budget>& budgets,
                   const allocation::CostModel* costs = nullptr);

// Searches `model`'s widths on `data` under every budget. Throws (one line) on an infeasible
// budget or a candidate outside 2..8, before any work.
SspsResult ssps(const ir::Graph& model, const data::Loader& data,
                const allocation::CostModel& costs, const std::vector<allocation::Budget>& budgets,
                const SspsOptions& options);

}  // namespace mpq::search
