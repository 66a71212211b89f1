// mpq compress end to end on the embedded model: every output file checked against what the
// run reported, an interrupted run resumed to the same outputs, and report.html rendered in
// headless Chromium.
#include <fmt/format.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "mpq/core/file.h"
#include "mpq/data/dataset.h"
#include "mpq/eval/paired.h"
#include "mpq/export/packed.h"
#include "mpq/import/onnx_importer.h"
#include "test_util.h"

namespace mpq {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::string kTest =
    "idx:/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz,"
    "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz@500";
// Small enough to run in seconds; two budgets at once; two baselines.
const std::string kArgs = "compress --data " + kTest +
                          " --calib-count 128 --iters 60 --baselines 8,2 "
                          "--budget avg-w-bits=3 --budget bops=300M";

test::CommandResult mpq(const std::string& args) {
  return test::run_command(std::string(MPQ_BINARY) + " " + args);
}

json load(const fs::path& p) { return json::parse(read_file(p.string())); }

class CompressCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!fs::exists("/usr/share/datasets/fashion-mnist")) return;
    dir_ = new fs::path(test::temp_dir("compress_full"));
    auto r = mpq(kArgs + " --json -o " + dir_->string());
    status_ = r.status;
    output_ = new std::string(r.output);
    if (r.status == 0) result_ = new json(json::parse(r.output.substr(r.output.rfind("\n{") + 1)));
  }
  void SetUp() override {
    if (!dir_) GTEST_SKIP() << "Fashion-MNIST missing (Debian package dataset-fashion-mnist)";
    ASSERT_EQ(status_, 0) << *output_;
  }
  static inline fs::path* dir_ = nullptr;
  static inline int status_ = -1;
  static inline std::string* output_ = nullptr;
  static inline json* result_ = nullptr;
};

TEST_F(CompressCli, WritesEveryOutputAndThePlanMeetsEveryBudget) {
  for (const char* f : {"plan.json", "sensitivity.json", "model.qcdq.onnx", "encodings.json",
                        "model.mpq", "report.md", "report.html", "evaluation.json",
                        "baselines.json", "compress.json"})
    EXPECT_TRUE(fs::exists(*dir_ / f)) << f;

  // Budgets recomputed here from the plan and the per-layer sizes the run reports.
  json plan = load(*dir_ / "plan.json");
  const json& layers = (*result_)["layers"];
  ASSERT_EQ(plan["layers"].size(), layers.size());
  double params = 0, weighted = 0, bops = 0;
  for (size_t l = 0; l < layers.size(); ++l) {
    ASSERT_EQ(plan["layers"][l]["name"], layers[l]["name"]);
    int w = plan["layers"][l]["w_bits"], a = plan["layers"][l]["a_bits"];
    params += layers[l]["params"].get<double>();
    weighted += layers[l]["params"].get<double>() * w;
    bops += layers[l]["macs"].get<double>() * w * a;
  }
  EXPECT_LE(weighted / params, 3.0);
  EXPECT_LE(bops, 300e6);
  EXPECT_EQ(plan["layers"][0]["w_bits"], 8);  // first and last pinned

  // The sensitivity report is the one the plan was made from.
  json sens = load(*dir_ / "sensitivity.json");
  EXPECT_EQ(sens["metric"], "bn_scale");
  EXPECT_EQ((*result_)["metric"], "bn_scale");

  // The report shows the run's numbers.
  std::string md = read_file((*dir_ / "report.md").string());
  EXPECT_NE(md.find(fmt::format("{:.2f}%", (*result_)["evaluation"]["top1"].get<double>())),
            std::string::npos);
  ASSERT_EQ((*result_)["baselines"].size(), 2u);
  EXPECT_EQ((*result_)["baselines"][1]["name"], "W2A8");
  EXPECT_NE(md.find("| W2A8 |"), std::string::npos);
}

