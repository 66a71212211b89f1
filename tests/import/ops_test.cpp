// Each op through the whole path: Graph -> ONNX bytes -> importer -> executor, against values
// computed by hand or by a direct ATen call.
#include "mpq/exec/executor.h"
#include "mpq/export/onnx_writer.h"
#include "mpq/import/onnx_importer.h"
#include "test_util.h"

namespace mpq {
namespace {

using Ints = std::vector<int64_t>;

at::Tensor run_via_onnx(ir::Graph g, const at::Tensor& x) {
  const std::string bytes = export_::to_onnx_bytes(g);
  // MPQ_DUMP_ONNX=DIR keeps every graph these tests build: seeds for tests/fuzz's importer.
  if (const char* dir = std::getenv("MPQ_DUMP_ONNX")) {
    static int count = 0;
    std::ofstream(fmt::format("{}/op_{:02d}.onnx", dir, count++), std::ios::binary) << bytes;
  }
  ir::Graph imported = import::parse_onnx(bytes, "test.onnx", ".");
  return exec::Executor(imported).forward(x);
}

at::Tensor single(const std::string& op, const at::Tensor& x, std::vector<at::Tensor> consts = {},
                  std::map<std::string, ir::AttrValue> attrs = {}) {
  test::GraphBuilder b(x.sizes().vec());
  b.g.values[b.g.inputs[0]].shape[0] = -1;
  if (op == "HardSwish") b.g.opset = 14;  // HardSwish exists from opset 14
  std::vector<int> ins{b.g.inputs[0]};
  for (size_t i = 0; i < consts.size(); ++i)
    ins.push_back(consts[i].defined() ? b.constant("c" + std::to_string(i), consts[i]) : -1);
  return run_via_onnx(b.finish(b.op(op, ins, attrs)), x);
}

TEST(Ops, ConvWithAsymmetricSamePadding) {
  at::Tensor x = at::randn({1, 2, 7, 7}), w = at::randn({3, 2, 3, 3});
  at::Tensor y = single("Conv", x, {w},
                        {{"kernel_shape", Ints{3, 3}},
                         {"strides", Ints{2, 2}},
                         {"auto_pad", std::string("SAME_UPPER")}});
  // SAME_UPPER, stride 2 on 7: total pad 2 -> 1 before, 1 after; out 4x4.
  at::Tensor expected = at::conv2d(x, w, {}, 2, 1);
  EXPECT_TRUE(at::allclose(y, expected, 1e-5, 1e-5));
  at::Tensor y2 =
      single("Conv", at::randn({1, 2, 8, 8}), {w},
             {{"kernel_shape", Ints{3, 3}}, {"strides", Ints{2, 2}}, {"pads", Ints{0, 0, 1, 1}}});
  EXPECT_EQ(y2.sizes(), (Ints{1, 3, 4, 4}));
}

TEST(Ops, SliceWithNegativeStepReverses) {
  at::Tensor x = at::arange(6, at::kFloat).reshape({1, 6});
  at::Tensor y = single("Slice", x,
                        {at::tensor({-1}, at::kLong), at::tensor({INT64_MIN}, at::kLong),
                         at::tensor({1}, at::kLong), at::tensor({-2}, at::kLong)});
  EXPECT_TRUE(at::equal(y, at::tensor({5.f, 3.f, 1.f}).reshape({1, 3})));
  at::Tensor z = single("Slice", x,
                        {at::tensor({1}, at::kLong), at::tensor({100}, at::kLong),
                         at::tensor({1}, at::kLong), at::tensor({2}, at::kLong)});
  EXPECT_TRUE(at::equal(z, at::tensor({1.f, 3.f, 5.f}).reshape({1, 3})));
}

TEST(Ops, PadConstantWithPadsAsInput) {
  at::Tensor x = at::ones({1, 1, 2, 2});
  at::Tensor y =
      single("Pad", x, {at::tensor({0, 0, 1, 0, 0, 0, 0, 2}, at::kLong), at::scalar_tensor(7.f)});
  EXPECT_EQ(y.sizes(), (Ints{1, 1, 3, 4}));
  EXPECT_EQ(y[0][0][0][0].item<float>(), 7.f);
  EXPECT_EQ(y[0][0][1][1].item<float>(), 1.f);
  EXPECT_EQ(y[0][0][1][3].item<float>(), 7.f);
}

// Under autograd the gradient of a Pad is the inner slice of the output's gradient, in the
// gradient's layout (channels-last stays channels-last for the convolution before it).
TEST(Ops, PadBackwardIsTheInnerSliceInTheGradientsLayout) {
  test::GraphBuilder b({-1, 3, 5, 6});
  ir::Graph g = b.finish(b.op(
      "Pad", {b.g.inputs[0], b.constant("p", at::tensor({0, 0, 1, 0, 0, 0, 2, 1}, at::kLong))}));
  exec::Executor e(g);  // channels-last images
  at::Tensor x =
      at::randn({2, 3, 5, 6}).contiguous(at::MemoryFormat::ChannelsLast).requires_grad_(true);
  at::Tensor y = e.forward(x);
  EXPECT_EQ(y.sizes(), (Ints{2, 3, 8, 7}));
  at::Tensor dy = at::randn(y.sizes()).contiguous(at::MemoryFormat::ChannelsLast);
  y.backward(dy);
  EXPECT_TRUE(at::equal(x.grad(), dy.slice(2, 1, 6).slice(3, 0, 6)));
  EXPECT_TRUE(x.grad().is_contiguous(at::MemoryFormat::ChannelsLast));
  at::Tensor xr = x.detach().clone().requires_grad_(true);
  at::constant_pad_nd(xr, {0, 1, 1, 2}).backward(dy);
  EXPECT_TRUE(at::equal(x.grad(), xr.grad()));
}

TEST(Ops, ReshapeCopiesZeroAndInfersMinusOne) {
  at::Tensor x = at::randn({2, 3, 4});
  at::Tensor y = single("Reshape", x, {at::tensor({0, -1}, at::kLong)});
  EXPECT_EQ(y.sizes(), (Ints{2, 12}));
}

TEST(Ops, GemmTransposesAndScales) {
  at::Tensor a = at::randn({3, 4}), b = at::randn({3, 5}), c = at::randn({5});
  at::Tensor y = single("Gemm", a, {b, c}, {{"transA", int64_t{1}}, {"alpha", 2.0}, {"beta", 0.5}});
  EXPECT_TRUE(at::allclose(y, 2 * at::mm(a.t(), b) + 0.5 * c, 1e-5, 1e-5));
}

TEST(Ops, ClipBoundsAsInputsOrOmitted) {
  at::Tensor x = at::linspace(-10, 10, 21).reshape({1, 21});
  at::Tensor relu6 = single("Clip", x, {at::scalar_tensor(0.f), at::scalar_tensor(6.f)});
  EXPECT_TRUE(at::equal(relu6, x.clamp(0, 6)));
  at::Tensor upper_only = single("Clip", x, {at::Tensor(), at::scalar_tensor(2.f)});
  EXPECT_TRUE(at::equal(upper_only, x.clamp_max(2)));
}

TEST(Ops, GatherScalarIndexDropsTheAxis) {
  at::Tensor x = at::arange(12, at::kFloat).reshape({3, 4});
  at::Tensor y = single("Gather", x, {at::scalar_tensor(-1, at::kLong)}, {{"axis", int64_t{1}}});
  EXPECT_TRUE(at::equal(y, at::tensor({3.f, 7.f, 11.f})));
  at::Tensor z = single("Gather", x, {at::tensor({2, 0}, at::kLong)}, {{"axis", int64_t{0}}});
  EXPECT_TRUE(at::equal(z, at::stack({x[2], x[0]})));
}

TEST(Ops, PoolsWithCeilModeAndPadding) {
  at::Tensor x = at::randn({1, 2, 5, 5});
  at::Tensor mp =
      single("MaxPool", x, {},
             {{"kernel_shape", Ints{2, 2}}, {"strides", Ints{2, 2}}, {"ceil_mode", int64_t{1}}});
  EXPECT_TRUE(at::equal(mp, at::max_pool2d(x, {2, 2}, {2, 2}, 0, 1, true)));
  at::Tensor ap =
      single("AveragePool", x, {}, {{"kernel_shape", Ints{3, 3}}, {"pads", Ints{1, 1, 1, 1}}});
  EXPECT_TRUE(at::allclose(ap, at::avg_pool2d(x, {3, 3}, {1, 1}, {1, 1}, false, false)));
}

TEST(Ops, ActivationsMatchTheirDefinitions) {
  at::Tensor x = at::linspace(-5, 5, 41).reshape({1, 41});
  EXPECT_TRUE(at::allclose(single("HardSigmoid", x), (x * 0.2 + 0.5).clamp(0, 1)));
  EXPECT_TRUE(at::allclose(single("HardSwish", x), x * (x / 6 + 0.5).clamp(0, 1), 1e-6, 1e-6));
  EXPECT_TRUE(at::allclose(single("Sigmoid", x), 1 / (1 + at::exp(-x))));
  at::Tensor sm = single("Softmax", x);
  EXPECT_NEAR(sm.sum().item<float>(), 1.0f, 1e-5);
}

TEST(Ops, SqueezeUnsqueezeTransposeFlattenReduceMean) {
  at::Tensor x = at::randn({2, 3, 4});
  EXPECT_EQ(single("Unsqueeze", x, {at::tensor({1, -1}, at::kLong)}).sizes(),
            (Ints{2, 1, 3, 4, 1}));
  EXPECT_EQ(single("Squeeze", at::randn({2, 1, 3, 1}), {at::tensor({-1}, at::kLong)}).sizes(),
            (Ints{2, 1, 3}));
  EXPECT_TRUE(
      at::equal(single("Transpose", x, {}, {{"perm", Ints{2, 0, 1}}}), x.permute({2, 0, 1})));
  EXPECT_EQ(single("Flatten", x, {}, {{"axis", int64_t{2}}}).sizes(), (Ints{6, 4}));
  EXPECT_TRUE(
      at::allclose(single("ReduceMean", x, {}, {{"axes", Ints{1, 2}}, {"keepdims", int64_t{0}}}),
                   x.mean({1, 2})));
}

TEST(Ops, IntegerDivTruncates) {
  at::Tensor x = at::tensor({7, -7}, at::kLong).reshape({1, 2});
  at::Tensor y = single("Div", x, {at::tensor({2}, at::kLong)});
  EXPECT_TRUE(at::equal(y, at::tensor({3, -3}, at::kLong).reshape({1, 2})));
}

TEST(Ops, EveryIssueOpIsRegistered) {
  for (const char* op : {"Conv",
                         "BatchNormalization",
                         "Relu",
                         "Clip",
                         "Add",
                         "Sub",
                         "Mul",
                         "Div",
                         "MaxPool",
                         "AveragePool",
                         "GlobalAveragePool",
                         "ReduceMean",
                         "Flatten",
                         "Reshape",
                         "Gemm",
                         "MatMul",
                         "Concat",
                         "Identity",
                         "Constant",
                         "ConstantOfShape",
                         "Slice",
                         "Pad",
                         "Transpose",
                         "Cast",
                         "Shape",
                         "Gather",
                         "Unsqueeze",
                         "Squeeze",
                         "Softmax",
                         "Sigmoid",
                         "HardSigmoid",
                         "HardSwish",
                         "Dropout"})
    EXPECT_TRUE(Registry<exec::OpDef>::contains(op)) << op;
}

}  // namespace
}  // namespace mpq
