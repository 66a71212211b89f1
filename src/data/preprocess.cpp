#include "mpq/core/error.h"
#include "mpq/data/dataset.h"

namespace mpq::data {

Preprocess default_preprocess(const std::string& kind) {
  const std::vector<double> imagenet_mean{0.485, 0.456, 0.406}, imagenet_std{0.229, 0.224, 0.225};
  if (kind == "cifar10") return Preprocess{0, 0, imagenet_mean, imagenet_std};
  if (kind == "idx") return Preprocess{0, 0, {0.2860}, {0.3530}};
  return Preprocess{256, 224, imagenet_mean, imagenet_std};
}

at::Tensor resize_and_crop(const at::Tensor& image, const Preprocess& p) {
  at::Tensor x = image;
  int64_t h = x.size(1), w = x.size(2);
  if (p.resize > 0 && std::min(h, w) != p.resize) {
    // torchvision's Resize(int): the short side becomes `resize`, the long side is scaled and
    // truncated. PIL's bilinear filter is antialiased when shrinking; its output is 8-bit.
    int64_t oh = h <= w ? p.resize : p.resize * h / w;
    int64_t ow = h <= w ? p.resize * w / h : p.resize;
    at::Tensor f = x.to(at::kFloat).unsqueeze(0);
    f = at::_upsample_bilinear2d_aa(f, {oh, ow}, false);
    x = f.squeeze(0).round_().clamp_(0, 255).to(at::kByte);
    h = oh;
    w = ow;
  }
  if (p.crop > 0) {
    MPQ_CHECK(h >= p.crop && w >= p.crop, ErrorCode::kInvalidArgument,
              "--crop {} is larger than the {}x{} image; give --resize >= {}", p.crop, h, w,
              p.crop);
    int64_t top = static_cast<int64_t>(std::round((h - p.crop) / 2.0));
    int64_t left = static_cast<int64_t>(std::round((w - p.crop) / 2.0));
    x = x.slice(1, top, top + p.crop).slice(2, left, left + p.crop);
  }
  return x.contiguous();
}

}  // namespace mpq::data