TEST_F(CompressCli, ComparesTheMixedPlanWithUniformOnTheSameImages) {
  // W8A8 is above avg-w-bits=3; W2A8 fits: the best that fits and the cheapest above.
  const json& b = (*result_)["baselines"];
  EXPECT_FALSE(b[0]["fits"].get<bool>());
  EXPECT_TRUE(b[1]["fits"].get<bool>());
  const json& c = (*result_)["comparison"];
  ASSERT_TRUE(c.contains("best_fitting")) << c.dump();
  ASSERT_TRUE(c.contains("cheapest_above")) << c.dump();
  EXPECT_EQ(c["best_fitting"]["name"], "W2A8");
  EXPECT_EQ(c["cheapest_above"]["name"], "W8A8");
  double top1 = (*result_)["evaluation"]["top1"];
  for (const auto& [key, index] : {std::pair{"best_fitting", 1}, std::pair{"cheapest_above", 0}}) {
    const json& d = c[key];
    EXPECT_EQ(d["images"], 500);
    EXPECT_NEAR(d["top1_a"].get<double>(), top1, 1e-9);
    EXPECT_NEAR(d["top1_b"].get<double>(), b[index]["top1"].get<double>(), 1e-9);
    EXPECT_NEAR(d["difference"].get<double>(), top1 - b[index]["top1"].get<double>(), 1e-9);
    EXPECT_LE(d["ci95"][0].get<double>(), d["difference"].get<double>());
    EXPECT_GE(d["ci95"][1].get<double>(), d["difference"].get<double>());
  }
  // Per-image predictions of every model are kept, and the paired figures are their comparison.
  eval::Predictions mixed = eval::load_predictions((*dir_ / "predictions/model.json").string());
  eval::Predictions w2 = eval::load_predictions((*dir_ / "predictions/W2A8.json").string());
  EXPECT_EQ(c["best_fitting"]["a_only"].get<int64_t>(),
            mixed.correct().logical_and(w2.correct().logical_not()).sum().item<int64_t>());
  EXPECT_TRUE(fs::exists(*dir_ / "predictions/float.json"));
  // The reports say it.
  std::string md = read_file((*dir_ / "report.md").string());
  std::string html = read_file((*dir_ / "report.html").string());
  std::string line = fmt::format(
      "{:+.2f} points, 95% CI [{:+.2f}, {:+.2f}]", c["best_fitting"]["difference"].get<double>(),
      c["best_fitting"]["ci95"][0].get<double>(), c["best_fitting"]["ci95"][1].get<double>());
  EXPECT_NE(md.find(line), std::string::npos) << md;
  EXPECT_NE(html.find(line), std::string::npos);
}

TEST_F(CompressCli, PackedSizeIsTheFileAndItsLayout) {
  std::string path = (*dir_ / "model.mpq").string();
  int64_t bytes = static_cast<int64_t>(fs::file_size(path));
  EXPECT_EQ((*result_)["quantized"]["file_bytes"].get<int64_t>(), bytes);
  export_::PackedInfo info = export_::read_packed_info(path);
  int64_t payload = 0;
  json plan = load(*dir_ / "plan.json");
  for (const auto& t : info.tensors) {
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    EXPECT_EQ(t.bytes, (n * t.bits + 7) / 8) << t.name;
    payload += t.bytes;
  }
  EXPECT_EQ(bytes, 64 + static_cast<int64_t>(info.header.graph_bytes) +
                       static_cast<int64_t>(info.header.table_bytes) + payload);
}

TEST_F(CompressCli, QcdqModelRunsInOnnxRuntimeWithTheReportedAccuracy) {
  std::string path = (*dir_ / "model.qcdq.onnx").string();
  ir::Graph g = import::load_onnx(path);  // parses and imports; the export ran onnx::checker
  if (!test::has_ort()) GTEST_SKIP() << "ONNX Runtime not installed (run scripts/setup.sh)";
  data::DataSpec spec = data::parse_spec(kTest);
  auto ds = data::open_dataset(spec);
  data::Loader loader(*ds, spec, data::default_preprocess("idx"), 500);
  data::Batch batch = loader.batch(0);
  at::Tensor logits = test::ort_run(path, batch.images, 10);
  double top1 = 100.0 * logits.argmax(1).eq(batch.labels).sum().item<double>() /
                static_cast<double>(batch.labels.size(0));
  double reported = (*result_)["evaluation"]["top1"];
  EXPECT_NEAR(top1, reported, 0.2 + 1e-9) << "ORT " << top1 << " vs reported " << reported;
}

TEST_F(CompressCli, AnInterruptedRunResumesToTheSameOutputs) {
  auto dir = test::temp_dir("compress_resume");
  auto first = mpq(kArgs + " --stop-after allocation -o " + dir.string());
  ASSERT_EQ(first.status, 0) << first.output;
  EXPECT_TRUE(fs::exists(dir / "plan.json"));
  EXPECT_FALSE(fs::exists(dir / "model.mpq"));
  auto plan_time = fs::last_write_time(dir / "plan.json");

  auto resumed = mpq(kArgs + " --resume -o " + dir.string());
  ASSERT_EQ(resumed.status, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("sensitivity: reusing sensitivity.json"), std::string::npos)
      << resumed.output;
  EXPECT_NE(resumed.output.find("allocation: reusing plan.json"), std::string::npos);
  EXPECT_EQ(fs::last_write_time(dir / "plan.json"), plan_time);
  for (const char* f : {"plan.json", "model.mpq", "model.qcdq.onnx", "encodings.json",
                        "evaluation.json", "baselines.json"})
    EXPECT_EQ(read_file((dir / f).string()), read_file((*dir_ / f).string())) << f;

  // Different options cannot reuse the directory; the one-line error says what to do.
  auto other = mpq(kArgs + " --budget size=30KB --resume -o " + dir.string());
  EXPECT_EQ(other.status, 1);
  EXPECT_NE(other.output.find("--resume: " + dir.string() + " was made with budgets"),
            std::string::npos)
      << other.output;
  EXPECT_EQ(std::count(other.output.begin(), other.output.end(), '\n'), 1) << other.output;
  EXPECT_EQ(read_file((dir / "plan.json").string()), read_file((*dir_ / "plan.json").string()));
}

