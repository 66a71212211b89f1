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

}  // namespace
}  // namespace mpq
