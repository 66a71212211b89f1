// mpq quantize and eval --plan as a user runs them on the embedded model: the outputs, and one
// line for every bad input with nothing already written lost.
#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "mpq/core/file.h"
#include "test_util.h"

namespace mpq {
namespace {

test::CommandResult mpq(const std::string& args) {
  return test::run_command(std::string(MPQ_BINARY) + " " + args);
}

nlohmann::json json_of(const test::CommandResult& r) {
  return nlohmann::json::parse(r.output.substr(r.output.rfind("\n{") + 1));
}

bool fashion_installed() {
  return std::filesystem::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz");
}

const char* kFashionTrain =
    "idx:/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz,"
    "/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz";

TEST(QuantizeCli, WritesEveryOutputAndEvalReadsThemBack) {
  ASSERT_TRUE(fashion_installed()) << "install dataset-fashion-mnist (scripts/setup.sh)";
  auto dir = test::temp_dir("quantize_cli");
  std::string prefix = (dir / "m").string();
  auto r = mpq("quantize --w-bits 4 --a-bits 8 --calib-count 256 --json -o " + prefix);
  ASSERT_EQ(r.status, 0) << r.output;
  auto j = json_of(r);
  for (const char* ext : {".mpq", ".qcdq.onnx", ".encodings.json", ".plan.json"})
    EXPECT_TRUE(std::filesystem::exists(prefix + ext)) << ext;
  EXPECT_EQ(j["mpq_bytes"].get<int64_t>(),
            static_cast<int64_t>(std::filesystem::file_size(prefix + ".mpq")));
  double top1 = j["top1"].get<double>();
  EXPECT_GT(top1, j["float_top1"].get<double>() - 3.0);

  // The packed model and the QCDQ model evaluate to the simulation's top-1 ...
  for (const char* ext : {".mpq", ".qcdq.onnx"}) {
    auto e = mpq("eval " + prefix + ext + " --data " + std::string(kFashionTrain) +
                 "@1 --json");  // any data: the model's own metadata gives the preprocessing
    ASSERT_EQ(e.status, 0) << e.output;
  }
  auto e = mpq(std::string("eval ") + prefix + ".mpq --json --data " +
               "idx:/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz,"
               "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz");
  ASSERT_EQ(e.status, 0) << e.output;
  EXPECT_NEAR(json_of(e)["top1"].get<double>(), top1, 0.1);
  // ... and so does eval with the written plan, simulated directly.
  auto p = mpq("eval --plan " + prefix + ".plan.json --calib-count 256 --json");
  ASSERT_EQ(p.status, 0) << p.output;
  EXPECT_NEAR(json_of(p)["top1"].get<double>(), top1, 1e-9);

  // inspect reads the packed file: widths and sizes per tensor.
  auto i = mpq("inspect " + prefix + ".mpq --json");
  ASSERT_EQ(i.status, 0) << i.output;
  auto ij = json_of(i);
  ASSERT_TRUE(ij.contains("packed")) << i.output;
  EXPECT_EQ(ij["packed"]["file_bytes"], j["mpq_bytes"]);
  EXPECT_EQ(ij["packed"]["tensors"][1]["bits"], 4);
}

// --weight-grid reaches the exported encodings: every 4-bit weight channel spans [-8, 7] steps
// on the full grid and [-7, 7] on the restricted one; the 8-bit first and last layers likewise.
TEST(QuantizeCli, WeightGridReachesTheEncodings) {
  ASSERT_TRUE(fashion_installed()) << "install dataset-fashion-mnist (scripts/setup.sh)";
  auto dir = test::temp_dir("quantize_grid");
  for (const auto& [grid, lowest] : {std::pair<std::string, int>{"full", 1}, {"restricted", 0}}) {
    std::string prefix = (dir / grid).string();
    // (The grid, not the rounding, sets the encodings: nearest keeps this test short.)
    auto r =
        mpq("quantize --w-bits 4 --a-bits 8 --calib-count 64 --rounding nearest "
            "--weight-grid " +
            grid + " --json -o " + prefix);
    ASSERT_EQ(r.status, 0) << r.output;
    auto encodings = nlohmann::json::parse(read_file(prefix + ".encodings.json", "encodings"));
    ASSERT_FALSE(encodings["param_encodings"].empty());
    for (const auto& [name, channels] : encodings["param_encodings"].items()) {
      for (const auto& c : channels) {
        int bits = c["bitwidth"].get<int>();
        double scale = c["scale"].get<double>();
        double qmax = (1 << (bits - 1)) - 1;
        EXPECT_NEAR(c["max"].get<double>() / scale, qmax, 1e-4) << grid << " " << name;
        EXPECT_NEAR(c["min"].get<double>() / scale, -qmax - lowest, 1e-4) << grid << " " << name;
      }
    }
  }
  auto bad = mpq("quantize --w-bits 4 --a-bits 8 --weight-grid half -o " + (dir / "x").string());
  EXPECT_NE(bad.status, 0) << bad.output;  // a flag CLI11 rejects: its exit code
  EXPECT_NE(bad.output.find("--weight-grid: half not in {full,restricted}"), std::string::npos)
      << bad.output;
}

class QuantizeErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = test::temp_dir("quantize_errors");
    auto r = mpq("inspect --json");
    ASSERT_EQ(r.status, 0);
    nlohmann::json j = nlohmann::json::parse(r.output);
    for (const auto& l : j["layers"]) layers.push_back(l["name"].get<std::string>());
    // An earlier result that a failed run must leave alone.
    write_file_atomic((dir / "m.mpq").string(), "earlier result");
  }
  std::string plan(const std::string& text) {
    std::string path = (dir / "plan.json").string();
    write_file_atomic(path, text);
    return path;
  }
  std::string plan_with(int skip, const std::string& extra) {
    std::string text = "{\"layers\": [";
    for (size_t i = 0; i < layers.size(); ++i)
      if (static_cast<int>(i) != skip)
        text += "{\"name\": \"" + layers[i] + "\", \"w_bits\": 4, \"a_bits\": 8},";
    return plan(text + extra + "]}");
  }
  void expect_error(const std::string& args, const std::string& message) {
    auto r = mpq("quantize " + args + " -o " + (dir / "m").string());
    EXPECT_EQ(r.status, 1) << r.output;
    EXPECT_NE(r.output.find(message), std::string::npos) << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
    EXPECT_EQ(read_file((dir / "m.mpq").string(), "model"), "earlier result");
    EXPECT_FALSE(std::filesystem::exists(dir / "m.qcdq.onnx"));
  }
  std::filesystem::path dir;
  std::vector<std::string> layers;
};

