// Learned rounding on a tiny conv model: AdaRound and Attention Round each reconstruct held-out
// outputs better than nearest, end exactly on the grid, and Attention Round can move a weight
// to any level of its grid while AdaRound only chooses between the two nearest.
#include "mpq/ptq/rounding.h"

#include <c10/core/InferenceMode.h>
#include <torch/csrc/autograd/autograd.h>

#include "mpq/exec/executor.h"
#include "mpq/ptq/reconstruction.h"
#include "test_util.h"

namespace mpq::ptq {
namespace {

using namespace quant;  // NOLINT: the simulation the methods round

using Ints = std::vector<int64_t>;

ir::Graph tiny_conv() {
  at::manual_seed(11);
  test::GraphBuilder b({-1, 3, 6, 6});
  int w = b.constant("w", at::randn({6, 3, 3, 3}) * 0.4);
  int c = b.op("Conv", {b.g.inputs[0], w, b.constant("b", at::randn({6}) * 0.1)},
               {{"pads", Ints{1, 1, 1, 1}}}, "conv");
  int r = b.op("Relu", {c}, {}, "relu");
  int w2 = b.constant("w2", at::randn({4, 6, 3, 3}) * 0.3);
  return b.finish(b.op("Conv", {r, w2}, {{"pads", Ints{1, 1, 1, 1}}}, "conv2"));
}

TEST(LearnedRounding, BeatsNearestOnHeldOutInputsAndEndsOnTheGrid) {
  ir::Graph g = tiny_conv();
  auto calib_ds = test::TensorDataset::random(96, 3, 6, 6, 4, 1);
  auto test_ds = test::TensorDataset::random(64, 3, 6, 6, 4, 2);
  data::Loader calib = test::loader_for(calib_ds, 32), held = test::loader_for(test_ds, 64);
  at::Tensor x = held.batch(0).images;
  auto plan = allocation::uniform_plan(exec::quantizable_layers(g), 3, 8, 0);
  auto run = [&](const std::string& method) {
    QuantSim sim(g, plan);
    sim.calibrate(calib, CalibrationOptions{"mse", {}, true, false});
    RoundingOptions o;
    o.iters = 400;
    o.progress = false;
    make_rounding(method)->apply(sim, calib, o);
    for (size_t i = 0; i < sim.layers().size(); ++i) {
      const QuantLayer& l = sim.layers()[i];
      at::Tensor q = sim.weight_integers(i);
      EXPECT_GE(q.min().item<int64_t>(), l.weight_range().qmin) << method;
      EXPECT_LE(q.max().item<int64_t>(), 3) << method;
      EXPECT_TRUE(at::equal(sim.graph().initializer(l.weight),
                            dequantize_weight(q, sim.weight_scale(i), l.axis)))
          << method;
    }
    return test::held_out_error(sim, x);
  };
  double nearest = run("nearest");
  for (const char* method : {"adaround", "attention", "attention-stochastic"}) {
    double e = run(method);
    std::printf("held-out squared error: nearest %.4f, %s %.4f\n", nearest, method, e);
    EXPECT_LT(e, nearest) << method;
  }
}

// Pull every weight towards a target three grid steps away from where it starts.
at::Tensor fit_far_target(SoftRounding& r, const at::Tensor& start, const at::Tensor& target) {
  at::Tensor v =
      r.init(start, weight_range(4, WeightGrid::kRestricted)).detach().requires_grad_(true);
  for (int it = 0; it < 600; ++it) {
    at::Tensor loss =
        (r.soft(v, it / 600.0) - target).square().sum() + r.regularizer(v, it / 600.0);
    at::Tensor grad = torch::autograd::grad({loss}, {v})[0];
    at::NoGradGuard no_grad;
    v.sub_(0.05 * grad);
  }
  return r.hard(v.detach()).to(at::kFloat);
}

TEST(LearnedRounding, AttentionReachesEveryLevelAdaRoundOnlyTheNearestTwo) {
  at::Tensor start = at::tensor({-4.3f, -1.2f, 0.4f, 2.6f}), target = start + 3.0f;
  target = target.clamp(-7, 7).round();
  at::Tensor att = fit_far_target(*attention_variable(false), start, target);
  EXPECT_TRUE(at::equal(att, target)) << att << target;
  at::Tensor ada = fit_far_target(*adaround_variable(), start, target);
  EXPECT_TRUE((ada - start.floor()).ge(0).all().item<bool>());
  EXPECT_TRUE((ada - start.floor()).le(1).all().item<bool>()) << ada;
}

}  // namespace
}  // namespace mpq::ptq
