// Datasets named by a spec string, and batches of preprocessed images in a fixed order.
//
//   cifar10:PATH.bin                  CIFAR-10 binary records (label byte + 3072 pixel bytes)
//   idx:IMAGES.gz,LABELS.gz           IDX files, gzip-compressed or not (MNIST, Fashion-MNIST)
//   imagefolder:DIR[,LABELS.csv]      JPEGs + a CSV with `file,label` (default DIR/labels.csv)
// A suffix picks a subset: `@N` the first N images, `@N:SEED` N images drawn with SEED.
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <string>
#include <vector>

namespace mpq::data {

struct DataSpec {
  std::string kind;  // cifar10, idx, imagefolder
  std::vector<std::string> paths;
  int64_t count = -1;  // -1: all
  int64_t seed = -1;   // -1: the first `count`; otherwise a seeded random subset
  std::string text;    // the spec as given, for messages
};

DataSpec parse_spec(const std::string& spec);

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  virtual int64_t label(int64_t index) const = 0;
  // Image `index` as uint8 [C, H, W], RGB or grey.
  virtual at::Tensor image(int64_t index) const = 0;
  // Where image `index` comes from, for error messages.
  virtual std::string where(int64_t index) const = 0;
  virtual std::string kind() const = 0;
};

std::unique_ptr<Dataset> open_dataset(const DataSpec& spec);

// Preprocessing: pixels to [0,1], resize the short side (bilinear, antialiased like PIL, and
// rounded back to 8-bit as PIL does), centre crop, then (x - mean) / std per channel.
struct Preprocess {
  int64_t resize = 0;  // 0: keep
  int64_t crop = 0;    // 0: keep
  std::vector<double> mean;
  std::vector<double> std;
};

// Defaults per dataset kind (../shared/data/README.md; Fashion-MNIST statistics for idx).
Preprocess default_preprocess(const std::string& kind);
// One image, uint8 [C,H,W] -> float [C,H',W'] (resize and crop; mean/std not applied).
at::Tensor resize_and_crop(const at::Tensor& image, const Preprocess& p);

struct Batch {
  at::Tensor images;  // float [B, C, H, W], normalised
  at::Tensor labels;  // int64 [B]
  int64_t first = 0;  // position of the first image in the loader's order
};

// Batches over the spec's subset in a fixed order; images decoded in parallel.
class Loader {
 public:
  Loader(const Dataset& dataset, const DataSpec& spec, Preprocess preprocess, int64_t batch_size);
  int64_t size() const { return static_cast<int64_t>(order_.size()); }
  int64_t batches() const { return (size() + batch_size_ - 1) / batch_size_; }
  Batch batch(int64_t b) const;
  const std::vector<int64_t>& order() const { return order_; }

 private:
  const Dataset& dataset_;
  Preprocess preprocess_;
  int64_t batch_size_;
  std::vector<int64_t> order_;
};

}  // namespace mpq::data
