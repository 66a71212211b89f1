#include "mpq/data/dataset.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "mpq/core/error.h"
#include "readers.h"

namespace mpq::data {

std::unique_ptr<Dataset> open_dataset(const DataSpec& spec) {
  if (spec.kind == "cifar10") return open_cifar10(spec.paths[0]);
  if (spec.kind == "idx") return open_idx(spec.paths[0], spec.paths[1]);
  return open_image_folder(spec.paths[0], spec.paths.size() > 1 ? spec.paths[1] : "");
}

Loader::Loader(const Dataset& dataset, const DataSpec& spec, Preprocess preprocess,
               int64_t batch_size)
    : dataset_(dataset), preprocess_(std::move(preprocess)), batch_size_(batch_size) {
  MPQ_CHECK(batch_size > 0, ErrorCode::kInvalidArgument, "batch size {} must be positive",
            batch_size);
  int64_t n = dataset.size();
  MPQ_CHECK(spec.count <= n, ErrorCode::kInvalidArgument,
            "data spec '{}': asks for {} images but the data holds {}", spec.text, spec.count, n);
  order_.resize(n);
  std::iota(order_.begin(), order_.end(), 0);
  if (spec.seed >= 0) {
    std::mt19937_64 rng(static_cast<uint64_t>(spec.seed));
    std::shuffle(order_.begin(), order_.end(), rng);
  }
  if (spec.count >= 0) order_.resize(spec.count);
  MPQ_CHECK(!order_.empty(), ErrorCode::kInvalidArgument, "data spec '{}': no images", spec.text);
}

Batch Loader::batch(int64_t b) const {
  int64_t begin = b * batch_size_;
  int64_t end = std::min(size(), begin + batch_size_);
  std::vector<at::Tensor> images(end - begin);
  std::vector<int64_t> labels(end - begin);
  bool needs_resize = preprocess_.resize > 0 || preprocess_.crop > 0;
  at::parallel_for(0, end - begin, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      int64_t index = order_[begin + i];
      at::Tensor img = dataset_.image(index);
      images[i] = needs_resize ? resize_and_crop(img, preprocess_) : img;
      labels[i] = dataset_.label(index);
    }
  });
  for (int64_t i = 1; i < end - begin; ++i)
    MPQ_CHECK(images[i].sizes() == images[0].sizes(), ErrorCode::kShapeMismatch,
              "{}: image is {}, others are {}; give --resize/--crop to make them equal",
              dataset_.where(order_[begin + i]), fmt::join(images[i].sizes(), "x"),
              fmt::join(images[0].sizes(), "x"));
  at::Tensor x = at::stack(images).to(at::kFloat).div_(255.0);
  int64_t c = x.size(1);
  if (!preprocess_.mean.empty()) {
    MPQ_CHECK(preprocess_.mean.size() == static_cast<size_t>(c) &&
                  preprocess_.std.size() == static_cast<size_t>(c),
              ErrorCode::kInvalidArgument,
              "--mean/--std give {}/{} values but the images have {} channel(s)",
              preprocess_.mean.size(), preprocess_.std.size(), c);
    at::Tensor mean =
        at::tensor(preprocess_.mean, at::kDouble).to(at::kFloat).reshape({1, c, 1, 1});
    at::Tensor std = at::tensor(preprocess_.std, at::kDouble).to(at::kFloat).reshape({1, c, 1, 1});
    x.sub_(mean).div_(std);
  }
  return Batch{x, at::tensor(labels, at::kLong), begin};
}

}  // namespace mpq::data
