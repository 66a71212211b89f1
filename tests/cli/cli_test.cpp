// The mpq command line as a user runs it: the embedded default, one-line errors, --json.
#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "test_util.h"

namespace mpq {
namespace {

test::CommandResult mpq(const std::string& args) {
  return test::run_command(std::string(MPQ_BINARY) + " " + args);
}

bool fashion_mnist_installed() {
  return std::filesystem::exists("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz");
}

TEST(Cli, EvalWithNoArgumentsRunsTheEmbeddedDefaultAboveNinetyOnePercent) {
  ASSERT_TRUE(fashion_mnist_installed()) << "install dataset-fashion-mnist (scripts/setup.sh)";
  auto r = mpq("eval --json");
  ASSERT_EQ(r.status, 0) << r.output;
  auto j = nlohmann::json::parse(r.output.substr(r.output.find('{')));
  EXPECT_EQ(j["images"], 10000);
  EXPECT_GE(j["top1"].get<double>(), 91.0);
  EXPECT_EQ(j["model"], "embedded:fashion_resnet.onnx");
}

TEST(Cli, InspectEmbeddedModelKeepsBatchNorm) {
  auto r = mpq("inspect --json");
  ASSERT_EQ(r.status, 0) << r.output;
  auto j = nlohmann::json::parse(r.output);
  EXPECT_GT(j["bn_kept"].get<int>(), 0);
  EXPECT_EQ(j["layers"].size(), j["bn_kept"].get<size_t>() + 1);  // every conv has BN; the fc not
  EXPECT_GT(j["macs"].get<int64_t>(), 0);
}

TEST(Cli, MissingModelIsOneLineError) {
  auto r = mpq("eval /no/such/model.onnx --data cifar10:/no/such.bin");
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.output, "mpq: error: /no/such/model.onnx: ONNX model does not exist\n");
}

TEST(Cli, DataThatDoesNotMatchTheModelIsOneLineError) {
  ASSERT_TRUE(fashion_mnist_installed());
  auto dir = test::temp_dir("cli");
  std::ofstream(dir / "one.bin", std::ios::binary) << std::string(3073, '\1');
  auto r =
      mpq("eval --data cifar10:" + (dir / "one.bin").string());  // 3x32x32 into a 1x28x28 model
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("images are 3x32x32 but model input 'input'"), std::string::npos)
      << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
}

TEST(Cli, UnknownOptionIsRejected) {
  auto r = mpq("eval --frobnicate 3");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("frobnicate"), std::string::npos) << r.output;
}

TEST(Cli, ComparePairsTwoModelsOnTheSameImages) {
  ASSERT_TRUE(fashion_mnist_installed()) << "install dataset-fashion-mnist (scripts/setup.sh)";
  auto dir = test::temp_dir("cli_compare");
  std::string test_set =
      "idx:/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz,"
      "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz";
  std::string fp = (dir / "float.json").string(), qp = (dir / "w2a4.json").string();
  auto f = mpq("eval --data " + test_set + "@600 --predictions " + fp + " --json");
  ASSERT_EQ(f.status, 0) << f.output;
  auto q = mpq("eval --data " + test_set + "@600 --w-bits 2 --a-bits 4 --calib-count 256 " +
               "--predictions " + qp + " --json");
  ASSERT_EQ(q.status, 0) << q.output;
  double f_top1 = nlohmann::json::parse(f.output.substr(f.output.rfind("\n{") + 1))["top1"];
  double q_top1 = nlohmann::json::parse(q.output.substr(q.output.rfind("\n{") + 1))["top1"];

  auto c = mpq("compare " + fp + " " + qp + " --json");
  ASSERT_EQ(c.status, 0) << c.output;
  auto j = nlohmann::json::parse(c.output);
  EXPECT_EQ(j["images"], 600);
  EXPECT_NEAR(j["top1_a"].get<double>(), f_top1, 1e-9);
  EXPECT_NEAR(j["top1_b"].get<double>(), q_top1, 1e-9);
  EXPECT_NEAR(j["difference"].get<double>(), f_top1 - q_top1, 1e-9);
  // The counts of images only one model gets right make up the difference.
  EXPECT_NEAR(j["difference"].get<double>(),
              100.0 * (j["a_only"].get<int>() - j["b_only"].get<int>()) / 600.0, 1e-9);
  EXPECT_LE(j["ci95"][0].get<double>(), j["difference"].get<double>());
  EXPECT_GE(j["ci95"][1].get<double>(), j["difference"].get<double>());
  EXPECT_EQ(j["b"], "embedded:fashion_resnet.onnx W2A4");

  // Predictions on another set of images: one line, naming both.
  std::string other = (dir / "other.json").string();
  ASSERT_EQ(mpq("eval --data " + test_set + "@500 --predictions " + other).status, 0);
  auto bad = mpq("compare " + fp + " " + other);
  EXPECT_EQ(bad.status, 1) << bad.output;
  EXPECT_NE(bad.output.find("(600 images)"), std::string::npos) << bad.output;
  EXPECT_NE(bad.output.find("(500 images)"), std::string::npos) << bad.output;
  EXPECT_EQ(std::count(bad.output.begin(), bad.output.end(), '\n'), 1) << bad.output;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace mpq
