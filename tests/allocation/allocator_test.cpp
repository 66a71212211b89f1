// Allocation on synthetic problems with known answers: a layer made 10x more sensitive gets
// more bits, budgets are met (exactly when they can be), infeasible budgets name the smallest
// feasible value, and the cost model's formulas.
#include "mpq/allocation/allocator.h"

#include <c10/core/InferenceMode.h>

#include "mpq/core/error.h"
#include "mpq/exec/executor.h"
#include "test_util.h"

namespace mpq::allocation {
namespace {

using Ints = std::vector<int64_t>;

// x [N,1,2,4] -> flatten -> A(x) + 10·B(x) -> C: layer B's output is amplified ten times.
ir::Graph amplified_model() {
  at::manual_seed(5);
  test::GraphBuilder b({-1, 1, 2, 4});
  int f = b.op("Flatten", {b.g.inputs[0]}, {{"axis", int64_t{1}}}, "flatten");
  auto gemm = [&](int in, int64_t k, int64_t n, const std::string& name) {
    int w = b.constant(name + ".w", at::randn({n, k}) * 0.5);
    return b.op("Gemm", {in, w}, {{"transB", int64_t{1}}}, name);
  };
  int a = gemm(f, 8, 8, "A");
  int bb = gemm(f, 8, 8, "B");
  int ten = b.constant("ten", at::full({1}, 10.0f));
  int sum = b.op("Add", {a, b.op("Mul", {bb, ten}, {}, "amplify")}, {}, "sum");
  return b.finish(gemm(b.op("Relu", {sum}, {}, "relu"), 8, 4, "C"));
}

// Four equal layers with Ω_l(b) = c_l·4^(−b).
struct Synthetic {
  ir::Graph model;
  sensitivity::Report report;
};
Synthetic synthetic(std::vector<double> c) {
  test::GraphBuilder b({-1, 4, 4, 4});
  int x = b.g.inputs[0];
  for (size_t i = 0; i < c.size(); ++i)
    x = b.op("Conv", {x, b.constant("w" + std::to_string(i), at::randn({4, 4, 3, 3}))},
             {{"pads", Ints{1, 1, 1, 1}}}, "conv" + std::to_string(i));
  Synthetic s{b.finish(x), {}};
  s.report.metric = "synthetic";
  s.report.bits = {2, 3, 4, 5, 6, 8};
  for (size_t i = 0; i < c.size(); ++i) {
    s.report.layers.push_back("conv" + std::to_string(i));
    s.report.params.push_back(144);
    std::vector<double> row;
    for (int bits : s.report.bits) row.push_back(c[i] * std::pow(4.0, -bits));
    s.report.omega.push_back(row);
  }
  s.report.importance = c;
  return s;
}

Problem problem(const sensitivity::Report& r, const CostModel& costs,
                std::vector<std::string> budgets) {
  Problem p;
  p.sensitivity = &r;
  p.costs = &costs;
  p.w_candidates = r.bits;
  p.first_last_bits = 0;
  for (const auto& b : budgets) p.budgets.push_back(parse_budget(b));
  return p;
}

using test::error_of;

TEST(Ilp, TheMoreSensitiveLayerGetsMoreBitsAndTheBudgetIsMetExactly) {
  Synthetic s = synthetic({1, 1, 10, 1});
  CostModel costs(s.model);
  BitPlan plan = allocate("ilp", problem(s.report, costs, {"avg-w-bits=4"}));
  EXPECT_DOUBLE_EQ(costs.total(CostKind::kAvgWBits, plan), 4.0);
  int sensitive = plan.find("conv2")->w_bits;
  for (const char* other : {"conv0", "conv1", "conv3"})
    EXPECT_GT(sensitive, plan.find(other)->w_bits);
  EXPECT_EQ(plan.predicted["avg_w_bits"].get<double>(), 4.0);
}

TEST(Ilp, MeetsSeveralBudgetsAtOnce) {
  Synthetic s = synthetic({3, 1, 10, 2});
  CostModel costs(s.model);
  // Size: 4 layers × (144·b/8 + 4·4 scale bytes); BOPs: MACs·b·8.
  double size = 4 * (144 * 5 / 8.0 + 16), bops = 4 * 144.0 * 16 * 4 * 8;
  Problem p =
      problem(s.report, costs, {fmt::format("size={}", size), fmt::format("bops={}", bops)});
  BitPlan plan = allocate("ilp", p);
  EXPECT_LE(costs.total(CostKind::kSize, plan), size);
  EXPECT_LE(costs.total(CostKind::kBops, plan), bops);
  EXPECT_TRUE(p.meets(plan));
}

TEST(Ilp, InfeasibleBudgetStatesTheSmallestFeasibleValue) {
  Synthetic s = synthetic({1, 1, 1, 1});
  CostModel costs(s.model);
  EXPECT_EQ(error_of([&] { allocate("ilp", problem(s.report, costs, {"avg-w-bits=1.5"})); }),
            "--budget avg-w-bits=1.5 is infeasible: the smallest avg-w-bits reachable is 2 bits "
            "(every layer at its narrowest candidate, first and last at 0 bits); raise the "
            "budget or add narrower --candidates");
  std::string size = error_of([&] { allocate("ilp", problem(s.report, costs, {"size=100"})); });
  EXPECT_NE(size.find("the smallest size reachable is 0.20 KB"), std::string::npos) << size;
}

TEST(Ilp, PinsFirstAndLastLayers) {
  Synthetic s = synthetic({1, 1, 1, 1});
  CostModel costs(s.model);
  Problem p = problem(s.report, costs, {"avg-w-bits=5"});
  p.first_last_bits = 8;
  BitPlan plan = allocate("ilp", p);
  EXPECT_EQ(plan.find("conv0")->w_bits, 8);
  EXPECT_EQ(plan.find("conv3")->w_bits, 8);
  EXPECT_LE(costs.total(CostKind::kAvgWBits, plan), 5.0);
}

TEST(Fill, SpendsUnusedBudgetWhereOmegaMindsItLeastAndNeverExceedsIt) {
  Synthetic s = synthetic({1, 1, 10, 1});
  CostModel costs(s.model);
  Problem p = problem(s.report, costs, {"avg-w-bits=4"});
  BitPlan plan = uniform_plan(exec::quantizable_layers(s.model), 2, 8, 0);
  fill(p, plan);
  // 4 layers × 144 params: 4 bits on average is 8 bits to spend over the all-2-bit plan, and
  // every widening costs one layer's worth, so the budget is met exactly.
  EXPECT_DOUBLE_EQ(costs.total(CostKind::kAvgWBits, plan), 4.0);
  EXPECT_TRUE(p.meets(plan));
  for (const char* other : {"conv0", "conv1", "conv3"})
    EXPECT_GT(plan.find("conv2")->w_bits, plan.find(other)->w_bits);
  BitPlan full = plan;
  fill(p, full);  // nothing more fits
  for (size_t l = 0; l < plan.layers.size(); ++l)
    EXPECT_EQ(full.layers[l].w_bits, plan.layers[l].w_bits);
}

TEST(Proportional, WidthsFollowImportanceWithinTheBudget) {
  Synthetic s = synthetic({1, 2, 4, 8});
  CostModel costs(s.model);
  BitPlan plan = allocate("proportional", problem(s.report, costs, {"avg-w-bits=4"}));
  EXPECT_LE(costs.total(CostKind::kAvgWBits, plan), 4.0);
  for (int i = 0; i < 3; ++i) EXPECT_LE(plan.layers[i].w_bits, plan.layers[i + 1].w_bits) << i;
  EXPECT_LT(plan.layers[0].w_bits, plan.layers[3].w_bits);
}

TEST(Pareto, FrontierTradesCostForDamage) {
  Synthetic s = synthetic({1, 3, 9, 27});
  CostModel costs(s.model);
  nlohmann::json f = pareto(problem(s.report, costs, {"avg-w-bits=4"}), 5);
  ASSERT_EQ(f.size(), 5u);
  for (size_t i = 1; i < f.size(); ++i) {
    EXPECT_GE(f[i]["predicted"]["avg_w_bits"].get<double>(),
              f[i - 1]["predicted"]["avg_w_bits"].get<double>());
    EXPECT_LE(f[i]["predicted"]["omega"].get<double>(),
              f[i - 1]["predicted"]["omega"].get<double>());
    EXPECT_LE(f[i]["predicted"]["avg_w_bits"].get<double>(), f[i]["budget"].get<double>() + 1e-9);
  }
}

TEST(Allocation, AnAmplifiedLayerGetsMoreBitsEndToEnd) {
  ir::Graph g = amplified_model();
  auto ds = test::TensorDataset::random(64, 1, 2, 4, 4);
  data::Loader loader = test::loader_for(ds, 32);
  CostModel costs(g);
  for (const char* metric : {"output_mse", "hessian_trace"}) {
    sensitivity::Options opts;
    opts.progress = false;
    opts.hutchinson_samples = 30;
    sensitivity::Report r = sensitivity::compute(metric, {g, &loader, opts});
    Problem p = problem(r, costs, {"avg-w-bits=4"});
    BitPlan plan = allocate("ilp", p);
    EXPECT_GT(plan.find("B")->w_bits, plan.find("A")->w_bits) << metric;
    EXPECT_LE(costs.total(CostKind::kAvgWBits, plan), 4.0) << metric;
  }
}

TEST(CostModel, FormulasAndBudgetParsing) {
  Synthetic s = synthetic({1, 1, 1, 1});
  CostModel costs(s.model);
  ASSERT_EQ(costs.layers().size(), 4u);
  EXPECT_EQ(costs.layers()[0].macs, 144 * 16);  // 4x4 output pixels
  EXPECT_DOUBLE_EQ(costs.cost(CostKind::kSize, 0, 4, 8), 144 * 4 / 8.0 + 4 * 4);
  EXPECT_DOUBLE_EQ(costs.cost(CostKind::kSize, 0, 32, 8), 144 * 4.0);
  EXPECT_DOUBLE_EQ(costs.cost(CostKind::kBops, 0, 4, 6), 144 * 16 * 4 * 6.0);
  EXPECT_DOUBLE_EQ(parse_budget("size=60KB").limit, 60 * 1024.0);
  EXPECT_DOUBLE_EQ(parse_budget("bops=1.5G").limit, 1.5e9);
  EXPECT_DOUBLE_EQ(parse_budget("latency=300us").limit, 0.3);
  EXPECT_DOUBLE_EQ(parse_budget("energy=40uJ").limit, 40e6);
  EXPECT_NE(error_of([] { parse_budget("size=60XB"); }).find("unknown unit 'XB'"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_budget("speed=3"); }).find("unknown kind 'speed'"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_budget("size"); }).find("expected KIND=VALUE"), std::string::npos);
  EXPECT_NE(error_of([&] { costs.cost(CostKind::kLatency, 0, 4, 8); }).find("--latency-table"),
            std::string::npos);
}

