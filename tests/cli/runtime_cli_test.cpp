// mpq run, bench and latency-table as a user runs them on the embedded model: the runtime's
// accuracy beside the simulation, a latency table that a latency-budgeted search reads and
// bench checks, and one line for every bad input.
#include <filesystem>
#include <nlohmann/json.hpp>

#include "mpq/runtime/runtime.h"
#include "test_util.h"

namespace mpq {
namespace {

using test::mpq_cli;
auto mpq = [](const std::string& args) { return mpq_cli(args); };
auto json_of = [](const test::CommandResult& r) { return test::output_json(r); };

const std::string kTest =
    "idx:/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz,"
    "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz";

bool fashion_installed() {
  return std::filesystem::exists("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz");
}

TEST(RuntimeCli, RunAgreesWithTheSimulationOnEveryKernelSet) {
  ASSERT_TRUE(fashion_installed()) << "install dataset-fashion-mnist (scripts/setup.sh)";
  auto dir = test::temp_dir("runtime_cli_run");
  std::string m = (dir / "m").string();
  ASSERT_EQ(mpq("quantize --w-bits 4 --a-bits 4 --calib-count 256 -o " + m).status, 0);
  auto r = mpq("run " + m + ".mpq --data " + kTest + "@1000 --json");
  ASSERT_EQ(r.status, 0) << r.output;
  auto j = json_of(r);
  EXPECT_EQ(j["images"].get<int>(), 1000);
  EXPECT_NEAR(j["top1"].get<double>(), j["top1_simulated"].get<double>(), 0.1);
  EXPECT_GE(j["argmax_agreement"].get<double>(), 99.5);
  EXPECT_GT(j["top1"].get<double>(), 80.0);  // the W4A4 model still classifies
  EXPECT_EQ(j["isa"].get<std::string>(), runtime::isa_name(runtime::best_isa()));
  // Every kernel set computes the same integers: the same logits, so the same differences.
  for (const char* isa : {"ref", "avx2"}) {
    if (!runtime::isa_supported(std::string(isa) == "ref" ? runtime::Isa::kRef
                                                          : runtime::Isa::kAvx2))
      continue;
    auto a = json_of(mpq("run " + m + ".mpq --data " + kTest + "@64 --json --isa " + isa));
    auto b = json_of(mpq("run " + m + ".mpq --data " + kTest + "@64 --json"));
    EXPECT_EQ(a["logit_max_abs_difference"], b["logit_max_abs_difference"]) << isa;
    EXPECT_EQ(a["top1"], b["top1"]) << isa;
  }
}

TEST(RuntimeCli, LatencyTableFeedsALatencyBudgetAndBenchChecksThePlan) {
  ASSERT_TRUE(fashion_installed()) << "install dataset-fashion-mnist (scripts/setup.sh)";
  auto dir = test::temp_dir("runtime_cli_latency");
  std::string lut = (dir / "lut.json").string();
  // The table is for the kernels it names: AVX2's where the CPU runs them (on AVX-512 machines
  // too, forced), else the best this CPU has.
  const bool avx2 = runtime::isa_supported(runtime::Isa::kAvx2);
  auto t = mpq(std::string("latency-table --w-candidates 2,4,8 --a-candidates 4,8 --seconds 0.2 ") +
               (avx2 ? "--isa avx2 " : "") + "-o " + lut);
  ASSERT_EQ(t.status, 0) << t.output;
  auto table = nlohmann::json::parse(std::ifstream(lut));
  EXPECT_EQ(table["isa"], avx2 ? "avx2" : runtime::isa_name(runtime::best_isa()));
  auto layers = json_of(mpq("inspect --json"))["layers"];
  ASSERT_EQ(table["layers"].size(), layers.size());
  double fastest = 0, slowest = 0;
  for (const auto& l : layers) {
    const auto& row = table["layers"][l["name"].get<std::string>()];
    double lo = 1e9, hi = 0;
    for (const char* key : {"w2a4", "w2a8", "w4a4", "w4a8", "w8a4", "w8a8"}) {
      ASSERT_TRUE(row.contains(key)) << l["name"] << " " << key;
      EXPECT_GT(row[key].get<double>(), 0.0);
      lo = std::min(lo, row[key].get<double>());
      hi = std::max(hi, row[key].get<double>());
    }
    fastest += lo, slowest += hi;
  }
  // A budget between the fastest and slowest plans: the search meets it in the table's terms,
  // and bench reports the same prediction for the quantized plan next to its measurement.
  double budget = fastest + 0.5 * (slowest - fastest);
  std::string plan = (dir / "plan.json").string();
  auto s = mpq("search --latency-table " + lut + " --budget latency=" + std::to_string(budget) +
               "ms --candidates 2,4,8 --a-candidates 4,8 --first-last-bits 0 -o " + plan);
  ASSERT_EQ(s.status, 0) << s.output;
  std::string m = (dir / "m").string();
  // (Rounding does not change a layer's latency: nearest keeps this test short.)
  ASSERT_EQ(mpq("quantize --plan " + plan + " --calib-count 128 --rounding nearest -o " + m).status,
            0);
  auto b = mpq("bench " + m + ".mpq --batch 1,3 --seconds 0.2 --latency-table " + lut + " --json");
  ASSERT_EQ(b.status, 0) << b.output;
  auto results = json_of(b)["results"];
  ASSERT_EQ(results.size(), 2u);
  EXPECT_LE(results[0]["latency_predicted_ms"].get<double>(), budget * (1 + 1e-9));
  EXPECT_GE(results[0]["latency_predicted_ms"].get<double>(), fastest * (1 - 1e-9));
  EXPECT_GT(results[1]["mpq"]["runs"].get<int>(), 0);
}

TEST(RuntimeCli, BadInputIsOneLine) {
  auto dir = test::temp_dir("runtime_cli_bad");
  auto one_line = [](const test::CommandResult& r, const std::string& part) {
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.output.find(part), std::string::npos) << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  };
  one_line(mpq("run " + (dir / "nothing.mpq").string() + " --data " + kTest), "nothing.mpq");
  std::string onnx = std::string(MPQ_SOURCE_DIR) + "/models/fashion_resnet.onnx";
  one_line(mpq("run " + onnx + " --data " + kTest), "not a packed .mpq model");
  std::string m = (dir / "m").string();
  ASSERT_EQ(
      mpq("quantize --w-bits 8 --a-bits 8 --calib-count 64 --rounding nearest -o " + m).status, 0);
  one_line(mpq("run " + m + ".mpq"), "--data is required");
  one_line(mpq("run " + m + ".mpq --data " + kTest + " --isa avx9"), "--isa avx9");
  one_line(mpq("bench " + m + ".mpq --batch 0"), "--batch 0");
  one_line(mpq("bench " + m + ".mpq --float " + (dir / "none.onnx").string()), "none.onnx");
  std::string lut = (dir / "lut.json").string();
  one_line(mpq("latency-table --w-candidates 9 -o " + lut), "--w-candidates 9");
  EXPECT_FALSE(std::filesystem::exists(lut));
}

}  // namespace
}  // namespace mpq