TEST_F(QuantizeErrors, PlanNamingAnUnknownLayer) {
  expect_error("--plan " + plan_with(-1, "{\"name\": \"conv99\", \"w_bits\": 4, \"a_bits\": 8}"),
               "layer 'conv99' is not a quantized layer of the model");
}

TEST_F(QuantizeErrors, PlanWithAWidthOutsideTheRange) {
  expect_error(
      "--plan " + plan_with(0, "{\"name\": \"" + layers[0] + "\", \"w_bits\": 12, \"a_bits\": 8}"),
      "\"w_bits\" = 12: widths are 2..8, or 16/32 for float");
}

TEST_F(QuantizeErrors, PlanMissingALayer) {
  std::string text = plan_with(2, "");
  std::string body = read_file(text, "plan");
  body.erase(body.rfind(','), 1);  // drop the trailing comma
  expect_error("--plan " + plan(body), "no entry for layer '" + layers[2] + "'");
}

TEST_F(QuantizeErrors, MalformedPlanJson) {
  expect_error("--plan " + plan("{\"layers\": [{\"name\": "), "not valid JSON");
}

TEST_F(QuantizeErrors, EmptyCalibrationSet) {
  ASSERT_TRUE(fashion_installed());
  expect_error("--w-bits 4 --a-bits 8 --calib " + std::string(kFashionTrain) + "@0",
               "@0': no images");
}

TEST_F(QuantizeErrors, CalibrationDataOfTheWrongShape) {
  std::ofstream(dir / "cifar.bin", std::ios::binary) << std::string(3073 * 2, '\1');
  expect_error("--w-bits 4 --a-bits 8 --calib cifar10:" + (dir / "cifar.bin").string(),
               "images are 3x32x32 but model input 'input'");
}

TEST_F(QuantizeErrors, OutputInAMissingDirectory) {
  auto r = mpq("quantize --w-bits 4 --a-bits 8 -o /no/such/dir/m");
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.output,
            "mpq: error: -o /no/such/dir/m: output directory '/no/such/dir' does not "
            "exist\n");
}

TEST_F(QuantizeErrors, UnknownObserverAndRounding) {
  expect_error("--w-bits 4 --a-bits 8 --observer magic", "unknown observer 'magic'; available:");
  expect_error("--w-bits 4 --a-bits 8 --rounding magic",
               "unknown rounding method 'magic'; available:");
}

}  // namespace
}  // namespace mpq
