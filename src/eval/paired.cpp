#include "mpq/eval/paired.h"

#include <algorithm>
#include <random>

#include "mpq/core/error.h"
#include "mpq/core/file.h"

namespace mpq::eval {

using nlohmann::json;

namespace {

std::vector<int64_t> to_vector(const at::Tensor& t) {
  at::Tensor c = t.to(at::kLong).contiguous();
  return {c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel()};
}

// A json array of class indices [0, 2^31): anything else (a float, 1e300, a string) is an error.
at::Tensor class_array(const json& j, const std::string& key, const std::string& source) {
  MPQ_CHECK(j.contains(key) && j[key].is_array(), ErrorCode::kBadFile,
            "{}: no \"{}\" array: not a predictions file (mpq eval --predictions writes one)",
            source, key);
  const json& a = j[key];
  std::vector<int64_t> v;
  v.reserve(a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    MPQ_CHECK(a[i].is_number_integer() && a[i].get<int64_t>() >= 0 &&
                  a[i].get<int64_t>() < (int64_t{1} << 31),
              ErrorCode::kBadFile, "{}: \"{}\"[{}] = {}: must be a class index >= 0", source, key,
              i, a[i].dump());
    v.push_back(a[i].get<int64_t>());
  }
  return at::tensor(v, at::kLong);
}

}  // namespace

json to_json(const Predictions& p) {
  return json{{"model", p.model},
              {"data", p.data},
              {"images", p.labels.numel()},
              {"top1", p.labels.numel() == 0 ? 0.0
                                             : 100.0 * p.correct().sum().item<double>() /
                                                   static_cast<double>(p.labels.numel())},
              {"labels", to_vector(p.labels)},
              {"predicted", to_vector(p.predicted)}};
}

Predictions predictions_from_json(const json& j, const std::string& source) {
  MPQ_CHECK(j.is_object(), ErrorCode::kBadFile,
            "{}: not a predictions file (a JSON object from mpq eval --predictions)", source);
  Predictions p;
  p.model = j.contains("model") && j["model"].is_string() ? j["model"].get<std::string>() : "";
  p.data = j.contains("data") && j["data"].is_string() ? j["data"].get<std::string>() : "";
  p.labels = class_array(j, "labels", source);
  p.predicted = class_array(j, "predicted", source);
  MPQ_CHECK(p.labels.numel() == p.predicted.numel(), ErrorCode::kBadFile,
            "{}: {} labels but {} predictions: every image needs both", source, p.labels.numel(),
            p.predicted.numel());
  MPQ_CHECK(p.labels.numel() > 0, ErrorCode::kBadFile, "{}: no images", source);
  return p;
}

void save_predictions(const Predictions& p, const std::string& path) {
  write_file_atomic(path, to_json(p).dump() + "\n");
}

Predictions load_predictions(const std::string& path) {
  json j;
  try {
    j = json::parse(read_file(path, "predictions file"));
  } catch (const json::exception& e) {
    fail(ErrorCode::kBadFile, "{}: not valid JSON: {}", path, e.what());
  }
  Predictions p = predictions_from_json(j, path);
  if (p.model.empty()) p.model = path;
  return p;
}

void check_same_images(const Predictions& a, const Predictions& b) {
  MPQ_CHECK(a.labels.numel() == b.labels.numel(), ErrorCode::kInvalidArgument,
            "predictions of {} on {} ({} images) and of {} on {} ({} images): not the same "
            "images, a paired comparison needs both models on one data set",
            a.model, a.data, a.labels.numel(), b.model, b.data, b.labels.numel());
  at::Tensor differ = a.labels.ne(b.labels).nonzero();
  if (differ.numel() == 0) return;
  int64_t i = differ[0][0].item<int64_t>();
  fail(ErrorCode::kInvalidArgument,
       "predictions of {} on {} and of {} on {}: image {} has label {} in one and {} in the other "
       "({} of {} labels differ): not the same images in the same order",
       a.model, a.data, b.model, b.data, i, a.labels[i].item<int64_t>(),
       b.labels[i].item<int64_t>(), differ.size(0), a.labels.numel());
}

std::string PairedDifference::verdict() const {
  if (lo > 0) return "above zero";
  if (hi < 0) return "below zero";
  return "inside the noise";
}

PairedDifference paired_bootstrap(const at::Tensor& correct_a, const at::Tensor& correct_b,
                                  int resamples, uint64_t seed) {
  MPQ_CHECK(correct_a.numel() == correct_b.numel() && correct_a.numel() > 0,
            ErrorCode::kInvalidArgument,
            "paired comparison: {} and {} images: both models must be scored on the same, "
            "non-empty set of images",
            correct_a.numel(), correct_b.numel());
  MPQ_CHECK(resamples >= 100, ErrorCode::kInvalidArgument,
            "paired comparison: {} resamples: use at least 100 (1000 or more for a 95 % interval)",
            resamples);
  at::Tensor a = correct_a.to(at::kBool).reshape(-1), b = correct_b.to(at::kBool).reshape(-1);
  PairedDifference d;
  d.images = a.numel();
  d.resamples = resamples;
  d.a_only = a.logical_and(b.logical_not()).sum().item<int64_t>();
  d.b_only = b.logical_and(a.logical_not()).sum().item<int64_t>();
  double n = static_cast<double>(d.images);
  d.top1_a = 100.0 * a.sum().item<double>() / n;
  d.top1_b = 100.0 * b.sum().item<double>() / n;
  d.difference = 100.0 * static_cast<double>(d.a_only - d.b_only) / n;
  // Each image's paired difference is +1 (only a right), −1 (only b) or 0, so a resample of the
  // images is a multinomial draw of those three counts: the same distribution as drawing image
  // indices, in O(1) per resample.
  std::mt19937_64 rng(seed);
  double p_plus = static_cast<double>(d.a_only) / n;
  double p_minus_rest = d.a_only == d.images ? 0.0
                                             : static_cast<double>(d.b_only) /
                                                   static_cast<double>(d.images - d.a_only);
  std::vector<double> diffs(static_cast<size_t>(resamples));
  for (double& x : diffs) {
    int64_t plus = std::binomial_distribution<int64_t>(d.images, p_plus)(rng);
    int64_t minus = std::binomial_distribution<int64_t>(d.images - plus, p_minus_rest)(rng);
    x = 100.0 * static_cast<double>(plus - minus) / n;
  }
  std::sort(diffs.begin(), diffs.end());
  auto quantile = [&](double q) {
    double pos = q * static_cast<double>(diffs.size() - 1);
    size_t i = static_cast<size_t>(pos);
    double f = pos - static_cast<double>(i);
    return i + 1 < diffs.size() ? diffs[i] * (1 - f) + diffs[i + 1] * f : diffs[i];
  };
  d.lo = quantile(0.025);
  d.hi = quantile(0.975);
  return d;
}

PairedDifference compare(const Predictions& a, const Predictions& b, int resamples, uint64_t seed) {
  check_same_images(a, b);
  return paired_bootstrap(a.correct(), b.correct(), resamples, seed);
}

json to_json(const PairedDifference& d) {
  return json{{"images", d.images},         {"top1_a", d.top1_a},       {"top1_b", d.top1_b},
              {"difference", d.difference}, {"ci95", {d.lo, d.hi}},     {"a_only", d.a_only},
              {"b_only", d.b_only},         {"resamples", d.resamples}, {"verdict", d.verdict()}};
}

}  // namespace mpq::eval
