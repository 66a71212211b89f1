// Paired comparison: the multinomial bootstrap matches resampling image indices, the interval
// has the width the normal approximation predicts, and prediction files that do not describe the
// same images are rejected in one line.
#include "mpq/eval/paired.h"

#include <cmath>

#include "mpq/core/error.h"
#include "test_util.h"

namespace mpq::eval {
namespace {

using test::error_of;

// `n` images: the first `both` right in both, then `a_only` right only in A, `b_only` only in B.
std::pair<at::Tensor, at::Tensor> outcomes(int64_t n, int64_t both, int64_t a_only,
                                           int64_t b_only) {
  at::Tensor a = at::zeros({n}, at::kBool), b = at::zeros({n}, at::kBool);
  a.narrow(0, 0, both + a_only).fill_(true);
  b.narrow(0, 0, both).fill_(true);
  b.narrow(0, both + a_only, b_only).fill_(true);
  // Shuffle, so nothing depends on the order.
  at::manual_seed(3);
  at::Tensor perm = at::randperm(n);
  return {a.index_select(0, perm), b.index_select(0, perm)};
}

double quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(std::lround(q * static_cast<double>(v.size() - 1)))];
}

TEST(PairedBootstrap, CountsAndDifference) {
  auto [a, b] = outcomes(1000, 700, 60, 20);
  PairedDifference d = paired_bootstrap(a, b, 2000, 1);
  EXPECT_EQ(d.images, 1000);
  EXPECT_EQ(d.a_only, 60);
  EXPECT_EQ(d.b_only, 20);
  EXPECT_DOUBLE_EQ(d.top1_a, 76.0);
  EXPECT_DOUBLE_EQ(d.top1_b, 72.0);
  EXPECT_DOUBLE_EQ(d.difference, 4.0);
  EXPECT_LT(d.lo, d.difference);
  EXPECT_GT(d.hi, d.difference);
  EXPECT_EQ(d.verdict(), "above zero");
  // The reverse comparison mirrors it.
  PairedDifference r = paired_bootstrap(b, a, 2000, 1);
  EXPECT_DOUBLE_EQ(r.difference, -4.0);
  EXPECT_EQ(r.verdict(), "below zero");
}

TEST(PairedBootstrap, IntervalMatchesIndexResamplingAndTheNormalApproximation) {
  auto [a, b] = outcomes(2000, 1500, 50, 35);
  PairedDifference d = paired_bootstrap(a, b, 20000, 7);
  // The textbook bootstrap: draw image indices with replacement.
  at::manual_seed(11);
  at::Tensor diff = a.to(at::kDouble) - b.to(at::kDouble);
  std::vector<double> means;
  for (int r = 0; r < 4000; ++r)
    means.push_back(100.0 * diff.index_select(0, at::randint(2000, {2000})).mean().item<double>());
  EXPECT_NEAR(d.lo, quantile(means, 0.025), 0.12);
  EXPECT_NEAR(d.hi, quantile(means, 0.975), 0.12);
  // Normal approximation: sd of the mean paired difference.
  double pp = 50 / 2000.0, pm = 35 / 2000.0, mean = pp - pm;
  double sd = 100.0 * std::sqrt((pp + pm - mean * mean) / 2000.0);
  EXPECT_NEAR(d.lo, d.difference - 1.96 * sd, 0.12);
  EXPECT_NEAR(d.hi, d.difference + 1.96 * sd, 0.12);
  EXPECT_EQ(d.verdict(), "inside the noise");  // +0.75 ± 0.9: the interval holds zero
}

TEST(PairedBootstrap, IdenticalModelsHaveAZeroInterval) {
  auto [a, b] = outcomes(500, 300, 0, 0);
  PairedDifference d = paired_bootstrap(a, b);
  EXPECT_EQ(d.difference, 0.0);
  EXPECT_EQ(d.lo, 0.0);
  EXPECT_EQ(d.hi, 0.0);
  EXPECT_EQ(d.verdict(), "inside the noise");
}

TEST(PairedBootstrap, SeededAndReproducible) {
  auto [a, b] = outcomes(1000, 600, 40, 25);
  PairedDifference x = paired_bootstrap(a, b, 3000, 5), y = paired_bootstrap(a, b, 3000, 5);
  EXPECT_EQ(x.lo, y.lo);
  EXPECT_EQ(x.hi, y.hi);
}

TEST(PairedBootstrap, RejectsUnpairedInput) {
  EXPECT_NE(error_of([] {
              paired_bootstrap(at::ones({10}), at::ones({11}));
            }).find("same, non-empty set of images"),
            std::string::npos);
  EXPECT_NE(
      error_of([] { paired_bootstrap(at::ones({10}), at::ones({10}), 10); }).find("at least 100"),
      std::string::npos);
}

Predictions preds(const std::string& model, std::vector<int64_t> labels,
                  std::vector<int64_t> predicted) {
  return {model, "cifar10:test.bin", at::tensor(labels, at::kLong),
          at::tensor(predicted, at::kLong)};
}

TEST(Predictions, RoundTripThroughAFile) {
  auto dir = test::temp_dir("predictions");
  std::string path = (dir / "p.json").string();
  Predictions p = preds("m.onnx W4A8", {1, 2, 3, 0}, {1, 2, 0, 0});
  save_predictions(p, path);
  Predictions q = load_predictions(path);
  EXPECT_EQ(q.model, "m.onnx W4A8");
  EXPECT_EQ(q.data, "cifar10:test.bin");
  EXPECT_TRUE(q.labels.equal(p.labels));
  EXPECT_TRUE(q.predicted.equal(p.predicted));
  EXPECT_EQ(q.correct().sum().item<int64_t>(), 3);
  std::filesystem::remove_all(dir);
}

TEST(Predictions, MismatchedDataIsAOneLineError) {
  Predictions a = preds("a", {1, 2, 3}, {1, 2, 3});
  Predictions shorter = preds("b", {1, 2}, {1, 2});
  Predictions reordered = preds("c", {1, 3, 2}, {1, 3, 2});
  std::string e = error_of([&] { compare(a, shorter); });
  EXPECT_NE(e.find("(3 images)"), std::string::npos) << e;
  EXPECT_NE(e.find("(2 images)"), std::string::npos) << e;
  e = error_of([&] { compare(a, reordered); });
  EXPECT_NE(e.find("image 1 has label 2 in one and 3 in the other"), std::string::npos) << e;
  EXPECT_NE(e.find("same order"), std::string::npos) << e;
}

TEST(Predictions, MalformedFilesAreOneLineErrors) {
  using nlohmann::json;
  auto bad = [](const json& j) { return error_of([&] { predictions_from_json(j, "p.json"); }); };
  EXPECT_NE(bad(json::array()).find("not a predictions file"), std::string::npos);
  EXPECT_NE(bad(json{{"labels", {1}}}).find("no \"predicted\" array"), std::string::npos);
  EXPECT_NE(bad(json{{"labels", {1, 2}}, {"predicted", {1}}}).find("2 labels but 1 predictions"),
            std::string::npos);
  EXPECT_NE(bad(json{{"labels", {1e300}}, {"predicted", {1}}}).find("\"labels\"[0]"),
            std::string::npos);
  EXPECT_NE(bad(json{{"labels", {-1}}, {"predicted", {1}}}).find("class index"), std::string::npos);
  EXPECT_NE(bad(json{{"labels", json::array()}, {"predicted", json::array()}}).find("no images"),
            std::string::npos);
}

}  // namespace
}  // namespace mpq::eval
