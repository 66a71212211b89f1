#include "mpq/search/ssps.h"

#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/InferenceMode.h>
#include <fmt/format.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/optim/adam.h>

#include <chrono>
#include <cmath>
#include <memory>

#include "mpq/core/error.h"
#include "mpq/core/progress.h"
#include "mpq/exec/executor.h"
#include "mpq/quant/observer.h"
#include "mpq/quant/quant_sim.h"

namespace mpq::search {
namespace {

using allocation::Budget;

// Decisions are fixed only once every expected cost is within this fraction of its budget.
constexpr double kSettled = 0.05;
using allocation::CostModel;

// torch::optim::Adam on one tensor, stepped with a gradient computed elsewhere (SSPS takes the
// gradients of only the decisions still open, so each tensor keeps its own optimiser state).
class TensorAdam {
 public:
  TensorAdam(const at::Tensor& param, double lr)
      : param_(param), adam_(std::vector<at::Tensor>{param}, torch::optim::AdamOptions(lr)) {}
  void step(const at::Tensor& grad) {
    param_.mutable_grad() = grad;
    adam_.step();
    param_.mutable_grad() = at::Tensor();
  }

 private:
  at::Tensor param_;
  torch::optim::Adam adam_;
};

// One searched choice: the weight width or the input width of one layer.
struct Decision {
  size_t layer = 0;
  bool weight = true;
  std::vector<int> bits;
  at::Tensor alpha;  // logits [K]
  int gate = -1;     // value id of the gate initializer [K]
  int scale = -1;    // value id of the candidate steps [K, C] or [K, 1]
  int fixed = -1;    // candidate index once fixed
  std::unique_ptr<TensorAdam> alpha_adam, scale_adam;