TEST(CompressCliErrors, BadInputFailsInOneLineBeforeAnyWork) {
  auto dir = test::temp_dir("compress_errors");
  auto budget = mpq("compress --budget avg-w-bits=1 -o " + (dir / "out").string());
  EXPECT_EQ(budget.status, 1);
  EXPECT_NE(budget.output.find("--budget avg-w-bits=1 is infeasible: the smallest avg-w-bits "
                               "reachable is"),
            std::string::npos)
      << budget.output;
  EXPECT_EQ(std::count(budget.output.begin(), budget.output.end(), '\n'), 1) << budget.output;
  EXPECT_FALSE(fs::exists(dir / "out"));
  auto data = mpq("compress " + std::string(MPQ_SOURCE_DIR) + "/models/fashion_resnet.onnx -o " +
                  (dir / "out").string());
  EXPECT_EQ(data.status, 1);
  EXPECT_NE(data.output.find("--data SPEC is required with a model"), std::string::npos)
      << data.output;
  auto base = mpq("compress --baselines 8,x -o " + (dir / "out").string());
  EXPECT_EQ(base.status, 1);
  EXPECT_NE(base.output.find("--baselines 8,x: 'x' is not a width 2..8 (give weight widths, "
                             "W{w}A{a} names, 'auto' or 'none')"),
            std::string::npos)
      << base.output;
  EXPECT_FALSE(fs::exists(dir / "out"));
  auto stop = mpq("compress --stop-after report -o " + (dir / "out").string());
  EXPECT_EQ(stop.status, 1);
  EXPECT_NE(stop.output.find("--stop-after report: give sensitivity, allocation or quantize"),
            std::string::npos)
      << stop.output;
  auto method = mpq("compress --method greedy -o " + (dir / "out").string());
  EXPECT_EQ(method.status, 1);
  EXPECT_NE(method.output.find("--method greedy: use ilp, proportional or ssps"), std::string::npos)
      << method.output;
  EXPECT_FALSE(fs::exists(dir / "out"));

  // --resume on a directory whose compress.json is not a state file: one line, file kept.
  fs::create_directories(dir / "bad");
  write_file_atomic((dir / "bad" / "compress.json").string(), "[1, 2]\n");
  auto resume = mpq("compress --resume -o " + (dir / "bad").string());
  EXPECT_EQ(resume.status, 1);
  EXPECT_NE(resume.output.find((dir / "bad" / "compress.json").string() +
                               " is not a compress state file; rerun without --resume"),
            std::string::npos)
      << resume.output;
  EXPECT_EQ(std::count(resume.output.begin(), resume.output.end(), '\n'), 1) << resume.output;
  EXPECT_EQ(read_file((dir / "bad" / "compress.json").string()), "[1, 2]\n");
}

TEST_F(CompressCli, ReportRendersInHeadlessChromium) {
  if (test::run_command("command -v chromium").status != 0)
    GTEST_SKIP() << "chromium not installed (scripts/setup.sh installs Debian's chromium)";
  std::string url = "file://" + (*dir_ / "report.html").string();
  std::string flags =
      "chromium --headless --no-sandbox --disable-gpu --hide-scrollbars "
      "--virtual-time-budget=20000 --window-size=1280,2400 ";
  auto dom = test::run_command(flags + "--dump-dom " + url + " 2>/dev/null");
  ASSERT_EQ(dom.status, 0) << dom.output;
  // The page sets these once every plot has rendered (tools/mpq/report.h).
  EXPECT_NE(dom.output.find("data-errors=\"0\""), std::string::npos) << dom.output.substr(0, 2000);
  EXPECT_NE(dom.output.find("data-plots=\"4\""), std::string::npos);
  EXPECT_NE(dom.output.find("4 of 4 plots rendered"), std::string::npos);

  std::string png = (*dir_ / "report.png").string();
  auto shot = test::run_command(flags + "--screenshot=" + png + " " + url + " 2>/dev/null");
  ASSERT_EQ(shot.status, 0) << shot.output;
  std::string bytes = read_file(png);
  ASSERT_GT(bytes.size(), 20000u);  // a blank page is a few KB
  EXPECT_EQ(bytes.substr(1, 3), "PNG");
  std::printf("screenshot: %s\n", png.c_str());
}