TEST(Ilp, MeasuredActivationDamageDecidesTheActivationWidths) {
  // Equal weight damage; conv1's input is far more sensitive than the others'.
  Synthetic s = synthetic({1, 1, 1, 1});
  s.report.a_bits = {2, 4, 8};
  for (size_t l = 0; l < 4; ++l) {
    double c = l == 1 ? 1000.0 : 1.0;
    s.report.a_omega.push_back(
        {c * std::pow(4.0, -2), c * std::pow(4.0, -4), c * std::pow(4.0, -8)});
  }
  CostModel costs(s.model);
  Problem p = problem(s.report, costs, {});
  p.a_candidates = {2, 4, 8};
  BitPlan w4a4 = uniform_plan(exec::quantizable_layers(s.model), 4, 4, 0);
  p.budgets = {Budget{CostKind::kBops, costs.total(CostKind::kBops, w4a4), "bops"}};
  BitPlan plan = allocate("ilp", p);
  EXPECT_TRUE(p.meets(plan));
  int widest = 0;
  for (const auto& l : plan.layers) widest = std::max(widest, l.a_bits);
  EXPECT_EQ(plan.layers[1].a_bits, widest);
  EXPECT_GT(plan.layers[1].a_bits, plan.layers[0].a_bits);
  EXPECT_DOUBLE_EQ(p.omega(1, 4, 8), s.report.omega_at(1, 4) + s.report.a_omega[1][2]);
}

