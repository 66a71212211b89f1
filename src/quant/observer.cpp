#include "mpq/quant/observer.h"

#include <ATen/CPUGeneratorImpl.h>

#include "mpq/quant/quantizer.h"

namespace mpq::quant {

void ActivationStats::observe(const at::Tensor& x, uint64_t seed, int64_t take) {
  at::Tensor flat = x.detach().reshape({-1}).to(at::kFloat);
  if (flat.numel() == 0) return;
  double lo = flat.min().item<double>(), hi = flat.max().item<double>();
  min = count ? std::min(min, lo) : lo;
  max = count ? std::max(max, hi) : hi;
  count += flat.numel();
  take = std::min<int64_t>(flat.numel(), std::max<int64_t>(take, 1));
  at::Tensor part = flat;
  if (take < flat.numel()) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    part = flat.index_select(0, at::randint(flat.numel(), {take}, gen, at::kLong));
  } else {
    part = flat.clone();
  }
  sample = sample.defined() ? at::cat({sample, part}) : part;
  if (sample.numel() > kSampleSize) {  // more batches than announced: thin at random
    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed + 1);
    sample = sample.index_select(
        0, at::randperm(sample.numel(), gen, at::kLong).slice(0, 0, kSampleSize));
  }
}

double quantization_error(const at::Tensor& x, double lo, double hi, int bits) {
  Encoding e = activation_encoding(lo, hi, bits);
  IntRange r = activation_range(bits);
  at::Tensor q = at::fake_quantize_per_tensor_affine(x, e.scale, e.zero_point, r.qmin, r.qmax);
  return (q - x).square().sum().item<double>();
}

std::unique_ptr<Observer> make_observer(const std::string& name) {
  return Registry<Observer>::create(name, "observer");
}

}  // namespace mpq::quant
