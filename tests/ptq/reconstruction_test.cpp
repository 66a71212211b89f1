// Block-wise reconstruction on a tiny residual net: the blocks found, and attention / adaround
// with learned activation steps and QDrop beating nearest on held-out inputs, on the grid.
#include <c10/core/InferenceMode.h>

#include "mpq/exec/executor.h"
#include "mpq/ptq/blocks.h"
#include "mpq/ptq/quantize.h"
#include "mpq/ptq/rounding.h"
#include "test_util.h"

namespace mpq::ptq {
namespace {

using Ints = std::vector<int64_t>;

// stem conv-relu, a basic residual block, a linear 1x1 projection, pooling and a classifier.
ir::Graph tiny_resnet() {
  at::manual_seed(5);
  test::GraphBuilder b({-1, 3, 8, 8});
  Ints pad{1, 1, 1, 1};
  auto conv = [&](int x, int64_t out, int64_t in, int64_t k, const std::string& name) {
    int w = b.constant(name + ".w", at::randn({out, in, k, k}) * (1.2 / std::sqrt(in * k * k)));
    int bias = b.constant(name + ".b", at::randn({out}) * 0.1);
    return b.op("Conv", {x, w, bias}, {{"pads", k == 3 ? pad : Ints{0, 0, 0, 0}}}, name);
  };
  int stem = b.op("Relu", {conv(b.g.inputs[0], 8, 3, 3, "stem")}, {}, "stem.relu");
  int c1 = b.op("Relu", {conv(stem, 8, 8, 3, "block.conv1")}, {}, "block.relu1");
  int c2 = conv(c1, 8, 8, 3, "block.conv2");
  int sum = b.op("Relu", {b.op("Add", {c2, stem}, {}, "block.add")}, {}, "block.relu2");
  int proj = conv(sum, 12, 8, 1, "proj");
  int pool = b.op("GlobalAveragePool", {proj}, {}, "pool");
  int flat = b.op("Flatten", {pool}, {{"axis", int64_t{1}}}, "flatten");
  int w = b.constant("fc.w", at::randn({5, 12}) * 0.3);
  return b.finish(b.op("Gemm", {flat, w}, {{"transB", int64_t{1}}}, "fc"));
}

std::vector<std::string> names(const quant::QuantSim& sim, const Block& b) {
  std::vector<std::string> n;
  for (size_t l : b.layers) n.push_back(sim.layers()[l].info.name);
  return n;
}

TEST(Blocks, ResidualBlockLinearProjectionAndClassifier) {
  ir::Graph g = tiny_resnet();
  quant::QuantSim sim(g, allocation::uniform_plan(exec::quantizable_layers(g), 4, 4, 0));
  std::vector<Block> blocks = find_blocks(sim);
  ASSERT_EQ(blocks.size(), 3u);
  EXPECT_EQ(names(sim, blocks[0]), (std::vector<std::string>{"stem", "block.conv1", "block.conv2"}));
  EXPECT_EQ(names(sim, blocks[1]), (std::vector<std::string>{"proj"}));
  EXPECT_EQ(names(sim, blocks[2]), (std::vector<std::string>{"fc"}));
  EXPECT_EQ(blocks[0].name, "stem .. block.conv2");
  EXPECT_EQ(blocks[0].input, sim.graph().inputs[0]);
  EXPECT_EQ(blocks[1].input, blocks[0].output);
  EXPECT_EQ(blocks[2].output, sim.graph().outputs[0]);
}

// A plain stack (MobileNetV1-like: no residual, no linear projection) is cut into blocks of
// three layers at activated outputs, not reconstructed as one block.
TEST(Blocks, PlainStacksAreCutIntoBoundedBlocks) {
  at::manual_seed(5);
  test::GraphBuilder b({-1, 3, 8, 8});
  int x = b.g.inputs[0];
  int64_t in = 3;
  for (int k = 0; k < 7; ++k) {
    std::string name = "conv" + std::to_string(k);
    int w = b.constant(name + ".w", at::randn({8, in, 3, 3}) * 0.3);
    x = b.op("Relu", {b.op("Conv", {x, w}, {{"pads", Ints{1, 1, 1, 1}}}, name)}, {},
             name + ".relu");
    in = 8;
  }
  int flat = b.op("Flatten", {b.op("GlobalAveragePool", {x}, {}, "pool")}, {{"axis", int64_t{1}}},
                  "flatten");
  ir::Graph g = b.finish(
      b.op("Gemm", {flat, b.constant("fc.w", at::randn({5, 8}))}, {{"transB", int64_t{1}}}, "fc"));
  quant::QuantSim sim(g, allocation::uniform_plan(exec::quantizable_layers(g), 4, 4, 0));
  std::vector<Block> blocks = find_blocks(sim);
  ASSERT_EQ(blocks.size(), 3u);
  EXPECT_EQ(names(sim, blocks[0]), (std::vector<std::string>{"conv0", "conv1", "conv2"}));
  EXPECT_EQ(names(sim, blocks[1]), (std::vector<std::string>{"conv3", "conv4", "conv5"}));
  EXPECT_EQ(names(sim, blocks[2]), (std::vector<std::string>{"conv6", "fc"}));
  // Each block starts where the previous one ends, after a ReLU.
  EXPECT_EQ(blocks[1].input, blocks[0].output);
  EXPECT_EQ(sim.graph()
                .nodes[static_cast<size_t>(
                    sim.graph().values[static_cast<size_t>(blocks[0].output)].producer)]
                .op,
            "Relu");
}

TEST(BlockReconstruction, BeatsNearestOnHeldOutInputsLearnsStepsAndEndsOnTheGrid) {
  ir::Graph g = tiny_resnet();
  auto calib_ds = test::TensorDataset::random(128, 3, 8, 8, 5, 1);
  auto test_ds = test::TensorDataset::random(64, 3, 8, 8, 5, 2);
  data::Loader calib = test::loader_for(calib_ds, 32), held = test::loader_for(test_ds, 64);
  at::Tensor x = held.batch(0).images;
  auto plan = allocation::uniform_plan(exec::quantizable_layers(g), 3, 4, 0);
  auto run = [&](const std::string& method, double qdrop) {
    quant::QuantSim sim(g, plan);
    sim.calibrate(calib, quant::CalibrationOptions{"mse", {}, true, false});
    std::vector<double> steps;
    for (const auto& l : sim.layers()) steps.push_back(l.encoding.scale);
    RoundingOptions o;
    o.iters = 1000;
    o.progress = false;
    o.granularity = "block";
    o.qdrop = qdrop;
    make_rounding(method)->apply(sim, calib, o);
    bool moved = false;
    for (size_t i = 0; i < sim.layers().size(); ++i) {
      const quant::QuantLayer& l = sim.layers()[i];
      at::Tensor q = sim.weight_integers(i);
      EXPECT_LE(q.abs().max().item<int64_t>(), 3) << method;
      EXPECT_TRUE(at::equal(sim.graph().initializer(l.weight),
                            quant::dequantize_weight(q, sim.weight_scale(i), l.axis)));
      // The learned step is the simulation's and the exported encoding's.
      EXPECT_FLOAT_EQ(sim.graph().initializer(l.input_scale).item<float>(),
                      static_cast<float>(l.encoding.scale));
      moved = moved || l.encoding.scale != steps[i];
    }
    EXPECT_TRUE(moved) << method << ": no activation step was learned";
    return test::held_out_error(sim, x);
  };
  quant::QuantSim nearest_sim(g, plan);
  nearest_sim.calibrate(calib, quant::CalibrationOptions{"mse", {}, true, false});
  double nearest = test::held_out_error(nearest_sim, x);
  for (auto [method, qdrop] : {std::pair{"attention", 0.5}, std::pair{"adaround", 0.5},
                               std::pair{"attention", 0.0}}) {
    double e = run(method, qdrop);
    std::printf("held-out squared error: nearest %.4f, %s block qdrop %.1f %.4f\n", nearest,
                method, qdrop, e);
    EXPECT_LT(e, nearest) << method;
  }
}

// One engine for both granularities: one unit per block or per weight layer, each reported to
// the caller, and none ends worse than nearest rounding on the calibration set (the fallback).
TEST(Reconstruction, ReportsEveryUnitAndNeverEndsWorseThanNearest) {
  ir::Graph g = tiny_resnet();
  auto calib_ds = test::TensorDataset::random(64, 3, 8, 8, 5, 1);
  data::Loader calib = test::loader_for(calib_ds, 32);
  auto plan = allocation::uniform_plan(exec::quantizable_layers(g), 2, 4, 0);
  for (const char* granularity : {"block", "layer"}) {
    quant::QuantSim sim(g, plan);
    sim.calibrate(calib, quant::CalibrationOptions{"mse", {}, true, false});
    RoundingOptions o;
    o.iters = 60;
    o.progress = false;
    o.granularity = granularity;
    RoundingReport r = make_rounding("attention")->apply(sim, calib, o);
    EXPECT_EQ(r.method, "attention");
    EXPECT_EQ(r.granularity, granularity);
    size_t expected =
        std::string(granularity) == "block" ? find_blocks(sim).size() : sim.layers().size();
    ASSERT_EQ(r.units.size(), expected) << granularity;
    size_t layers = 0;
    for (const UnitReport& u : r.units) {
      layers += u.layers.size();
      EXPECT_EQ(u.iters, 60);
      EXPECT_GT(u.nearest_loss, 0) << u.name;
      EXPECT_LE(u.loss, u.nearest_loss) << granularity << " " << u.name;
    }
    EXPECT_EQ(layers, sim.layers().size()) << granularity;
    nlohmann::json j = to_json(r);
    EXPECT_EQ(j["units"].size(), r.units.size());
    EXPECT_EQ(j["units"][0]["layers"][0], sim.layers()[0].info.name);
  }
}

// The library call the CLI, benches and compress use: calibrated, rounded, reported.
TEST(Quantize, CalibratesRoundsAndReportsInOneCall) {
  ir::Graph g = tiny_resnet();
  auto calib_ds = test::TensorDataset::random(64, 3, 8, 8, 5, 1);
  data::Loader calib = test::loader_for(calib_ds, 32);
  auto plan = allocation::uniform_plan(exec::quantizable_layers(g), 3, 4, 0);
  QuantizeOptions o;
  o.calibration.progress = false;
  o.rounding = "attention";
  o.round.iters = 40;
  o.round.granularity = "block";
  o.round.qdrop = 0.5;
  o.round.progress = false;
  QuantizedModel q = quantize(g, plan, calib, o);
  EXPECT_EQ(q.rounding.method, "attention");
  EXPECT_EQ(q.rounding.units.size(), find_blocks(q.sim).size());
  EXPECT_GT(q.seconds, q.calibration_seconds);
  for (size_t i = 0; i < q.sim.layers().size(); ++i) {
    const quant::QuantLayer& l = q.sim.layers()[i];
    EXPECT_GT(l.encoding.scale, 0) << l.info.name;
    EXPECT_TRUE(at::equal(
        q.sim.graph().initializer(l.weight),
        quant::dequantize_weight(q.sim.weight_integers(i), q.sim.weight_scale(i), l.axis)));
  }
  EXPECT_EQ(to_json(q)["rounding"]["units"].size(), q.rounding.units.size());
  o.rounding = "no-such-method";
  EXPECT_EQ(test::error_of([&] { quantize(g, plan, calib, o); }).substr(0, 30),
            "unknown rounding method 'no-su");
}

TEST(BlockReconstruction, QdropNeedsBlocks) {
  ir::Graph g = tiny_resnet();
  auto calib_ds = test::TensorDataset::random(32, 3, 8, 8, 5, 1);
  data::Loader calib = test::loader_for(calib_ds, 32);
  quant::QuantSim sim(g, allocation::uniform_plan(exec::quantizable_layers(g), 4, 4, 0));
  sim.calibrate(calib, quant::CalibrationOptions{"mse", {}, true, false});
  RoundingOptions o;
  o.qdrop = 0.5;
  o.progress = false;
  EXPECT_EQ(test::error_of([&] { make_rounding("attention")->apply(sim, calib, o); }),
            "--qdrop 0.5 needs --granularity block (layer-wise reconstruction has no "
            "activations to drop)");
}

}  // namespace
}  // namespace mpq::ptq
