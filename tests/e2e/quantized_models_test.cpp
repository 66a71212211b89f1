// Quantized real models (../shared/data; skipped with a message when absent, CI always has it):
// resnet20 calibrated on the first 1024 images of calib_train_5085.bin, nearest rounding,
// evaluated on test_1017.bin by mpq's simulation and by ONNX Runtime running the exported QCDQ
// model. W8A8 stays within 0.3 point of float; ORT's top-1 matches the simulation's within 0.1
// point with the same argmax on >= 99.5% of images; the packed size is exact.
#include <c10/core/InferenceMode.h>

#include "mpq/eval/evaluate.h"
#include "mpq/exec/executor.h"
#include "mpq/export/packed.h"
#include "mpq/export/quantized.h"
#include "mpq/import/onnx_importer.h"
#include "mpq/ptq/rounding.h"
#include "test_util.h"

namespace mpq {
namespace {

struct PlanRun {
  double float_top1, sim_top1, ort_top1, agreement;
};

double top1_of(const at::Tensor& logits, const at::Tensor& labels) {
  return 100.0 * logits.argmax(1).eq(labels).sum().item<double>() / labels.size(0);
}

PlanRun run_plan(
    const std::string& data_dir, const std::string& name,
    const std::function<allocation::BitPlan(const std::vector<ir::LayerInfo>&)>& plan_of) {
  ir::Graph model = import::load_onnx(data_dir + "/cifar10/resnet20.onnx");
  auto pre = data::default_preprocess("cifar10");
  auto calib_spec = data::parse_spec("cifar10:" + data_dir + "/cifar10/calib_train_5085.bin@1024");
  auto calib_ds = data::open_dataset(calib_spec);
  data::Loader calib(*calib_ds, calib_spec, pre, 128);
  auto test_spec = data::parse_spec("cifar10:" + data_dir + "/cifar10/test_1017.bin");
  auto test_ds = data::open_dataset(test_spec);
  data::Loader test(*test_ds, test_spec, pre, 128);

  quant::QuantSim sim(model, plan_of(exec::quantizable_layers(model)));
  sim.calibrate(calib, quant::CalibrationOptions{"mse", {}, true, false});
  ptq::make_rounding("nearest")->apply(sim, calib, {});
  auto dir = test::temp_dir("quantized_" + name);
  std::string path = (dir / "model.qcdq.onnx").string();
  export_::QuantizedModel q = export_::export_quantized(sim);
  export_::save_qcdq(q, path);

  c10::InferenceMode guard;
  std::vector<at::Tensor> xs, ys, fs, qs;
  ir::Graph frozen = sim.frozen();
  exec::Executor fexec(sim.float_graph()), qexec(frozen);
  for (int64_t b = 0; b < test.batches(); ++b) {
    data::Batch batch = test.batch(b);
    xs.push_back(batch.images);
    ys.push_back(batch.labels);
    fs.push_back(fexec.forward(batch.images));
    qs.push_back(qexec.forward(batch.images));
  }
  at::Tensor x = at::cat(xs), y = at::cat(ys), f = at::cat(fs), s = at::cat(qs);
  at::Tensor o = test::ort_run(path, x, 10);
  PlanRun r{top1_of(f, y), top1_of(s, y), top1_of(o, y),
            100.0 * o.argmax(1).eq(s.argmax(1)).sum().item<double>() / y.size(0)};
  std::printf(
      "resnet20 %s on test_1017: float %.2f  mpq %.2f  onnxruntime %.2f  argmax "
      "agreement %.2f%%\n",
      name.c_str(), r.float_top1, r.sim_top1, r.ort_top1, r.agreement);

  // The packed file: Σ params·bits/8 per tensor plus the documented overhead, to the byte.
  std::string packed = (dir / "model.mpq").string();
  export_::PackedInfo info = export_::save_packed(q, sim, packed);
  int64_t payload = 0, table = 0;
  for (const quant::QuantLayer& l : sim.layers()) {
    if (!l.quantizes_weight()) continue;
    payload += (l.info.params * l.w_bits + 7) / 8;
    std::string name = sim.graph().values[l.weight].name + "_quantized";
    table += 16 + 8 * static_cast<int64_t>(l.info.weight_shape.size()) +
             static_cast<int64_t>(name.size());
  }
  EXPECT_EQ(static_cast<int64_t>(std::filesystem::file_size(packed)),
            64 + static_cast<int64_t>(info.header.graph_bytes) + table + payload);
  return r;
}

void expect_ort_matches(const PlanRun& r) {
  EXPECT_NEAR(r.ort_top1, r.sim_top1, 0.1);
  EXPECT_GE(r.agreement, 99.5);
}

TEST(QuantizedModels, Resnet20W8A8MatchesFloatAndOnnxRuntime) {
  MPQ_REQUIRE_SHARED_DATA();
  if (!test::has_ort()) GTEST_SKIP() << "ONNX Runtime not installed (run scripts/setup.sh)";
  PlanRun r = run_plan(data_dir, "W8A8",
                       [](const auto& layers) { return allocation::uniform_plan(layers, 8, 8); });
  EXPECT_NEAR(r.sim_top1, r.float_top1, 0.3);
  expect_ort_matches(r);
}

TEST(QuantizedModels, Resnet20W4A4MatchesOnnxRuntime) {
  MPQ_REQUIRE_SHARED_DATA();
  if (!test::has_ort()) GTEST_SKIP() << "ONNX Runtime not installed (run scripts/setup.sh)";
  expect_ort_matches(run_plan(
      data_dir, "W4A4", [](const auto& layers) { return allocation::uniform_plan(layers, 4, 4); }));
}

TEST(QuantizedModels, Resnet20MixedPlanMatchesOnnxRuntime) {
  MPQ_REQUIRE_SHARED_DATA();
  if (!test::has_ort()) GTEST_SKIP() << "ONNX Runtime not installed (run scripts/setup.sh)";
  expect_ort_matches(run_plan(data_dir, "mixed", [](const std::vector<ir::LayerInfo>& layers) {
    // Weights cycle through 3..6 bits, activations through 4..8; first and last at 8.
    allocation::BitPlan p;
    const int w[] = {4, 3, 6, 5, 3}, a[] = {8, 6, 4, 5, 7};
    for (size_t i = 0; i < layers.size(); ++i) {
      bool edge = i == 0 || i + 1 == layers.size();
      p.layers.push_back({layers[i].name, edge ? 8 : w[i % 5], edge ? 8 : a[i % 5]});
    }
    return p;
  }));
}

}  // namespace
}  // namespace mpq