TEST(UniformBaselines, TheWidestThatFitAndTheCheapestAbove) {
  Synthetic s = synthetic({1, 1, 1, 1});
  CostModel costs(s.model);
  Problem p = problem(s.report, costs, {});
  p.a_candidates = {2, 3, 4, 8};
  std::vector<ir::LayerInfo> layers = exec::quantizable_layers(s.model);
  BitPlan w3a3 = uniform_plan(layers, 3, 3, 0);
  p.budgets = {Budget{CostKind::kBops, costs.total(CostKind::kBops, w3a3), "bops"}};
  std::vector<std::string> names;
  for (const UniformWidths& u : uniform_baselines(p, layers)) names.push_back(u.name());
  // BOPs ∝ w·a ≤ 9: W2A4, W3A3 and W4A2 fit with nothing wider in both (W2A3 is under W3A3);
  // the cheapest above is W5A2 (10).
  EXPECT_EQ(names, (std::vector<std::string>{"W2A4", "W3A3", "W4A2", "W5A2"}));
  EXPECT_DOUBLE_EQ(over_budget(p, w3a3), 1.0);
  EXPECT_NEAR(over_budget(p, uniform_plan(layers, 5, 2, 0)), 10.0 / 9.0, 1e-12);
  // A budget below every uniform plan: only the cheapest above.
  p.budgets[0].limit = costs.total(CostKind::kBops, uniform_plan(layers, 2, 2, 0)) * 0.9;
  names.clear();
  for (const UniformWidths& u : uniform_baselines(p, layers)) names.push_back(u.name());
  EXPECT_EQ(names, (std::vector<std::string>{"W2A2"}));
}

}  // namespace
}  // namespace mpq::allocation
