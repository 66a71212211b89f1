// Exports of a quantized tiny CNN: bit packing at every width, the QCDQ model (checker, mpq's
// importer, ONNX Runtime) against the simulation, the packed size formula to the byte, the
// .mpq round trip, and failures that leave nothing half-written.
#include <c10/core/InferenceMode.h>

#include "mpq/core/error.h"
#include "mpq/core/file.h"
#include "mpq/exec/executor.h"
#include "mpq/export/packed.h"
#include "mpq/export/quantized.h"
#include "mpq/import/onnx_importer.h"
#include "mpq/ptq/rounding.h"
#include "test_util.h"

namespace mpq::export_ {
namespace {

using Ints = std::vector<int64_t>;

ir::Graph tiny_resnet(uint64_t seed = 2) {
  at::manual_seed(seed);
  test::GraphBuilder b({-1, 3, 8, 8});
  int x = b.g.inputs[0];
  auto conv = [&](int in, int64_t cin, int64_t cout, const std::string& name) {
    int w =
        b.constant(name + ".weight", at::randn({cout, cin, 3, 3}) * (1.5 / std::sqrt(cin * 9.0)));
    int bias = b.constant(name + ".bias", at::randn({cout}) * 0.1);
    return b.op("Conv", {in, w, bias}, {{"pads", Ints{1, 1, 1, 1}}}, name);
  };
  int h = b.op("Relu", {conv(x, 3, 8, "stem")}, {}, "stem_relu");
  int r = b.op("Relu", {conv(h, 8, 8, "block.conv1")}, {}, "block.relu1");
  int s = b.op("Add", {conv(r, 8, 8, "block.conv2"), h}, {}, "block.add");
  int y = b.op("Relu", {s}, {}, "block.relu2");
  int side = conv(y, 8, 6, "side");  // read by two layers: shares y's activation quantizer
  int main = conv(y, 8, 6, "main");
  int sum = b.op("Relu", {b.op("Add", {side, main}, {}, "merge")}, {}, "merge_relu");
  int gp = b.op("GlobalAveragePool", {sum}, {}, "gap");
  int fl = b.op("Flatten", {gp}, {{"axis", int64_t{1}}}, "flatten");
  int w = b.constant("fc.weight", at::randn({5, 6}) * 0.5);
  int bias = b.constant("fc.bias", at::randn({5}) * 0.1);
  return b.finish(b.op("Gemm", {fl, w, bias}, {{"transB", int64_t{1}}}, "fc"));
}

// Six layers; weights at 8, 2, 3, 5, 6, 4 bits, activations at 8, 4, 3, 6, 6, 5.
allocation::BitPlan mixed_plan(const ir::Graph& g) {
  auto layers = exec::quantizable_layers(g);
  allocation::BitPlan p;
  const int w[] = {8, 2, 3, 5, 6, 4};
  const int a[] = {8, 4, 3, 6, 6, 5};
  for (size_t i = 0; i < layers.size(); ++i) p.layers.push_back({layers[i].name, w[i], a[i]});
  return p;
}

quant::QuantSim quantized(const ir::Graph& g, const allocation::BitPlan& plan,
                          const data::Loader& loader) {
  quant::QuantSim sim(g, plan);
  sim.calibrate(loader, quant::CalibrationOptions{"mse", {}, true, false});
  ptq::make_rounding("nearest")->apply(sim, loader, {});
  return sim;
}

TEST(Packing, RoundTripsEveryWidthAndLength) {
  at::manual_seed(0);
  for (int bits = 2; bits <= 8; ++bits) {
    int64_t q = (1 << (bits - 1)) - 1;
    for (int64_t n : {0, 1, 3, 7, 8, 9, 31, 64, 1001}) {
      at::Tensor v = at::randint(-q, q + 1, {n}, at::kChar);
      std::string packed = pack_bits(v, bits);
      EXPECT_EQ(static_cast<int64_t>(packed.size()), (n * bits + 7) / 8);
      EXPECT_TRUE(at::equal(unpack_bits(packed, 0, n, bits), v)) << bits << " bits, n=" << n;
    }
  }
  // 3 bits, LSB first: -1 (111), 2 (010), -3 (101) -> 0b101'010'111 = 0x57, 0x01.
  std::string p = pack_bits(at::tensor({-1, 2, -3}, at::kChar), 3);
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(static_cast<uint8_t>(p[0]), 0x57);
  EXPECT_EQ(static_cast<uint8_t>(p[1]), 0x01);
}

class QuantizedExport : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = test::temp_dir("qexport");
    model = tiny_resnet();
    ds = std::make_unique<test::TensorDataset>(test::TensorDataset::random(96, 3, 8, 8, 5));
  }
  std::filesystem::path dir;
  ir::Graph model;
  std::unique_ptr<test::TensorDataset> ds;
};