TEST(CompressSsps, SearchesThePlanOnTheCalibrationImagesAndResumesOnlyWithTheSameOptions) {
  if (!fs::exists("/usr/share/datasets/fashion-mnist"))
    GTEST_SKIP() << "Fashion-MNIST missing (Debian package dataset-fashion-mnist)";
  auto dir = test::temp_dir("compress_ssps");
  std::string args = "compress --data " + kTest +
                     " --method ssps --steps 100 --search-count 256 --budget avg-w-bits=3 "
                     "--budget bops=300M --stop-after allocation -o " + (dir / "out").string();
  auto r = mpq(args);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("[2/6] allocation: ssps"), std::string::npos) << r.output;
  json plan = load(dir / "out" / "plan.json");
  EXPECT_EQ(plan["budget"]["allocator"], "ssps");
  EXPECT_LE(plan["predicted"]["avg_w_bits"].get<double>(), 3.0);
  EXPECT_LE(plan["predicted"]["bops"].get<double>(), 300e6);
  EXPECT_GE(plan["predicted"]["ssps"]["rounds"].size(), 2u);
  EXPECT_EQ(load(dir / "out" / "compress.json")["config"]["ssps"]["steps"], 100);

  auto other = mpq(args + " --theta 0.8 --resume");
  EXPECT_EQ(other.status, 1);
  EXPECT_NE(other.output.find("--resume: " + (dir / "out").string() + " was made with ssps"),
            std::string::npos)
      << other.output;
  auto bad = mpq("compress --method ssps --candidates 2,16 -o " + (dir / "bad").string());
  EXPECT_EQ(bad.status, 1);
  EXPECT_NE(bad.output.find("candidate width 16: SSPS searches quantized widths 2..8"),
            std::string::npos)
      << bad.output;
  EXPECT_FALSE(fs::exists(dir / "bad"));
}

TEST(CompressActivations, ChoosesActivationWidthsOnMeasuredDamageAndComparesWithAutoBaselines) {
  if (!fs::exists("/usr/share/datasets/fashion-mnist"))
    GTEST_SKIP() << "Fashion-MNIST missing (Debian package dataset-fashion-mnist)";
  auto dir = test::temp_dir("compress_activations");
  auto r = mpq("compress --data " + kTest +
               " --a-candidates 4,8 --metric reconstructed --recon-iters 5 --data-count 64 "
               "--calib-count 64 --iters 10 --budget bops=250M --json -o " +
               (dir / "out").string());
  ASSERT_EQ(r.status, 0) << r.output;
  json result = json::parse(r.output.substr(r.output.rfind("\n{") + 1));
  // The metric measured both activation widths, and the plan uses the freedom.
  json sens = load(dir / "out" / "sensitivity.json");
  EXPECT_EQ(sens["a_bits"], json({4, 8}));
  for (const auto& l : sens["layers"]) EXPECT_TRUE(l["a_omega"].contains("4")) << l.dump();
  json plan = load(dir / "out" / "plan.json");
  std::set<int> a_widths;
  for (const auto& l : plan["layers"]) a_widths.insert(l["a_bits"].get<int>());
  EXPECT_TRUE(a_widths.count(4)) << plan.dump();
  EXPECT_LE(plan["predicted"]["bops"].get<double>(), 250e6);
  // auto baselines: every one that fits is undominated among those that fit, and one is above.
  std::vector<std::pair<int, int>> fits;
  int above = 0;
  for (const auto& b : result["baselines"]) {
    EXPECT_EQ(b["fits"].get<bool>(), b["bops"].get<double>() <= 250e6) << b.dump();
    if (b["fits"].get<bool>())
      fits.emplace_back(b["w_bits"].get<int>(), b["a_bits"].get<int>());
    else
      ++above;
  }
  EXPECT_EQ(above, 1);
  ASSERT_FALSE(fits.empty());
  for (auto [w, a] : fits)
    for (auto [w2, a2] : fits) EXPECT_FALSE(w2 >= w && a2 >= a && (w2 > w || a2 > a));
  EXPECT_TRUE(result["comparison"].contains("best_fitting")) << result["comparison"].dump();
  EXPECT_TRUE(result["comparison"].contains("cheapest_above")) << result["comparison"].dump();
  EXPECT_EQ(result["config"]["a_candidates"], json({4, 8}));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace mpq
