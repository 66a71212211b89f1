#include "mpq/quant/quantizer.h"

#include <algorithm>
#include <cmath>

#include "mpq/core/error.h"

namespace mpq::quant {
at::Tensor along(const at::Tensor& scale, int64_t axis, int64_t dim) {
  std::vector<int64_t> shape(static_cast<size_t>(dim), 1);
  shape[static_cast<size_t>(axis)] = scale.numel();
  return scale.reshape(shape);
}

const char* name(WeightGrid grid) { return grid == WeightGrid::kFull ? "full" : "restricted"; }

IntRange weight_range(int bits, WeightGrid grid) {
  MPQ_CHECK(bits >= 2 && bits <= 8, ErrorCode::kInvalidArgument,
            "weight width {}: quantized widths are 2..8", bits);
  int64_t q = (int64_t{1} << (bits - 1)) - 1;
  return {grid == WeightGrid::kFull ? -q - 1 : -q, q};
}

IntRange activation_range(int bits) {
  MPQ_CHECK(bits >= 2 && bits <= 8, ErrorCode::kInvalidArgument,
            "activation width {}: quantized widths are 2..8", bits);
  return {0, (int64_t{1} << bits) - 1};
}

Encoding activation_encoding(double lo, double hi, int bits) {
  IntRange r = activation_range(bits);
  lo = std::min(lo, 0.0);
  hi = std::max(hi, 0.0);
  if (hi - lo < 1e-8) hi = lo + 1e-8;
  Encoding e;
  e.bits = bits;
  e.is_unsigned = lo >= 0;
  e.scale = (hi - lo) / static_cast<double>(r.qmax - r.qmin);
  // float32 scale, as the exported model and ATen's fake quantizer hold it.
  e.scale = static_cast<double>(static_cast<float>(e.scale));
  e.zero_point = std::clamp<int64_t>(std::llround(-lo / e.scale), r.qmin, r.qmax);
  e.min = e.scale * static_cast<double>(r.qmin - e.zero_point);
  e.max = e.scale * static_cast<double>(r.qmax - e.zero_point);
  return e;
}

int weight_axis(const std::string& op, bool trans_b) {
  if (op == "Conv") return 0;
  if (op == "Gemm") return trans_b ? 0 : 1;
  return 1;  // MatMul: [K, N]
}

at::Tensor weight_scales(const at::Tensor& weight, int64_t axis, int bits, WeightGrid grid,
                         bool mse) {
  IntRange r = weight_range(bits, grid);
  const double qmin = static_cast<double>(r.qmin), qmax = static_cast<double>(r.qmax);
  at::Tensor w = weight.detach().to(at::kFloat).transpose(0, axis).reshape({weight.size(axis), -1});
  at::Tensor maxabs = w.abs().amax(1, /*keepdim=*/true).clamp_min(1e-8);
  if (!mse)  // the smallest scale that holds the channel: the positive end on qmax, the negative
             // end on qmin
    return at::maximum(w.amax(1, /*keepdim=*/true) / qmax, w.amin(1, /*keepdim=*/true) / qmin)
        .clamp_min(1e-8 / qmax)
        .reshape({-1});
  // α·max|w|/qmax for both grids: the full grid's candidates are then the restricted grid's
  // with one more level each, never worse, and include (to 1 %) the scale that holds the channel.
  at::Tensor best_scale = maxabs / qmax;
  at::Tensor best_err = at::full({w.size(0), 1}, INFINITY, w.options());
  for (int step = 100; step >= 10; --step) {
    at::Tensor s = maxabs * (step / 100.0 / qmax);
    at::Tensor q = (w * s.reciprocal()).round_().clamp_(qmin, qmax);
    at::Tensor err = (q.mul_(s).sub_(w)).abs_().pow_(2.4).sum(1, /*keepdim=*/true);
    at::Tensor better = err < best_err;
    best_err = at::where(better, err, best_err);
    best_scale = at::where(better, s, best_scale);
  }
  return best_scale.reshape({-1});
}

at::Tensor quantize_weight(const at::Tensor& weight, const at::Tensor& scale, int64_t axis,
                           IntRange r) {
  at::Tensor inv = along(scale.to(at::kFloat).reciprocal(), axis, weight.dim());
  return (weight.detach().to(at::kFloat) * inv).round_().clamp_(r.qmin, r.qmax).to(at::kChar);
}

at::Tensor dequantize_weight(const at::Tensor& q, const at::Tensor& scale, int64_t axis) {
  return q.to(at::kFloat) * along(scale.to(at::kFloat), axis, q.dim());
}

}  // namespace mpq::quant
