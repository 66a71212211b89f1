// mpq::FakeQuantize under autograd (reconstruction): the fused training pass gives ATen's
// learnable fake quantizer's outputs and gradients (straight-through for x, LSQ for the scale)
// in NCHW and channels-last, and QDrop keeps each element in float with the asked probability,
// a fresh mask on every call that the backward pass reproduces.
#include <ATen/ATen.h>

#include <cmath>

#include "mpq/exec/executor.h"
#include "test_util.h"

namespace mpq::exec {
namespace {

struct Quantizer {
  ir::Graph graph;
  int scale = -1;
};

// x -> FakeQuantize(scale 0.05, zero point 3, [0, 15]) with a learnable scale; `clip`: a
// Clip(-0.1, 0.5) in front, as a node or folded into the quantizer's attributes.
enum class Clip { kNone, kNode, kFolded };

Quantizer quantizer(double drop, Clip clip = Clip::kNone) {
  test::GraphBuilder b({-1, 8, 12, 12});
  Quantizer q;
  q.scale = b.constant("scale", at::full({1}, 0.05f));
  int zero = b.constant("zero", at::full({1}, 3, at::kInt));
  std::map<std::string, ir::AttrValue> attrs{{"qmin", int64_t{0}}, {"qmax", int64_t{15}}};
  if (drop > 0) attrs["drop"] = drop;
  int x = b.g.inputs[0];
  if (clip == Clip::kNode)
    x = b.op("Clip", {x, b.constant("lo", at::scalar_tensor(-0.1f)),
                      b.constant("hi", at::scalar_tensor(0.5f))});
  if (clip == Clip::kFolded) {
    attrs["clip_min"] = -0.1;
    attrs["clip_max"] = 0.5;
  }
  q.graph = b.finish(b.op("mpq::FakeQuantize", {x, q.scale, zero}, attrs, "fq"));
  q.graph.initializer(q.scale).requires_grad_(true);
  return q;
}

struct Grads {
  at::Tensor y, dx, dscale;
};

Grads run(Quantizer& q, const at::Tensor& x_in, const at::Tensor& g, bool channels_last) {
  ExecOptions eo;
  eo.channels_last = channels_last;
  Executor e(q.graph, eo);
  at::Tensor x = x_in.clone().requires_grad_(true);
  at::Tensor& scale = q.graph.initializer(q.scale);
  scale.mutable_grad() = at::Tensor();
  at::Tensor y = e.forward(x);
  (y * g).sum().backward();
  return {y.detach(), x.grad().clone(), scale.grad().clone()};
}

// Inputs that straddle the grid's ends, so every branch of the gradient is taken.
at::Tensor inputs() {
  at::manual_seed(3);
  return at::randn({16, 8, 12, 12}) * 0.4f + 0.2f;
}

TEST(TrainFakeQuantize, MatchesAtenLearnableFakeQuantizeInBothLayouts) {
  at::Tensor x = inputs(), g = at::randn(x.sizes());
  at::Tensor xr = x.clone().requires_grad_(true);
  at::Tensor sr = at::full({1}, 0.05f).requires_grad_(true);
  double factor = 1.0 / std::sqrt(static_cast<double>(x.numel()) * 15.0);
  at::Tensor yr =
      at::_fake_quantize_learnable_per_tensor_affine(xr, sr, at::full({1}, 3.0f), 0, 15, factor);
  (yr * g).sum().backward();
  for (bool cl : {false, true}) {
    Quantizer q = quantizer(0);
    Grads r = run(q, x, g, cl);
    EXPECT_TRUE(at::allclose(r.y, yr.detach(), 0, 1e-6)) << "channels_last " << cl;
    EXPECT_TRUE(at::equal(r.dx, xr.grad())) << "channels_last " << cl;
    EXPECT_NEAR(r.dscale.item<double>(), sr.grad().item<double>(),
                1e-4 * std::abs(sr.grad().item<double>()))
        << "channels_last " << cl;
  }
}

TEST(TrainFakeQuantize, QdropKeepsElementsInFloatWithTheAskedProbability) {
  at::Tensor x = inputs(), g = at::randn(x.sizes());
  Quantizer q = quantizer(0.3);
  at::manual_seed(0);
  Grads a = run(q, x, g, true);
  Grads b = run(q, x, g, true);
  at::Tensor kept_a = a.y.eq(x), kept_b = b.y.eq(x);
  // Quantized values equal the input only by chance (a grid point): drop about 30 %.
  double fraction = kept_a.to(at::kDouble).mean().item<double>();
  EXPECT_NEAR(fraction, 0.3, 0.01);
  EXPECT_FALSE(at::equal(kept_a, kept_b)) << "every call draws a new mask";
  // Dropped elements pass the gradient through and add nothing to the scale's gradient.
  EXPECT_TRUE(at::equal(a.dx.masked_select(kept_a), g.masked_select(kept_a)));
  at::Tensor xr = x.clone().requires_grad_(true);
  at::Tensor sr = at::full({1}, 0.05f).requires_grad_(true);
  double factor = 1.0 / std::sqrt(static_cast<double>(x.numel()) * 15.0);
  at::Tensor yr =
      at::_fake_quantize_learnable_per_tensor_affine(xr, sr, at::full({1}, 3.0f), 0, 15, factor);
  (yr * g * kept_a.logical_not()).sum().backward();
  EXPECT_NEAR(a.dscale.item<double>(), sr.grad().item<double>(),
              1e-4 * std::abs(sr.grad().item<double>()));
  // The same seed, the same masks.
  at::manual_seed(0);
  Grads again = run(q, x, g, true);
  EXPECT_TRUE(at::equal(again.y, a.y));
}

// The reconstruction folds a ReLU/Clip into the quantizer that reads it: the same outputs and
// gradients as the two nodes, with and without QDrop.
TEST(TrainFakeQuantize, AFoldedClipEqualsTheClipNode) {
  at::Tensor x = inputs() * 2, g = at::randn(x.sizes());
  for (double drop : {0.0, 0.4}) {
    Quantizer node = quantizer(drop, Clip::kNode), folded = quantizer(drop, Clip::kFolded);
    at::manual_seed(7);
    Grads a = run(node, x, g, true);
    at::manual_seed(7);
    Grads b = run(folded, x, g, true);
    EXPECT_TRUE(at::allclose(a.y, b.y, 0, 1e-6)) << "drop " << drop;
    EXPECT_TRUE(at::equal(a.dx, b.dx)) << "drop " << drop;
    EXPECT_NEAR(a.dscale.item<double>(), b.dscale.item<double>(),
                1e-5 * std::abs(a.dscale.item<double>()))
        << "drop " << drop;
    // Inference applies the clip too.
    at::NoGradGuard no_grad;
    EXPECT_TRUE(
        at::allclose(Executor(node.graph).forward(x), Executor(folded.graph).forward(x), 0, 1e-6));
  }
}

}  // namespace
}  // namespace mpq::exec
