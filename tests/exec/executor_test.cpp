#include "mpq/exec/executor.h"

#include <c10/core/GradMode.h>

#include "test_util.h"

namespace mpq {
namespace {

// conv -> BN -> relu -> global pool -> flatten -> gemm, in double for finite differences.
ir::Graph tiny_net() {
  auto d = at::TensorOptions().dtype(at::kDouble);
  test::GraphBuilder b({-1, 2, 5, 5});
  int conv = b.op(
      "Conv", {b.g.inputs[0], b.constant("w", at::randn({3, 2, 3, 3}, d))},
      {{"kernel_shape", std::vector<int64_t>{3, 3}}, {"pads", std::vector<int64_t>{1, 1, 1, 1}}},
      "conv");
  int bn =
      b.op("BatchNormalization",
           {conv, b.constant("g", at::rand({3}, d) + 0.5), b.constant("beta", at::randn({3}, d)),
            b.constant("m", at::randn({3}, d)), b.constant("v", at::rand({3}, d) + 0.5)},
           {}, "bn");
  int act = b.op("Relu", {bn});
  int pool = b.op("GlobalAveragePool", {act});
  int flat = b.op("Flatten", {pool});
  int fc = b.op("Gemm",
                {flat, b.constant("fw", at::randn({4, 3}, d)), b.constant("fb", at::randn({4}, d))},
                {{"transB", int64_t{1}}}, "fc");
  return b.finish(fc);
}

TEST(Executor, GradientMatchesFiniteDifferences) {
  ir::Graph g = tiny_net();
  at::Tensor x = at::randn({2, 2, 5, 5}, at::kDouble);
  int w = g.value_id("w");
  g.initializer(w).requires_grad_(true);
  exec::Executor exec(g);
  at::Tensor loss = exec.forward(x).pow(2).sum();
  loss.backward();
  at::Tensor grad = g.initializer(w).grad().clone();
  ASSERT_TRUE(grad.defined());

  c10::AutoGradMode no_grad(false);
  at::Tensor weight = g.initializer(w);
  const double h = 1e-6;
  for (int64_t i : {0, 7, 20, 53}) {
    double saved = weight.view({-1})[i].item<double>();
    weight.view({-1})[i].fill_(saved + h);
    double up = exec.forward(x).pow(2).sum().item<double>();
    weight.view({-1})[i].fill_(saved - h);
    double down = exec.forward(x).pow(2).sum().item<double>();
    weight.view({-1})[i].fill_(saved);
    double numeric = (up - down) / (2 * h);
    EXPECT_NEAR(grad.view({-1})[i].item<double>(), numeric, 1e-5 * std::max(1.0, std::abs(numeric)))
        << "weight element " << i;
  }
}

TEST(Executor, HookCapturesIntermediateTensors) {
  ir::Graph g = tiny_net();
  at::Tensor x = at::randn({3, 2, 5, 5}, at::kDouble);
  exec::Executor exec(g);
  int conv_out = g.nodes[0].outputs[0];
  at::Tensor captured;
  exec.set_hook({conv_out}, [&](int v, const at::Tensor& t) {
    EXPECT_EQ(v, conv_out);
    captured = t.clone();
  });
  exec.forward(x);
  at::Tensor expected = at::conv2d(x, g.initializer(g.value_id("w")), {}, 1, 1);
  ASSERT_TRUE(captured.defined());
  EXPECT_TRUE(at::allclose(captured, expected));
}

TEST(Executor, BatchDimensionIsFree) {
  ir::Graph g = tiny_net();
  exec::Executor exec(g);
  at::Tensor x = at::randn({5, 2, 5, 5}, at::kDouble);
  at::Tensor all = exec.forward(x);
  at::Tensor one = exec.forward(x.slice(0, 2, 3));
  EXPECT_TRUE(at::allclose(all.slice(0, 2, 3), one));
}

}  // namespace
}  // namespace mpq
