// pipeline::compress called as a library, on the embedded default's model file and
// Fashion-MNIST: the results it returns, the files it writes, and --resume's fingerprint.
// (tests/cli/compress_cli_test.cpp runs the same through the CLI with compress's defaults.)
#include "mpq/pipeline/compress.h"

#include <filesystem>

#include "mpq/core/file.h"
#include "mpq/import/onnx_importer.h"
#include "test_util.h"

namespace mpq {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const char* kTrain =
    "idx:/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz,"
    "/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz";
const char* kTest =
    "idx:/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz,"
    "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz@1000";

// A short run: nearest rounding on 128 calibration images, 1000 test images, W2/W8 baselines.
pipeline::CompressOptions short_run(const fs::path& out) {
  pipeline::CompressOptions o;
  o.model_name = std::string(MPQ_SOURCE_DIR) + "/models/fashion_resnet.onnx";
  o.out = out.string();
  o.data.spec = kTest;
  o.calib.spec = kTrain;
  o.calib_count = 128;
  o.budgets = {"avg-w-bits=4"};
  o.baselines = "2,8";
  o.quant.rounding = "nearest";
  o.progress = o.eval_progress = false;
  return o;
}

TEST(PipelineCompress, ReturnsTheResultsWritesEveryFileAndResumesOnlyWithTheSameOptions) {
  if (!fs::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "install dataset-fashion-mnist (scripts/setup.sh)";
  fs::path dir = test::temp_dir("pipeline_compress");
  pipeline::CompressOptions o = short_run(dir);
  ir::Graph model = import::load_onnx(o.model_name);
  json r = pipeline::compress(model, o);

  for (const char* f :
       {"sensitivity.json", "plan.json", "model.mpq", "model.qcdq.onnx", "encodings.json",
        "evaluation.json", "baselines.json", "report.md", "report.html", "predictions/float.json",
        "predictions/model.json", "predictions/W2A8.json", "predictions/W8A8.json"})
    EXPECT_TRUE(fs::exists(dir / f)) << f;
  const json& e = r["evaluation"];
  EXPECT_EQ(e["images"], 1000);
  EXPECT_GT(e["top1"].get<double>(), e["float_top1"].get<double>() - 5.0);
  EXPECT_LE(r["quantized"]["avg_w_bits"].get<double>(), 4.0 + 1e-9);
  // W2A8 fits avg-w-bits=4 and W8A8 does not: the mixed plan is paired with both.
  ASSERT_EQ(r["baselines"].size(), 2u);
  EXPECT_EQ(r["comparison"]["best_fitting"]["name"], "W2A8");
  EXPECT_EQ(r["comparison"]["cheapest_above"]["name"], "W8A8");
  EXPECT_EQ(r["comparison"]["best_fitting"]["images"], 1000);
  // The summary, report.md and report.html render the same rows.
  std::string text = pipeline::report_text(r);
  std::string md = read_file((dir / "report.md").string(), "report");
  for (const char* row : {"W2A8", "W8A8"}) {
    EXPECT_NE(text.find(row), std::string::npos) << text;
    EXPECT_NE(md.find(std::string("| ") + row + " |"), std::string::npos) << md;
  }
  // compress.json keeps the fingerprint of these options.
  json state = json::parse(read_file((dir / "compress.json").string(), "state"));
  EXPECT_EQ(state["config"], pipeline::fingerprint(o));

  // Resuming with the same options reuses every stage and returns the same results ...
  o.resume = true;
  json again = pipeline::compress(model, o);
  for (const auto& [stage, s] : again["stages"].items()) EXPECT_TRUE(s["reused"]) << stage;
  EXPECT_EQ(again["evaluation"], r["evaluation"]);
  EXPECT_EQ(again["comparison"], r["comparison"]);
  // ... and with any result-changing option different, it is one error naming that option.
  o.quant.round.iters = 50;
  std::string msg = test::error_of([&] { pipeline::compress(model, o); });
  EXPECT_NE(msg.find("was made with quant.iters = 0, this run has 50"), std::string::npos) << msg;
}

TEST(PipelineCompress, StopsAfterTheAskedStage) {
  if (!fs::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "install dataset-fashion-mnist (scripts/setup.sh)";
  fs::path dir = test::temp_dir("pipeline_compress_stop");
  pipeline::CompressOptions o = short_run(dir);
  o.stop_after = "allocation";
  json r = pipeline::compress(import::load_onnx(o.model_name), o);
  EXPECT_EQ(r["stopped_after"], "allocation");
  EXPECT_TRUE(fs::exists(dir / "plan.json"));
  EXPECT_FALSE(fs::exists(dir / "model.mpq"));
  EXPECT_TRUE(r["stages"].contains("allocation"));
  EXPECT_FALSE(r["stages"].contains("quantize"));
}

}  // namespace
}  // namespace mpq
