// SSPS on tiny nets built here: the single-path quantizer node, a layer made very sensitive
// getting the most bits, and plans that meet tight budgets (several at once, activation widths
// searched too).
#include "mpq/search/ssps.h"

#include <torch/csrc/autograd/autograd.h>

#include "mpq/allocation/cost_model.h"
#include "test_util.h"

namespace mpq::search {
namespace {

using Ints = std::vector<int64_t>;

// stem conv, then three parallel 8→8 3x3 convs (b, c, d) summed, a classifier on the feature map.
// With `sensitive`, c's weights are 10x larger than b's and d's: the sum, and so the output, is
// mostly c's, and so is the damage its quantization noise (relative to its weights) does.
ir::Graph branches(bool sensitive) {
  at::manual_seed(3);
  test::GraphBuilder b({-1, 3, 8, 8});
  Ints pad{1, 1, 1, 1};
  auto conv = [&](int x, int64_t in, const std::string& name, double gain) {
    int w = b.constant(name + ".w", at::randn({8, in, 3, 3}) * (gain * 1.4 / std::sqrt(in * 9.0)));
    int bias = b.constant(name + ".b", at::randn({8}) * 0.1);
    return b.op("Conv", {x, w, bias}, {{"pads", pad}}, name);
  };
  int x = b.op("Relu", {conv(b.g.inputs[0], 3, "stem", 1)}, {}, "stem.relu");
  int sum = b.op("Add", {conv(x, 8, "b", 1), conv(x, 8, "c", sensitive ? 10 : 1)}, {}, "add1");
  sum = b.op("Relu", {b.op("Add", {sum, conv(x, 8, "d", 1)}, {}, "add2")}, {}, "relu");
  int flat = b.op("Flatten", {sum}, {{"axis", int64_t{1}}}, "flatten");
  int w = b.constant("fc.w", at::randn({5, 8 * 8 * 8}));
  ir::Graph g = b.finish(b.op("Gemm", {flat, w}, {{"transB", int64_t{1}}}, "fc"));
  // Logits that vary across images with a spread of about 6: a task worth distilling.
  at::Tensor logits = exec::Executor(g).forward(at::randn({64, 3, 8, 8}) * 2).detach();
  g.initializer(w).mul_(6 / (logits - logits.mean(0)).std().item<double>());
  return g;
}

int bits_of(const allocation::BitPlan& plan, const std::string& layer) {
  return plan.find(layer)->w_bits;
}

TEST(SuperQuantize, RunsTheGatedCandidateAndItsGateGradientIsTheNoiseAlongTheLossGradient) {
  test::GraphBuilder b({-1, 4});
  int gate = b.constant("gate", at::tensor({0.f, 1.f, 0.f}));
  at::Tensor steps = at::tensor({0.5f, 0.1f, 0.02f}).reshape({3, 1});
  int scale = b.constant("scale", steps);
  int zero = b.constant("zero", at::tensor({0.f, 3.f, 0.f}).reshape({3, 1}));
  int y = b.op("mpq::SuperQuantize", {b.g.inputs[0], gate, scale, zero},
               {{"qmin", Ints{0, 0, 0}}, {"qmax", Ints{3, 15, 255}}, {"axis", int64_t{-1}}});
  ir::Graph g = b.finish(y);
  at::Tensor x = at::randn({6, 4});
  exec::Executor e(g);
  at::Tensor want = at::fake_quantize_per_tensor_affine(x, 0.1, 3, 0, 15);
  EXPECT_TRUE(at::allclose(e.forward(x), want, 0, 1e-6));

  // Under autograd the gate carries <dL/dy, Q(x) - x>.
  at::Tensor t = at::randn({6, 4});
  g.initializer(gate).requires_grad_(true);
  at::Tensor out = e.forward(x);
  EXPECT_TRUE(at::allclose(out, want, 0, 1e-6));
  at::Tensor loss = (out * t).sum();
  at::Tensor grad = torch::autograd::grad({loss}, {g.initializer(gate)})[0];
  EXPECT_NEAR(grad[1].item<double>(), (t * (want - x)).sum().item<double>(), 1e-4);
  EXPECT_EQ(grad[0].item<double>(), 0.0);  // the other candidates never ran
  EXPECT_EQ(grad[2].item<double>(), 0.0);
}

TEST(Ssps, AVerySensitiveLayerGetsTheMostBits) {
  auto ds = test::TensorDataset::random(256, 3, 8, 8, 5, 1);
  data::Loader loader = test::loader_for(ds, 64);
  SspsOptions o;
  o.labels_from_model = true;  // random images: distil from the float model
  o.progress = false;
  o.steps = 600;
  for (bool sensitive : {false, true}) {
    ir::Graph g = branches(sensitive);
    allocation::CostModel costs(g);
    // BOPs for b and d at 2 bits and c at 6 (first and last at 8, inputs at 8).
    allocation::BitPlan target = allocation::uniform_plan(exec::quantizable_layers(g), 2, 8);
    for (auto& l : target.layers)
      if (l.name == "c") l.w_bits = 6;
    std::vector<allocation::Budget> budgets{allocation::parse_budget(fmt::format(
        "bops={}", static_cast<int64_t>(costs.total(allocation::CostKind::kBops, target))))};
    SspsResult r = ssps(g, loader, costs, budgets, o);
    int b = bits_of(r.plan, "b"), c = bits_of(r.plan, "c"), d = bits_of(r.plan, "d");
    SCOPED_TRACE(fmt::format("sensitive {}: b {} c {} d {}: {}", sensitive, b, c, d,
                             r.plan.predicted["ssps"]["probabilities"].dump()));
    EXPECT_LE(costs.total(allocation::CostKind::kBops, r.plan), costs.limit(budgets[0]));
    EXPECT_EQ(bits_of(r.plan, "stem"), 8);  // first and last pinned
    EXPECT_EQ(bits_of(r.plan, "fc"), 8);
    if (sensitive) {
      EXPECT_GT(c, b);
      EXPECT_GT(c, d);
    }
    // The log: the space only shrinks, and ends with nothing open.
    ASSERT_GE(r.rounds.size(), 2u);
    EXPECT_NEAR(r.rounds[0]["log2_space"].get<double>(), 3 * std::log2(6.0), 1e-9);
    for (size_t i = 1; i < r.rounds.size(); ++i)
      EXPECT_LE(r.rounds[i]["log2_space"].get<double>(),
                r.rounds[i - 1]["log2_space"].get<double>());
  }
}

TEST(Ssps, TightBudgetsAreAllMetWithActivationWidthsSearched) {
  ir::Graph g = branches(false);
  auto ds = test::TensorDataset::random(128, 3, 8, 8, 5, 2);
  data::Loader loader = test::loader_for(ds, 64);
  allocation::CostModel costs(g);
  SspsOptions o;
  o.labels_from_model = true;
  o.progress = false;
  o.steps = 200;
  o.a_candidates = {4, 8};
  o.first_last_bits = 0;  // every layer searched
  // The narrowest plan costs 2-bit weights everywhere and 4-bit inputs: budgets just above it.
  allocation::BitPlan narrowest = allocation::uniform_plan(exec::quantizable_layers(g), 2, 4, 0);
  double size = costs.total(allocation::CostKind::kSize, narrowest) * 1.1;
  double bops = costs.total(allocation::CostKind::kBops, narrowest) * 1.3;
  std::vector<allocation::Budget> budgets{
      allocation::parse_budget(fmt::format("size={}B", static_cast<int64_t>(size))),
      allocation::parse_budget(fmt::format("bops={}", static_cast<int64_t>(bops)))};
  SspsResult r = ssps(g, loader, costs, budgets, o);
  for (const auto& b : budgets) EXPECT_LE(costs.total(b.kind, r.plan), costs.limit(b)) << b.text;
  bool wide = false;
  for (const auto& l : r.plan.layers) wide = wide || l.w_bits > 2 || l.a_bits > 4;
  EXPECT_TRUE(wide) << "the budgets leave room above the narrowest plan, and the plan uses it";
  EXPECT_EQ(r.plan.budget["allocator"], "ssps");

  // A budget below the narrowest plan fails before any search, in one line.
  std::vector<allocation::Budget> impossible{
      allocation::parse_budget(fmt::format("size={}B", static_cast<int64_t>(size / 1.1 * 0.9)))};
  std::string err = test::error_of([&] { ssps(g, loader, costs, impossible, o); });
  EXPECT_NE(err.find("is infeasible: the smallest size reachable is"), std::string::npos) << err;
  o.w_candidates = {2, 16};
  err = test::error_of([&] { ssps(g, loader, costs, budgets, o); });
  EXPECT_NE(err.find("candidate width 16: SSPS searches quantized widths 2..8"), std::string::npos)
      << err;
}

}  // namespace
}  // namespace mpq::search
