// mpq::FakeQuantize: quantize-dequantize in float with straight-through gradients, the node
// QuantSim inserts. Inputs: x, scale (float [C] or [1]), zero_point (int32, same shape).
// Attributes: qmin, qmax, axis (-1: per tensor), drop (QDrop, default 0), clip_min/clip_max (a
// ReLU/Clip in front, folded in by the reconstruction's training graphs). Scale and zero point
// are read at every run, so calibration and learned step sizes change them in the Graph without
// re-preparing.
//
// Under autograd (reconstruction), a per-tensor quantizer runs TrainFakeQuantize: one fused
// parallel pass forward and one backward. Its scale, when it requires grad, is learned LSQ-style
// (Esser et al. 2020), gradient scale g = 1/sqrt(numel·qmax). With drop = p > 0 each element
// keeps its unquantized value with probability p (QDrop, Wei et al. 2022); inference never drops.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cmath>
#include <limits>
#include <mutex>

#include "mpq/exec/op.h"

namespace mpq::exec {
namespace {

// QDrop's mask without storing it: element i is dropped (kept in float) when a 32-bit hash of
// (seed, i) falls below p·2^32, so the backward pass recomputes the forward's mask, and both
// run in parallel over any range of elements. (lowbias32, C. Wellons: full avalanche.)
inline uint32_t mix32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  x ^= x >> 16;
  return x;
}

struct DropMask {
  uint32_t seed = 0, threshold = 0;  // threshold 0: nothing dropped
  bool dropped(int64_t i) const {
    return mix32(static_cast<uint32_t>(i) * 0x9e3779b9U ^ seed) < threshold;
  }
};

// The tensors of one call in one memory layout: x's (any dense layout, e.g. channels-last).
at::Tensor dense(const at::Tensor& t) {
  return t.is_non_overlapping_and_dense() ? t : t.contiguous();
}
at::Tensor like(const at::Tensor& t, const at::Tensor& layout) {
  return t.strides() == layout.strides() ? t : at::empty_like(layout).copy_(t);
}

constexpr int64_t kGrain = 1 << 15;

// Round half to even without a library call, so the loops below vectorize: exact for
// |v| < 2^22, and beyond that within 1 of v, which the grid's clamp absorbs.
inline float round_even(float v) {
  constexpr float kMagic = 12582912.0f;  // 1.5·2^23
  return (v + kMagic) - kMagic;
}

struct Grid {
  float s, inv, z, lo, hi;
  float clip_lo, clip_hi;  // a ReLU/Clip folded in front (infinite: none)
};

// y = fake-quantized x, or x where QDrop keeps it.
template <bool kDrop>
void fake_quantize_range(const float* x, float* y, int64_t begin, int64_t end, Grid g,
                         DropMask mask) {
  for (int64_t i = begin; i < end; ++i) {
    float c = std::min(std::max(x[i], g.clip_lo), g.clip_hi);
    float q = std::min(std::max(round_even(c * g.inv) + g.z, g.lo), g.hi);
    y[i] = (q - g.z) * g.s;
  }
  if (kDrop) {
#pragma omp simd
    for (int64_t i = begin; i < end; ++i)
      y[i] = mask.dropped(i) ? std::min(std::max(x[i], g.clip_lo), g.clip_hi) : y[i];
  }
}

// dx (straight-through inside the grid, identity where dropped) and Σ ∂y/∂s·dy (LSQ).
template <bool kDrop>
double fake_quantize_backward_range(const float* x, const float* dy, float* dx, int64_t begin,
                                    int64_t end, Grid g, DropMask mask) {
  double total = 0;
  constexpr int64_t kPiece = 4096;  // float partial sums over short runs, summed in double
  for (int64_t p = begin; p < end; p += kPiece) {
    float sum = 0;
    const int64_t e = std::min(p + kPiece, end);
#pragma omp simd reduction(+ : sum)
    for (int64_t i = p; i < e; ++i) {
      bool clipped = (x[i] < g.clip_lo) | (x[i] > g.clip_hi);
      float c = std::min(std::max(x[i], g.clip_lo), g.clip_hi);
      float v = c * g.inv, r = round_even(v) + g.z;
      float q = std::min(std::max(r, g.lo), g.hi);
      bool inside = (r >= g.lo) & (r <= g.hi);
      bool dropped = kDrop ? mask.dropped(i) : false;
      dx[i] = ((inside | dropped) & !clipped) ? dy[i] : 0.0f;
      float ds = dy[i] * (inside ? q - g.z - v : q - g.z);
      sum += dropped ? 0.0f : ds;
    }
    total += sum;
  }
  return total;
}

// Fake quantization per tensor for training: straight-through gradient for x inside the grid,
// LSQ gradient for the scale, QDrop.
class TrainFakeQuantize : public torch::autograd::Function<TrainFakeQuantize> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x_in,
                            const at::Tensor& scale, int64_t zero, int64_t qmin, int64_t qmax,
                            double drop, double clip_min, double clip_max) {
    at::Tensor x = dense(x_in.to(at::kFloat));
    DropMask mask;
    if (drop > 0) {
      at::CPUGeneratorImpl* gen =
          at::check_generator<at::CPUGeneratorImpl>(at::detail::getDefaultCPUGenerator());
      std::lock_guard<std::mutex> lock(gen->mutex_);
      mask.seed = gen->random();
      mask.threshold = static_cast<uint32_t>(std::min(drop, 1.0) * 4294967295.0);
    }
    const float s = scale.item<float>();
    Grid grid{s,
              1.0f / s,
              static_cast<float>(zero),
              static_cast<float>(qmin),
              static_cast<float>(qmax),
              static_cast<float>(clip_min),
              static_cast<float>(clip_max)};
    at::Tensor y = at::empty_like(x);
    const float* xp = x.data_ptr<float>();
    float* yp = y.data_ptr<float>();
    at::parallel_for(0, x.numel(), kGrain, [&](int64_t begin, int64_t end) {
      if (mask.threshold)
        fake_quantize_range<true>(xp, yp, begin, end, grid, mask);
      else
        fake_quantize_range<false>(xp, yp, begin, end, grid, mask);
    });
    // The scale is read as a number (it may be an inference-mode tensor from calibration).
    ctx->save_for_backward({x.is_inference() ? x.clone() : x});
    ctx->saved_data["scale"] = static_cast<double>(s);
    ctx->saved_data["scale_sizes"] = scale.sizes().vec();
    ctx->saved_data["zero"] = zero;
    ctx->saved_data["clip_min"] = clip_min;
    ctx->saved_data["clip_max"] = clip_max;
    ctx->saved_data["qmin"] = qmin;
    ctx->saved_data["qmax"] = qmax;
    ctx->saved_data["seed"] = static_cast<int64_t>(mask.seed);
    ctx->saved_data["threshold"] = static_cast<int64_t>(mask.threshold);
    return y;
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor& x = saved[0];
    at::Tensor g = like(grads[0].to(at::kFloat), x);
    DropMask mask{static_cast<uint32_t>(ctx->saved_data["seed"].toInt()),
                  static_cast<uint32_t>(ctx->saved_data["threshold"].toInt())};
    const int64_t qmax = ctx->saved_data["qmax"].toInt();
    const auto s = static_cast<float>(ctx->saved_data["scale"].toDouble());
    Grid grid{s,
              1.0f / s,
              static_cast<float>(ctx->saved_data["zero"].toInt()),
              static_cast<float>(ctx->saved_data["qmin"].toInt()),
              static_cast<float>(qmax),
              static_cast<float>(ctx->saved_data["clip_min"].toDouble()),
              static_cast<float>(ctx->saved_data["clip_max"].toDouble())};
    at::Tensor dx = at::empty_like(x);
    const float *xp = x.data_ptr<float>(), *gp = g.data_ptr<float>();
    float* dp = dx.data_ptr<float>();
    double dscale_sum = 0;
    std::mutex sum_mutex;
    at::parallel_for(0, x.numel(), kGrain, [&](int64_t begin, int64_t end) {
      double ds = mask.threshold
                      ? fake_quantize_backward_range<true>(xp, gp, dp, begin, end, grid, mask)
                      : fake_quantize_backward_range<false>(xp, gp, dp, begin, end, grid, mask);
      std::lock_guard<std::mutex> lock(sum_mutex);
      dscale_sum += ds;
    });
    at::Tensor dscale;
    if (ctx->needs_input_grad(1)) {
      double factor = 1.0 / std::sqrt(static_cast<double>(x.numel()) *
                                      static_cast<double>(std::max<int64_t>(qmax, 1)));
      dscale =
          at::full(ctx->saved_data["scale_sizes"].toIntVector(), dscale_sum * factor, x.options());
    }
    return {dx,           dscale,       at::Tensor(), at::Tensor(),
            at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

class FakeQuantize : public OpDef {
 public:
  Kernel prepare(const PrepareContext& ctx) const override {
    int64_t qmin = ctx.node.attr_int("qmin", 0);
    int64_t qmax = ctx.node.attr_int("qmax", 255);
    int64_t axis = ctx.node.attr_int("axis", -1);
    double drop = ctx.node.attr_float("drop", 0.0);
    // A ReLU/Clip folded in front by the reconstruction's training graphs.
    double clip_min = ctx.node.attr_float("clip_min", -std::numeric_limits<double>::infinity());
    double clip_max = ctx.node.attr_float("clip_max", std::numeric_limits<double>::infinity());
    bool clips = std::isfinite(clip_min) || std::isfinite(clip_max);
    if (axis >= 0) {
      return [=](const Tensors& in, Tensors& out) {
        at::Tensor x = clips ? in[0].clamp(clip_min, clip_max) : in[0];
        out[0] = at::fake_quantize_per_channel_affine(x, in[1], in[2], axis, qmin, qmax);
      };
    }
    return [=](const Tensors& in, Tensors& out) {
      bool grad = at::GradMode::is_enabled() && (in[0].requires_grad() || in[1].requires_grad());
      if (grad) {
        out[0] = TrainFakeQuantize::apply(in[0], in[1], in[2].item<int64_t>(), qmin, qmax, drop,
                                          clip_min, clip_max);
        return;
      }
      // Inference: x / s (as ONNX Runtime divides; ATen multiplies by 1/s), round half to even,
      // + z, clamp, − z, ·s) in place, about twice as fast, keeping the memory format.
      float scale = in[1].item<float>();
      int64_t zero = in[2].item<int64_t>();
      at::Tensor y = reusable(in[0]) ? in[0] : in[0].clone();
      if (clips) y.clamp_(clip_min, clip_max);
      y.div_(scale).round_();
      if (zero != 0) y.add_(zero);
      y.clamp_(qmin, qmax);
      if (zero != 0) y.sub_(zero);
      out[0] = y.mul_(scale);
    };
  }
};

MPQ_REGISTER(OpDef, "mpq::FakeQuantize", FakeQuantize);

}  // namespace
}  // namespace mpq::exec
