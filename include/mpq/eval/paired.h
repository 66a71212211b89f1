// Paired comparison of two models on the same images: per-image predictions, the difference in
// top-1 and its bootstrap confidence interval. Two plans compared on one test set share most of
// their errors, so the paired interval is far tighter than either model's own ±.
#pragma once

#include <ATen/ATen.h>

#include <nlohmann/json.hpp>
#include <string>

namespace mpq::eval {

// What one model predicted on each image of a data set, in loader order.
struct Predictions {
  std::string model, data;  // where they came from (for messages)
  at::Tensor labels;        // int64 [images]
  at::Tensor predicted;     // int64 [images], top-1 class
  at::Tensor correct() const { return predicted.eq(labels); }
};

nlohmann::json to_json(const Predictions& p);
// `source` names the file in messages.
Predictions predictions_from_json(const nlohmann::json& j, const std::string& source);
void save_predictions(const Predictions& p, const std::string& path);
Predictions load_predictions(const std::string& path);

// Fails with one line unless `a` and `b` are predictions on the same images in the same order
// (same count, same label at every position).
void check_same_images(const Predictions& a, const Predictions& b);

struct PairedDifference {
  int64_t images = 0;
  double top1_a = 0, top1_b = 0;   // percent
  double difference = 0;           // top1_a − top1_b, points
  double lo = 0, hi = 0;           // 95 % bootstrap interval of the difference (percentile)
  int64_t a_only = 0, b_only = 0;  // images only a (only b) gets right
  int resamples = 0;
  // "above zero" / "below zero" / "inside the noise (the interval contains zero)".
  std::string verdict() const;
};

// The paired bootstrap of top1(a) − top1(b): resample the images with replacement `resamples`
// times (seeded) and take the 2.5 and 97.5 percentiles. Both are bool or 0/1 tensors [images].
PairedDifference paired_bootstrap(const at::Tensor& correct_a, const at::Tensor& correct_b,
                                  int resamples = 10000, uint64_t seed = 0);
PairedDifference compare(const Predictions& a, const Predictions& b, int resamples = 10000,
                         uint64_t seed = 0);

nlohmann::json to_json(const PairedDifference& d);

}  // namespace mpq::eval
