// On ../shared/data (skipped with a message when absent; CI always has it):
// - mpq's top-1 reproduces the reference figures of ../shared/data/README.md;
// - mpq's logits agree with ONNX Runtime (npm onnxruntime-node) to 1e-4 on 64 images.
#include <fstream>

#include "mpq/data/dataset.h"
#include "mpq/eval/evaluate.h"
#include "mpq/exec/executor.h"
#include "mpq/import/onnx_importer.h"
#include "test_util.h"

namespace mpq {
namespace {

struct Case {
  std::string model, data;
  data::Preprocess pre;
};

Case cifar(const std::string& dir, const std::string& model, const std::string& set) {
  return {dir + "/cifar10/" + model + ".onnx", "cifar10:" + dir + "/cifar10/" + set + ".bin",
          data::default_preprocess("cifar10")};
}

Case mobilenet(const std::string& dir, const std::string& suffix = "") {
  return {dir + "/imagenet/mobilenetv2.onnx", "imagefolder:" + dir + "/imagenet/val1300" + suffix,
          data::Preprocess{256, 224, {0.5, 0.5, 0.5}, {0.5, 0.5, 0.5}}};
}

double top1(const Case& c) {
  ir::Graph g = import::load_onnx(c.model);
  auto spec = data::parse_spec(c.data);
  auto ds = data::open_dataset(spec);
  data::Loader loader(*ds, spec, c.pre, 128);
  return eval::evaluate(g, loader, eval::EvalOptions{false}).top1;
}

TEST(RealModels, Resnet20ReproducesReferenceTop1) {
  MPQ_REQUIRE_SHARED_DATA();
  EXPECT_NEAR(top1(cifar(data_dir, "resnet20", "test_1017")), 91.64, 0.1);
  EXPECT_NEAR(top1(cifar(data_dir, "resnet20", "test_10000_jpeg")), 81.03, 0.1);
}

TEST(RealModels, Resnet20BnFoldedReproducesReferenceTop1) {
  MPQ_REQUIRE_SHARED_DATA();
  EXPECT_NEAR(top1(cifar(data_dir, "resnet20_bnfolded", "test_1017")), 91.64, 0.1);
  EXPECT_NEAR(top1(cifar(data_dir, "resnet20_bnfolded", "test_10000_jpeg")), 81.03, 0.1);
}

TEST(RealModels, Resnet56ReproducesReferenceTop1) {
  MPQ_REQUIRE_SHARED_DATA();
  EXPECT_NEAR(top1(cifar(data_dir, "resnet56", "test_1017")), 92.72, 0.1);
  EXPECT_NEAR(top1(cifar(data_dir, "resnet56", "test_10000_jpeg")), 83.20, 0.1);
}

TEST(RealModels, MobileNetV2ReproducesReferenceTop1) {
  MPQ_REQUIRE_SHARED_DATA();
  EXPECT_NEAR(top1(mobilenet(data_dir)), 79.0, 0.5);
}

// Logits of the first 64 images, from mpq and from ONNX Runtime via tools/ort/ort.js.
void expect_logits_agree(const Case& c) {
  std::string ort = std::string(MPQ_SOURCE_DIR) + "/tools/ort";
  ASSERT_TRUE(std::filesystem::exists(ort + "/node_modules/onnxruntime-node"))
      << "ONNX Runtime is not installed: run scripts/setup.sh (npm install in tools/ort)";
  ir::Graph g = import::load_onnx(c.model);
  auto spec = data::parse_spec(c.data + "@64");
  auto ds = data::open_dataset(spec);
  data::Loader loader(*ds, spec, c.pre, 64);
  at::Tensor x = loader.batch(0).images.contiguous();
  at::Tensor ours = exec::Executor(g).forward(x).contiguous();

  auto dir = test::temp_dir("ort");
  std::string in = dir / "in.f32", out = dir / "out.f32";
  std::ofstream(in, std::ios::binary).write(static_cast<const char*>(x.data_ptr()), x.nbytes());
  std::string shape = fmt::format("{}", fmt::join(x.sizes(), ","));
  auto r = test::run_command(
      fmt::format("node {}/ort.js run {} {} {} {}", ort, c.model, in, shape, out));
  ASSERT_EQ(r.status, 0) << r.output;
  at::Tensor theirs = at::empty_like(ours);
  std::ifstream(out, std::ios::binary).read(static_cast<char*>(theirs.data_ptr()), theirs.nbytes());
  double max_abs = (ours - theirs).abs().max().item<double>();
  EXPECT_LE(max_abs, 1e-4) << c.model;
  EXPECT_TRUE(at::equal(ours.argmax(1), theirs.argmax(1)));
  std::printf("%s: max |mpq - onnxruntime| = %.2e over 64x%lld logits\n", c.model.c_str(), max_abs,
              static_cast<long long>(ours.size(1)));
}

TEST(RealModels, LogitsAgreeWithOnnxRuntime) {
  MPQ_REQUIRE_SHARED_DATA();
  for (const char* m : {"resnet20", "resnet20_bnfolded", "resnet56"})
    expect_logits_agree(cifar(data_dir, m, "test_1017"));
  expect_logits_agree(mobilenet(data_dir));
}

}  // namespace
}  // namespace mpq