  // softmax(α/τ), one-hot once fixed.
  at::Tensor probs(double tau) const {
    if (fixed >= 0)
      return at::one_hot(at::full({}, fixed, at::kLong), alpha.size(0)).to(at::kFloat);
    return at::softmax(alpha / tau, 0);
  }
  std::string side() const { return weight ? "w" : "a"; }
};

ir::Node& node_named(ir::Graph& g, const std::string& name) {
  for (ir::Node& n : g.nodes)
    if (n.name == name) return n;
  fail(ErrorCode::kInternal, "the simulation has no node '{}'", name);
}

double log2_space(const std::vector<Decision>& decisions) {
  double s = 0;
  for (const Decision& d : decisions)
    if (d.fixed < 0) s += std::log2(static_cast<double>(d.bits.size()));
  return s;
}

// The allocation problem the search's plan must solve (repair and fill work on it).
allocation::Problem problem_of(const SspsOptions& options, const CostModel& costs,
                               const std::vector<Budget>& budgets) {
  allocation::Problem p;
  p.costs = &costs;
  p.w_candidates = options.w_candidates;
  p.a_candidates = options.a_candidates;
  p.budgets = budgets;
  p.first_last_bits = options.first_last_bits;
  return p;
}

}  // namespace

void check_options(const SspsOptions& options, const std::vector<Budget>& budgets,
                   const CostModel* costs) {
  MPQ_CHECK(!budgets.empty(), ErrorCode::kInvalidArgument,
            "ssps: give at least one --budget (size=, bops=, latency=, energy= or avg-w-bits=)");
  for (const auto* list : {&options.w_candidates, &options.a_candidates}) {
    MPQ_CHECK(!list->empty(), ErrorCode::kInvalidArgument, "ssps: a candidate list is empty");
    for (int b : *list)
      MPQ_CHECK(b >= 2 && b <= 8, ErrorCode::kInvalidArgument,
                "ssps: candidate width {}: SSPS searches quantized widths 2..8", b);
  }
  MPQ_CHECK(options.round > 0 && options.steps > 0 && options.batch > 0,
            ErrorCode::kInvalidArgument,
            "ssps: --steps {}, --round {}, --search-batch {}: each must be positive", options.steps,
            options.round, options.batch);
  MPQ_CHECK(options.tau > 0 && options.tau_end > 0, ErrorCode::kInvalidArgument,
            "ssps: --tau {}, --tau-end {}: temperatures must be positive", options.tau,
            options.tau_end);
  MPQ_CHECK(options.theta > 0 && options.theta <= 1, ErrorCode::kInvalidArgument,
            "ssps: --theta {}: a certainty in (0, 1]", options.theta);
  if (costs) problem_of(options, *costs, budgets).check_feasible();
}

SspsResult ssps(const ir::Graph& model, const data::Loader& data, const CostModel& costs,
                const std::vector<Budget>& budgets, const SspsOptions& options) {
  auto start = std::chrono::steady_clock::now();
  check_options(options, budgets, &costs);
  MPQ_CHECK(data.size() > 0, ErrorCode::kInvalidArgument, "ssps: the search data is empty");
  allocation::Problem problem = problem_of(options, costs, budgets);

  // The supernet starts from the widest plan: every layer's quantizers exist and are calibrated.
  const auto& layers = costs.layers();
  size_t n = layers.size();
  int w_max = *std::max_element(options.w_candidates.begin(), options.w_candidates.end());
  int a_max = *std::max_element(options.a_candidates.begin(), options.a_candidates.end());
  allocation::BitPlan wide;
  wide.model = model.source;
  for (size_t l = 0; l < n; ++l) {
    auto opts = problem.options(l);
    bool pinned = opts.size() == 1;
    wide.layers.push_back(
        {layers[l].name, pinned ? opts[0].first : w_max, pinned ? opts[0].second : a_max});
  }
  quant::QuantSim sim(model, wide, "ssps", options.weight_grid);
  MPQ_CHECK(sim.layers().size() == n, ErrorCode::kInternal, "ssps: {} layers vs {} costed",
            sim.layers().size(), n);
  quant::CalibrationStats stats = sim.collect(data, options.progress);
  quant::CalibrationOptions copts;
  copts.observer = options.observer;
  copts.progress = options.progress;
  sim.calibrate(stats, copts);
  auto observer = quant::make_observer(options.observer);

  // Decisions: the weight width of every layer that is not pinned, and its input width when
  // there is more than one activation candidate.
  ir::Graph& g = sim.graph();
  std::vector<Decision> decisions;
  std::vector<int> w_decision(n, -1), a_decision(n, -1);
  for (size_t l = 0; l < n; ++l) {
    if (problem.options(l).size() == 1) continue;
    quant::QuantLayer& q = sim.layers()[l];
    const std::string& name = q.info.name;
    auto add = [&](bool weight, const std::vector<int>& bits, at::Tensor scales, at::Tensor zeros,
                   const std::vector<int64_t>& qmin, const std::vector<int64_t>& qmax) {
      Decision d;
      d.layer = l;
      d.weight = weight;
      d.bits = bits;
      d.alpha = at::tensor(std::vector<float>(bits.begin(), bits.end())) *
                static_cast<float>(options.init_slope);
      d.alpha_adam = std::make_unique<TensorAdam>(d.alpha, options.lr);
      ir::Node& node = node_named(g, name + (weight ? ".weight_quant" : ".input_quant"));
      d.gate = g.add_value(name + (weight ? ".weight_gate" : ".input_gate"));
      d.scale = g.add_value(name + (weight ? ".weight_steps" : ".input_steps"));
      int zero = g.add_value(name + (weight ? ".weight_zeros" : ".input_zeros"));
      g.set_initializer(d.gate,
                        at::one_hot(at::full({}, 0, at::kLong), d.alpha.size(0)).to(at::kFloat));
      g.set_initializer(d.scale, scales);
      g.set_initializer(zero, zeros);
      d.scale_adam = std::make_unique<TensorAdam>(scales, options.step_lr);
      node.op = "mpq::SuperQuantize";
      node.inputs = {node.inputs[0], d.gate, d.scale, zero};
      node.attrs["qmin"] = qmin;
      node.attrs["qmax"] = qmax;
      (weight ? w_decision : a_decision)[l] = static_cast<int>(decisions.size());
      decisions.push_back(std::move(d));
    };
    {
      std::vector<at::Tensor> s;
      std::vector<int64_t> qmin, qmax;
      for (int b : options.w_candidates) {
        quant::IntRange r = quant::weight_range(b, options.weight_grid);
        s.push_back(
            quant::weight_scales(sim.float_weight(l), q.axis, b, options.weight_grid, true));
        qmin.push_back(r.qmin);
        qmax.push_back(r.qmax);
      }
      at::Tensor scales = at::stack(s);
      add(true, options.w_candidates, scales, at::zeros_like(scales), qmin, qmax);
    }
    if (options.a_candidates.size() > 1) {
      const quant::ActivationStats& st = stats.at(q.input);
      std::vector<float> s, z;
      std::vector<int64_t> qmin, qmax;
      for (int b : options.a_candidates) {
        auto [lo, hi] = observer->range(st, b, copts.observer_options);
        if (st.non_negative()) lo = 0;
        quant::Encoding e = quant::activation_encoding(lo, hi, b);
        s.push_back(static_cast<float>(e.scale));
        z.push_back(static_cast<float>(e.zero_point));
        qmin.push_back(quant::activation_range(b).qmin);
        qmax.push_back(quant::activation_range(b).qmax);
      }
      int64_t k = static_cast<int64_t>(s.size());
      add(false, options.a_candidates, at::tensor(s).reshape({k, 1}), at::tensor(z).reshape({k, 1}),
          qmin, qmax);
    }
  }
  MPQ_CHECK(!decisions.empty(), ErrorCode::kInvalidArgument,
            "ssps: nothing to search: every layer is pinned or has one candidate");

  // Per layer and budget: cost / limit over (weight option, input option).
  std::vector<std::vector<at::Tensor>> cost(n);
  for (size_t l = 0; l < n; ++l) {
    std::vector<int> ws =
        w_decision[l] >= 0 ? options.w_candidates : std::vector<int>{sim.layers()[l].w_bits};
    std::vector<int> as =
        a_decision[l] >= 0 ? options.a_candidates : std::vector<int>{sim.layers()[l].a_bits};
    for (const Budget& b : budgets) {
      at::Tensor c = at::empty({static_cast<int64_t>(ws.size()), static_cast<int64_t>(as.size())},
                               at::kDouble);
      for (size_t i = 0; i < ws.size(); ++i)
        for (size_t j = 0; j < as.size(); ++j)
          c[i][j] = costs.cost(b.kind, l, ws[i], as[j]) / costs.limit(b);
      cost[l].push_back(c);
    }
  }
  double tau = options.tau;        // annealed geometrically to tau_end over the steps
  auto expected = [&](size_t k) {  // E[cost_k] / T_k, differentiable in every open α
    at::Tensor e = at::zeros({}, at::kDouble);
    for (size_t l = 0; l < n; ++l) {
      at::Tensor pw = w_decision[l] >= 0 ? decisions[w_decision[l]].probs(tau).to(at::kDouble)
                                         : at::ones({1}, at::kDouble);
      at::Tensor pa = a_decision[l] >= 0 ? decisions[a_decision[l]].probs(tau).to(at::kDouble)
                                         : at::ones({1}, at::kDouble);
      e = e + (pw.unsqueeze(1) * cost[l][k] * pa.unsqueeze(0)).sum();
    }
    return e;
  };

  // The search data in memory, and the float model's outputs when distilling.
  at::Tensor images, labels, teacher;
  {
    std::vector<at::Tensor> xs, ys;
    for (int64_t b = 0; b < data.batches(); ++b) {
      data::Batch batch = data.batch(b);
      xs.push_back(batch.images);
      ys.push_back(batch.labels);
    }
    images = at::cat(xs);
    labels = at::cat(ys);
    if (options.labels_from_model) {
      c10::InferenceMode inference;
      exec::Executor f(sim.float_graph());
      std::vector<at::Tensor> outs;
      for (int64_t i = 0; i < images.size(0); i += 128)
        outs.push_back(at::softmax(f.forward(images.slice(0, i, i + 128)), 1));
      teacher = at::cat(outs);
    }
  }

  std::vector<at::Tensor> weights;
  std::vector<std::unique_ptr<TensorAdam>> weight_adam;
  if (options.finetune) {
    for (const quant::QuantLayer& q : sim.layers()) {
      at::Tensor& w = g.initializer(q.weight);
      w = w.detach().clone().requires_grad_(true);
      weights.push_back(w);
      weight_adam.push_back(std::make_unique<TensorAdam>(w, options.weight_lr));
    }
  }
  if (options.step_lr > 0)
    for (Decision& d : decisions) g.initializer(d.scale).requires_grad_(true);

  SspsResult result;
  double lambda = options.lambda;
  auto record = [&](int64_t step, nlohmann::json fixed, double loss) {
    int open = 0;
    std::vector<bool> layer_open(n, false);
    for (const Decision& d : decisions)
      if (d.fixed < 0) {
        ++open;
        layer_open[d.layer] = true;
      }
    nlohmann::json e = nlohmann::json::object();
    for (size_t k = 0; k < budgets.size(); ++k)
      e[allocation::cost_name(budgets[k].kind)] = expected(k).item<double>();
    result.rounds.push_back(
        {{"step", step},
         {"fixed", fixed},
         {"open_layers", std::count(layer_open.begin(), layer_open.end(), true)},
         {"open_decisions", open},
         {"log2_space", log2_space(decisions)},
         {"loss", loss},
         {"lambda", lambda},
         {"tau", tau},
         {"expected", e}});
    return result.rounds.back();
  };
  {
    nlohmann::json r = record(0, nlohmann::json::array(), 0.0);
    log_line(
        fmt::format("ssps: {} decisions over {} layers, search space 2^{:.1f}, {} images, "
                    "up to {} steps of {}",
                    decisions.size(), r["open_layers"].get<int>(), r["log2_space"].get<double>(),
                    images.size(0), options.steps, options.batch));
  }

  exec::Executor executor(g);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(options.seed);
  Progress bar("ssps search", options.steps, options.progress);
  double round_loss = 0;
  int64_t round_steps = 0, step = 0;
  for (; step < options.steps; ++step) {
    tau = options.tau * std::pow(options.tau_end / options.tau,
                                 static_cast<double>(step) / static_cast<double>(options.steps));
    // 1. One width per open decision: hard Gumbel-softmax, straight-through.
    for (Decision& d : decisions) {
      if (d.fixed >= 0) continue;
      at::Tensor u = at::rand({d.alpha.size(0)}, gen).clamp(1e-10, 1.0 - 1e-7);
      d.alpha.requires_grad_(true);
      at::Tensor y = at::softmax((d.alpha - at::log(-at::log(u))) / tau, 0);
      at::Tensor hard = at::one_hot(y.argmax(), y.size(0)).to(at::kFloat);
      g.initializer(d.gate) = hard - y.detach() + y;
    }
    // 2. The loss on a minibatch.
    at::Tensor idx =
        at::randint(images.size(0), {std::min(options.batch, images.size(0))}, gen, at::kLong);
    at::Tensor logp = at::log_softmax(executor.forward(images.index_select(0, idx)), 1);
    at::Tensor task = options.labels_from_model
                          ? -(teacher.index_select(0, idx) * logp).sum(1).mean()
                          : at::nll_loss(logp, labels.index_select(0, idx));
    at::Tensor penalty = at::zeros({}, at::kDouble);
    for (size_t k = 0; k < budgets.size(); ++k)
      penalty = penalty + at::relu(expected(k) - 1).square();
    at::Tensor loss = task + lambda * penalty.to(at::kFloat);
    // 3. Adam on the open logits, the candidate steps and (finetune) the weights.
    std::vector<at::Tensor> params;
    for (Decision& d : decisions)
      if (d.fixed < 0) params.push_back(d.alpha);
    if (options.step_lr > 0)
      for (Decision& d : decisions) params.push_back(g.initializer(d.scale));
    for (at::Tensor& w : weights) params.push_back(w);
    std::vector<at::Tensor> grads = torch::autograd::grad({loss}, params, {}, false, false, true);
    {
      at::NoGradGuard no_grad;
      size_t i = 0;
      for (Decision& d : decisions)
        if (d.fixed < 0) {
          if (grads[i].defined()) d.alpha_adam->step(grads[i]);
          ++i;
        }
      if (options.step_lr > 0)
        for (Decision& d : decisions) {
          at::Tensor& s = g.initializer(d.scale);
          if (grads[i].defined()) {
            d.scale_adam->step(grads[i]);
            s.clamp_min_(1e-8);
          }
          ++i;
        }
      for (size_t j = 0; j < weights.size(); ++j, ++i)
        if (grads[i].defined()) weight_adam[j]->step(grads[i]);
    }
    round_loss += task.item<double>();
    ++round_steps;
    bar.advance(
        1, fmt::format("loss {:.3f}, space 2^{:.1f}", task.item<double>(), log2_space(decisions)));

    // 4. Every `round` steps: the certain decisions leave the search.
    if ((step + 1) % options.round == 0 || step + 1 == options.steps) {
      nlohmann::json fixed = nlohmann::json::array();
      std::vector<std::string> names;
      // Nothing is fixed while the expected cost is still well over a budget: the penalty is
      // still pulling every width down, and a width fixed now may be one the budget cannot pay.
      // Then λ grows by half, so that the penalty wins against the task loss wherever they balance.
      bool settled = true;
      for (size_t k = 0; k < budgets.size(); ++k)
        settled = settled && expected(k).item<double>() <= 1 + kSettled;
      if (!settled) lambda *= 1.5;
      for (Decision& d : decisions) {
        if (d.fixed >= 0 || !settled) continue;
        at::Tensor p = at::softmax(d.alpha.detach() / tau, 0);
        double certainty = p.max().item<double>();
        if (certainty < options.theta) continue;
        d.fixed = static_cast<int>(p.argmax().item<int64_t>());
        d.alpha = d.alpha.detach();
        g.initializer(d.gate) = d.probs(tau);
        const std::string& name = layers[d.layer].name;
        fixed.push_back({{"layer", name},
                         {"side", d.side()},
                         {"bits", d.bits[d.fixed]},
                         {"certainty", certainty}});
        names.push_back(fmt::format("{} {}{}", name, d.side(), d.bits[d.fixed]));
      }
      nlohmann::json r = record(step + 1, fixed, round_loss / static_cast<double>(round_steps));
      std::string e;
      for (auto& [k, v] : r["expected"].items())
        e += fmt::format(", E[{}]/T {:.3f}", k, v.get<double>());
      log_line(fmt::format(
          "ssps step {}: fixed {}{}; {} layers open, search space 2^{:.1f} "
          "(loss {:.3f}{})",
          step + 1, fixed.size(),
          names.empty() ? "" : " (" + fmt::format("{}", fmt::join(names, ", ")) + ")",
          r["open_layers"].get<int>(), r["log2_space"].get<double>(), r["loss"].get<double>(), e));
      round_loss = 0;
      round_steps = 0;
      if (r["open_decisions"].get<int>() == 0) {
        ++step;
        break;
      }
    }
  }
  bar.finish(step < options.steps
                 ? fmt::format("every decision fixed after {} steps", step)
                 : fmt::format("{} steps, {} decisions still open", step,
                               std::count_if(decisions.begin(), decisions.end(),
                                             [](const Decision& d) { return d.fixed < 0; })));

  // The plan: fixed decisions, argmax for the open ones, then the greedy repair.
  allocation::BitPlan& plan = result.plan;
  plan.model = model.source;
  std::vector<at::Tensor> final_p;
  for (Decision& d : decisions) {
    at::Tensor p = at::softmax(d.alpha.detach() / tau, 0);
    if (d.fixed < 0) d.fixed = static_cast<int>(p.argmax().item<int64_t>());
    final_p.push_back(p);
  }
  for (size_t l = 0; l < n; ++l) {
    int w = w_decision[l] >= 0 ? decisions[w_decision[l]].bits[decisions[w_decision[l]].fixed]
                               : sim.layers()[l].w_bits;
    int a = a_decision[l] >= 0 ? decisions[a_decision[l]].bits[decisions[a_decision[l]].fixed]
                               : sim.layers()[l].a_bits;
    plan.layers.push_back({layers[l].name, w, a});
  }
  allocation::BitPlan before = plan;
  problem.omega_fn = [&](size_t l, int w, int a) {
    double o = 0;
    auto nll = [&](int d, int bits) {
      if (d < 0) return 0.0;
      const auto& b = decisions[d].bits;
      size_t i = std::find(b.begin(), b.end(), bits) - b.begin();
      return -std::log(std::max(final_p[d][static_cast<int64_t>(i)].item<double>(), 1e-12));
    };
    o += nll(w_decision[l], w) + nll(a_decision[l], a);
    return o;
  };
  auto changed = [&](const allocation::BitPlan& a, const allocation::BitPlan& b) {
    int c = 0;
    for (size_t l = 0; l < n; ++l)
      c += a.layers[l].w_bits != b.layers[l].w_bits || a.layers[l].a_bits != b.layers[l].a_bits;
    return c;
  };
  allocation::repair(problem, plan);
  int repaired = changed(before, plan);
  MPQ_CHECK(problem.meets(plan), ErrorCode::kInternal, "ssps: the repaired plan misses a budget");
  if (repaired > 0)
    log_line(
        fmt::format("ssps: the argmax plan exceeded a budget; greedy repair narrowed {} "
                    "layer(s)",
                    repaired));
  // Budget the argmax plan (or the repair) left unused: wider is not worse, so it is spent where
  // the logits mind it least.
  allocation::BitPlan repaired_plan = plan;
  allocation::fill(problem, plan);
  int filled = changed(repaired_plan, plan);
  if (filled > 0)
    log_line(fmt::format("ssps: {} layer(s) widened into the budget left unused", filled));

  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  nlohmann::json budget = nlohmann::json::object();
  for (const Budget& b : budgets) budget[allocation::cost_name(b.kind)] = b.limit;
  budget["allocator"] = "ssps";
  plan.budget = budget;
  plan.predicted = costs.predicted(plan);
  plan.predicted["ssps"] = {
      {"steps", step},           {"seconds", result.seconds},    {"repaired_layers", repaired},
      {"filled_layers", filled}, {"finetune", options.finetune}, {"rounds", result.rounds}};
  nlohmann::json probs = nlohmann::json::array();
  for (size_t i = 0; i < decisions.size(); ++i) {
    const Decision& d = decisions[i];
    std::vector<double> p(final_p[i].data_ptr<float>(),
                          final_p[i].data_ptr<float>() + final_p[i].numel());
    probs.push_back(
        {{"layer", layers[d.layer].name}, {"side", d.side()}, {"bits", d.bits}, {"p", p}});
  }
  plan.predicted["ssps"]["probabilities"] = probs;
  if (options.finetune) {
    result.finetuned = sim.float_graph();
    for (size_t l = 0; l < n; ++l)
      result.finetuned.initializer(sim.layers()[l].weight) = weights[l].detach().clone();
  }
  return result;
}

}  // namespace mpq::search
