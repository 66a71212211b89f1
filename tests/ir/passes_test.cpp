#include "mpq/ir/passes.h"

#include "mpq/exec/executor.h"
#include "test_util.h"

namespace mpq {
namespace {

ir::Graph conv_bn_relu(bool with_bias) {
  test::GraphBuilder b({-1, 3, 6, 6});
  std::vector<int> ins{b.g.inputs[0], b.constant("w", at::randn({4, 3, 3, 3}))};
  if (with_bias) ins.push_back(b.constant("b", at::randn({4})));
  int conv = b.op("Conv", ins, {{"kernel_shape", std::vector<int64_t>{3, 3}}}, "conv");
  int bn = b.op("BatchNormalization",
                {conv, b.constant("g", at::rand({4}) + 0.5), b.constant("beta", at::randn({4})),
                 b.constant("mean", at::randn({4})), b.constant("var", at::rand({4}) + 0.1)},
                {{"epsilon", 1e-5}}, "bn");
  return b.finish(b.op("Relu", {bn}));
}

TEST(FoldBatchNorm, FoldedGraphComputesTheSameOutput) {
  for (bool bias : {false, true}) {
    ir::Graph g = conv_bn_relu(bias);
    at::Tensor x = at::randn({2, 3, 6, 6});
    at::Tensor before = exec::Executor(g).forward(x);
    auto layers = exec::quantizable_layers(g);
    EXPECT_TRUE(layers[0].has_bn);
    EXPECT_EQ(ir::fold_batch_norm(g), 1);
    for (const auto& n : g.nodes) EXPECT_NE(n.op, "BatchNormalization");
    EXPECT_FALSE(exec::quantizable_layers(g)[0].has_bn);
    at::Tensor after = exec::Executor(g).forward(x);
    EXPECT_TRUE(at::allclose(before, after, 1e-4, 1e-5)) << (before - after).abs().max();
  }
}

TEST(FoldConstants, ShapeSubgraphOnConstantsBecomesAnInitializer) {
  // pads = Concat(Cast(Shape(const)), ConstantOfShape([2])) -> Pad(x, pads): as PyTorch exports.
  test::GraphBuilder b({-1, 2, 3});
  int c = b.constant("c", at::zeros({1, 1}));
  int shape = b.op("Shape", {c});  // [1, 1]
  int zeros = b.op("ConstantOfShape", {b.constant("n", at::tensor({4}, at::kLong))},
                   {{"value", at::zeros({1}, at::kLong)}});           // [0, 0, 0, 0]
  int pads = b.op("Concat", {shape, zeros}, {{"axis", int64_t{0}}});  // [1,1,0,0,0,0]
  int out = b.op("Pad", {b.g.inputs[0], pads}, {{"mode", std::string("constant")}});
  ir::Graph g = b.finish(out);
  EXPECT_EQ(ir::fold_constants(g), 3);
  ASSERT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(g.nodes[0].op, "Pad");
  at::Tensor y = exec::Executor(g).forward(at::ones({1, 2, 3}));
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{2, 3, 3}));  // batch padded 1 before, dim1 1 before
}

}  // namespace
}  // namespace mpq