TEST_F(QuantizedExport, QcdqReproducesTheSimulation) {
  data::Loader loader = test::loader_for(*ds, 32);
  quant::QuantSim sim = quantized(model, mixed_plan(model), loader);
  QuantizedModel q = export_quantized(sim);
  std::string path = (dir / "m.qcdq.onnx").string();
  save_qcdq(q, path);  // runs onnx::checker

  int dq = 0, quant = 0, clip = 0;
  for (const ir::Node& n : q.qcdq.nodes) {
    dq += n.op == "DequantizeLinear";
    quant += n.op == "QuantizeLinear";
    clip += n.op == "Clip";
  }
  EXPECT_EQ(dq, 6 + 5);  // every weight, and 5 activation chains (side and main share one)
  EXPECT_EQ(quant, 5);
  EXPECT_EQ(clip, 4);  // the 8-bit chain needs no Clip
  EXPECT_EQ(q.encodings["param_encodings"]["block.conv1.weight"].size(), 8u);
  EXPECT_EQ(q.encodings["param_encodings"]["block.conv1.weight"][0]["bitwidth"], 2);
  EXPECT_EQ(q.encodings["activation_encodings"]["block.relu1_out"][0]["bitwidth"], 3);

  c10::InferenceMode guard;
  at::Tensor x = at::cat({loader.batch(0).images, loader.batch(1).images});
  at::Tensor sim_out = exec::Executor(sim.graph()).forward(x);
  at::Tensor ours = exec::Executor(import::load_onnx(path)).forward(x);
  EXPECT_LT((ours - sim_out).abs().max().item<double>(), 1e-4);
  if (!test::has_ort()) GTEST_SKIP() << "ONNX Runtime not installed (scripts/setup.sh)";
  at::Tensor theirs = test::ort_run(path, x, 5);
  EXPECT_LT((theirs - sim_out).abs().max().item<double>(), 1e-3);
  EXPECT_TRUE(at::equal(theirs.argmax(1), sim_out.argmax(1)));
}

TEST_F(QuantizedExport, PackedSizeIsParamsTimesBitsPlusDocumentedOverhead) {
  data::Loader loader = test::loader_for(*ds, 32);
  allocation::BitPlan plan = mixed_plan(model);
  quant::QuantSim sim = quantized(model, plan, loader);
  QuantizedModel q = export_quantized(sim);
  std::string path = (dir / "m.mpq").string();
  PackedInfo info = save_packed(q, sim, path);

  int64_t payload = 0, table = 0;
  for (const ir::LayerInfo& l : exec::quantizable_layers(model)) {
    int bits = plan.find(l.name)->w_bits;
    payload += (l.params * bits + 7) / 8;
    std::string name = l.name + ".weight_quantized";
    table +=
        16 + 8 * static_cast<int64_t>(l.weight_shape.size()) + static_cast<int64_t>(name.size());
  }
  int64_t file = static_cast<int64_t>(std::filesystem::file_size(path));
  EXPECT_EQ(file, 64 + static_cast<int64_t>(info.header.graph_bytes) + table + payload);
  EXPECT_EQ(static_cast<int64_t>(info.header.weights_bytes), payload);
  EXPECT_EQ(info.file_bytes, file);

  // Read back: the same header and table, and the same model as the QCDQ export.
  PackedInfo back = read_packed_info(path);
  ASSERT_EQ(back.tensors.size(), 6u);
  EXPECT_EQ(back.tensors[1].bits, 2);
  EXPECT_EQ(back.tensors[1].shape, (Ints{8, 8, 3, 3}));
  c10::InferenceMode guard;
  at::Tensor x = loader.batch(0).images;
  at::Tensor from_packed = exec::Executor(load_packed(path)).forward(x);
  at::Tensor from_sim = exec::Executor(sim.graph()).forward(x);
  EXPECT_LT((from_packed - from_sim).abs().max().item<double>(), 1e-4);
}

TEST_F(QuantizedExport, BadFilesAndPathsFailCleanly) {
  data::Loader loader = test::loader_for(*ds, 32);
  quant::QuantSim sim = quantized(model, mixed_plan(model), loader);
  QuantizedModel q = export_quantized(sim);
  std::string path = (dir / "m.mpq").string();
  save_packed(q, sim, path);
  std::string bytes = read_file(path, "model");

  using test::error_of;
  std::string truncated = (dir / "truncated.mpq").string();
  write_file_atomic(truncated, bytes.substr(0, bytes.size() - 10));
  EXPECT_NE(error_of([&] { load_packed(truncated); }).find("runs past the end of the file"),
            std::string::npos);
  std::string wrong = (dir / "wrong.mpq").string();
  write_file_atomic(wrong, "MPQP" + std::string(100, '\x01'));
  EXPECT_NE(error_of([&] { load_packed(wrong); }).find(".mpq format version"), std::string::npos);

  // A missing output directory fails before writing; an existing file is left as it was.
  std::string missing = (dir / "no_such_dir" / "m.mpq").string();
  EXPECT_NE(error_of([&] { save_packed(q, sim, missing); }).find("does not exist"),
            std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(dir / "no_such_dir"));
  EXPECT_EQ(read_file(path, "model"), bytes);
}

}  // namespace
}  // namespace mpq::export_
