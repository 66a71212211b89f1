// QuantSim on tiny CNNs built in code: quantizer placement per plan, calibration, rounding onto
// the grid, agreement with a hand-written fake-quant computation, straight-through gradients.
#include "mpq/quant/quant_sim.h"

#include <c10/core/InferenceMode.h>

#include "mpq/exec/executor.h"
#include "mpq/ptq/rounding.h"
#include "test_util.h"

namespace mpq::quant {
namespace {

using Ints = std::vector<int64_t>;

ir::Graph tiny_cnn(uint64_t seed = 1) {
  at::manual_seed(seed);
  test::GraphBuilder b({-1, 3, 8, 8});
  int x = b.g.inputs[0];
  int w1 = b.constant("w1", at::randn({8, 3, 3, 3}) * 0.3);
  int b1 = b.constant("b1", at::randn({8}) * 0.1);
  int c1 = b.op("Conv", {x, w1, b1}, {{"pads", Ints{1, 1, 1, 1}}}, "conv1");
  int r1 = b.op("Relu", {c1}, {}, "relu1");
  int w2 = b.constant("w2", at::randn({8, 8, 3, 3}) * 0.2);
  int c2 = b.op("Conv", {r1, w2}, {{"pads", Ints{1, 1, 1, 1}}}, "conv2");
  int r2 = b.op("Relu", {c2}, {}, "relu2");
  int gp = b.op("GlobalAveragePool", {r2}, {}, "gap");
  int fl = b.op("Flatten", {gp}, {{"axis", int64_t{1}}}, "flatten");
  int w3 = b.constant("w3", at::randn({4, 8}) * 0.5);
  int b3 = b.constant("b3", at::randn({4}) * 0.1);
  int fc = b.op("Gemm", {fl, w3, b3}, {{"transB", int64_t{1}}}, "fc");
  return b.finish(fc);
}

allocation::BitPlan plan_for(const ir::Graph& g, int w, int a, int pin = 8) {
  return allocation::uniform_plan(exec::quantizable_layers(g), w, a, pin);
}

const ir::Node* node_named(const ir::Graph& g, const std::string& name) {
  for (const ir::Node& n : g.nodes)
    if (n.name == name) return &n;
  return nullptr;
}

TEST(QuantSim, InsertsQuantizersPerPlan) {
  ir::Graph g = tiny_cnn();
  QuantSim sim(g, plan_for(g, 4, 4), "plan", WeightGrid::kRestricted);
  int fq = 0;
  for (const ir::Node& n : sim.graph().nodes) fq += n.op == "mpq::FakeQuantize";
  EXPECT_EQ(fq, 6);
  const ir::Node* w2 = node_named(sim.graph(), "conv2.weight_quant");
  ASSERT_NE(w2, nullptr);
  EXPECT_EQ(w2->attr_int("qmin", 0), -7);
  EXPECT_EQ(w2->attr_int("qmax", 0), 7);
  EXPECT_EQ(w2->attr_int("axis", -1), 0);
  const ir::Node* a2 = node_named(sim.graph(), "conv2.input_quant");
  EXPECT_EQ(a2->attr_int("qmin", -1), 0);
  EXPECT_EQ(a2->attr_int("qmax", 0), 15);
  // First and last layers pinned at 8 bits.
  EXPECT_EQ(node_named(sim.graph(), "conv1.weight_quant")->attr_int("qmax", 0), 127);
  // The full grid adds the one negative level.
  QuantSim full(g, plan_for(g, 4, 4), "plan", WeightGrid::kFull);
  EXPECT_EQ(node_named(full.graph(), "conv2.weight_quant")->attr_int("qmin", 0), -8);
  EXPECT_EQ(node_named(full.graph(), "conv2.weight_quant")->attr_int("qmax", 0), 7);
  EXPECT_EQ(node_named(sim.graph(), "fc.input_quant")->attr_int("qmax", 0), 255);

  // 32/16 bits: that side stays float.
  allocation::BitPlan p = plan_for(g, 4, 4);
  p.layers[1].w_bits = 32;
  p.layers[1].a_bits = 16;
  QuantSim partial(g, p);
  EXPECT_EQ(node_named(partial.graph(), "conv2.weight_quant"), nullptr);
  EXPECT_EQ(node_named(partial.graph(), "conv2.input_quant"), nullptr);
  EXPECT_NE(node_named(partial.graph(), "conv1.weight_quant"), nullptr);
}

TEST(QuantSim, CalibratesUnsignedAfterReluAsymmetricOtherwise) {
  ir::Graph g = tiny_cnn();
  auto ds = test::TensorDataset::random(64, 3, 8, 8, 4);
  data::Loader loader = test::loader_for(ds);
  QuantSim sim(g, plan_for(g, 4, 4, 0));
  CalibrationOptions options;
  options.observer = "minmax";
  options.progress = false;
  CalibrationStats stats = sim.collect(loader, false);
  sim.calibrate(stats, options);
  const Encoding& in = sim.layers()[0].encoding;  // normalised image: signed
  EXPECT_FALSE(in.is_unsigned);
  EXPECT_GT(in.zero_point, 0);
  EXPECT_LT(in.zero_point, 15);
  const ActivationStats& s0 = stats.at(sim.layers()[0].input);
  EXPECT_NEAR(in.min, s0.min, in.scale);
  EXPECT_NEAR(in.max, s0.max, in.scale);
  const Encoding& relu = sim.layers()[1].encoding;  // after ReLU: unsigned
  EXPECT_TRUE(relu.is_unsigned);
  EXPECT_EQ(relu.zero_point, 0);
  EXPECT_NEAR(relu.max, stats.at(sim.layers()[1].input).max, 1e-5);
}

TEST(QuantSim, NearestRoundingPutsWeightsOnTheGrid) {
  ir::Graph g = tiny_cnn();
  auto ds = test::TensorDataset::random(32, 3, 8, 8, 4);
  data::Loader loader = test::loader_for(ds);
  for (WeightGrid grid : {WeightGrid::kRestricted, WeightGrid::kFull})
    for (int bits : {2, 3, 5, 8}) {
      SCOPED_TRACE(std::string(name(grid)) + " grid, " + std::to_string(bits) + " bits");
      QuantSim sim(g, plan_for(g, bits, 8, 0), "plan", grid);
      sim.calibrate(loader, CalibrationOptions{"mse", {}, true, false});
      ptq::make_rounding("nearest")->apply(sim, loader, {});
      for (size_t i = 0; i < sim.layers().size(); ++i) {
        const QuantLayer& l = sim.layers()[i];
        at::Tensor q = sim.weight_integers(i);
        IntRange r = weight_range(bits, grid);
        EXPECT_EQ(r.qmax, (1 << (bits - 1)) - 1);
        EXPECT_EQ(r.qmin, grid == WeightGrid::kFull ? -(1 << (bits - 1)) : -r.qmax);
        EXPECT_GE(q.min().item<int64_t>(), r.qmin);
        EXPECT_LE(q.max().item<int64_t>(), r.qmax);
        at::Tensor w = sim.graph().initializer(l.weight);
        EXPECT_TRUE(at::equal(w, dequantize_weight(q, sim.weight_scale(i), l.axis)));
        // Each output channel takes at most as many distinct values as the grid has levels.
        at::Tensor per_channel = w.transpose(0, l.axis).reshape({w.size(l.axis), -1});
        for (int64_t c = 0; c < per_channel.size(0); ++c)
          EXPECT_LE(std::get<0>(at::_unique(per_channel[c])).numel(), r.qmax - r.qmin + 1);
        EXPECT_GT(l.weight_mse, 0);
      }
    }
}

// The full grid's extra level: a channel whose negative end is the longer one is scaled so that
// end lands on -2^(b-1), and its error is never larger than on the restricted grid.
TEST(WeightScales, FullGridUsesTheExtraNegativeLevel) {
  at::manual_seed(3);
  at::Tensor w = at::randn({8, 4, 3, 3});
  w.select(0, 0).view(-1)[0] = -4.0;  // channel 0: the negative end is the longer one
  w.select(0, 0).view(-1)[1] = 1.0;
  for (int bits : {2, 3, 4, 8}) {
    SCOPED_TRACE(bits);
    IntRange full = weight_range(bits, WeightGrid::kFull);
    at::Tensor s = weight_scales(w, 0, bits, WeightGrid::kFull, /*mse=*/false);
    at::Tensor q = quantize_weight(w, s, 0, full);
    EXPECT_EQ(q[0].min().item<int64_t>(), full.qmin);  // -4 lands on the extra level
    auto err = [&](WeightGrid grid, bool mse) {
      at::Tensor sc = weight_scales(w, 0, bits, grid, mse);
      at::Tensor d = dequantize_weight(quantize_weight(w, sc, 0, weight_range(bits, grid)), sc, 0);
      return (d - w).abs().pow(2.4).sum({1, 2, 3});
    };
    // Max scaling: the negative-tailed channel gets a finer step on the full grid.
    EXPECT_LT(err(WeightGrid::kFull, false)[0].item<double>(),
              err(WeightGrid::kRestricted, false)[0].item<double>());
    // MSE clipping over the same scales: the full grid is never worse in any channel (it holds
    // every restricted grid point at each scale).
    EXPECT_TRUE((err(WeightGrid::kFull, true) <= err(WeightGrid::kRestricted, true) * 1.0001)
                    .all()
                    .item<bool>());
  }
}

TEST(QuantSim, MatchesAHandWrittenFakeQuantConv) {
  at::manual_seed(3);
  test::GraphBuilder b({-1, 2, 5, 5});
  int w = b.constant("w", at::randn({3, 2, 3, 3}));
  int c = b.op("Conv", {b.g.inputs[0], w}, {}, "conv");
  ir::Graph g = b.finish(c);
  auto ds = test::TensorDataset::random(16, 2, 5, 5, 3);
  data::Loader loader = test::loader_for(ds);
  QuantSim sim(g, plan_for(g, 3, 4, 0), "plan", WeightGrid::kRestricted);
  sim.calibrate(loader, CalibrationOptions{"minmax", {}, false, false});
  ptq::make_rounding("nearest")->apply(sim, loader, {});

  at::Tensor x = loader.batch(0).images;
  const Encoding& e = sim.layers()[0].encoding;
  at::Tensor xq = ((x / e.scale).round() + e.zero_point).clamp(0, 15).sub(e.zero_point) * e.scale;
  at::Tensor weight = g.initializer(w);
  at::Tensor s = weight.abs().amax({1, 2, 3}) / 3;  // max |w| per channel over qmax = 3
  at::Tensor wq = (weight / s.view({3, 1, 1, 1})).round().clamp(-3, 3) * s.view({3, 1, 1, 1});
  at::Tensor expected = at::conv2d(xq, wq);
  at::Tensor got = exec::Executor(sim.graph()).forward(x);
  EXPECT_LT((got - expected).abs().max().item<double>(), 1e-4);
  // The frozen copy (weight quantizers evaluated once) computes the same.
  ir::Graph frozen = sim.frozen();
  EXPECT_TRUE(at::allclose(exec::Executor(frozen).forward(x), got, 1e-6, 1e-6));
}

TEST(QuantSim, GradientsFlowStraightThrough) {
  ir::Graph g = tiny_cnn();
  auto ds = test::TensorDataset::random(16, 3, 8, 8, 4);
  data::Loader loader = test::loader_for(ds);
  QuantSim sim(g, plan_for(g, 4, 4, 0));
  sim.calibrate(loader, CalibrationOptions{"mse", {}, true, false});
  at::Tensor& w = sim.graph().initializer(sim.layers()[1].weight);
  w = w.detach().clone().requires_grad_(true);
  at::Tensor y = exec::Executor(sim.graph()).forward(loader.batch(0).images);
  y.square().sum().backward();
  ASSERT_TRUE(w.grad().defined());
  EXPECT_GT(w.grad().abs().sum().item<double>(), 0);
  EXPECT_TRUE(at::isfinite(w.grad()).all().item<bool>());
}

TEST(Observers, ClipOutliersAndMseBeatsMinMax) {
  at::manual_seed(0);
  at::Tensor x = at::randn({200000}).relu();
  x.slice(0, 0, 20).fill_(40.0);  // a few outliers
  ActivationStats stats;
  for (int b = 0; b < 8; ++b) stats.observe(x.slice(0, b * 25000, (b + 1) * 25000), b);
  EXPECT_EQ(stats.max, 40.0);
  EXPECT_EQ(stats.min, 0.0);
  ObserverOptions options;
  auto minmax = make_observer("minmax")->range(stats, 4, options);
  auto pct = make_observer("percentile")->range(stats, 4, options);
  auto mse = make_observer("mse")->range(stats, 4, options);
  EXPECT_EQ(minmax.second, 40.0);
  EXPECT_LT(pct.second, 10.0);
  EXPECT_LT(mse.second, 40.0);
  EXPECT_LT(quantization_error(x, mse.first, mse.second, 4),
            quantization_error(x, minmax.first, minmax.second, 4));
  EXPECT_THROW(make_observer("nope"), Error);
}

TEST(WeightScales, OptimalClippingNeverWorseThanMax) {
  at::manual_seed(1);
  at::Tensor w = at::randn({6, 4, 3, 3});
  w[0][0][0][0] = 8.0;  // an outlier channel
  for (int bits = 2; bits <= 8; ++bits) {
    auto err = [&](const at::Tensor& s) {
      at::Tensor q = quantize_weight(w, s, 0, weight_range(bits, WeightGrid::kRestricted));
      return (dequantize_weight(q, s, 0) - w).abs().pow(2.4).sum({1, 2, 3});  // the criterion
    };
    at::Tensor e_mse = err(weight_scales(w, 0, bits, WeightGrid::kRestricted, true));
    at::Tensor e_max = err(weight_scales(w, 0, bits, WeightGrid::kRestricted, false));
    EXPECT_TRUE((e_mse <= e_max + 1e-6).all().item<bool>()) << bits;
    if (bits == 2) EXPECT_LT(e_mse.sum().item<double>(), e_max.sum().item<double>());
  }
  // Gemm with transB = 0 quantizes along axis 1.
  at::Tensor fc = at::randn({8, 5});
  EXPECT_EQ(weight_scales(fc, 1, 4, WeightGrid::kFull, true).numel(), 5);
}

}  // namespace
}  // namespace mpq::quant
