// Integer grids and encodings (DESIGN.md section 3).
//
// Weights: per output channel, symmetric, signed, q in [-(2^(b-1)-1), 2^(b-1)-1], zero point 0
// (so 2-bit weights have the three levels -1, 0, 1). Activations: per tensor, q in [0, 2^b-1]
// with a zero point (0 when the tensor is non-negative). real = scale · (q − zero_point).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

namespace mpq::quant {

struct IntRange {
  int64_t qmin = 0, qmax = 0;
};

IntRange weight_range(int bits);      // [-(2^(b-1)-1), 2^(b-1)-1]
IntRange activation_range(int bits);  // [0, 2^b-1]

// A per-tensor activation encoding.
struct Encoding {
  int bits = 8;
  double scale = 1.0;
  int64_t zero_point = 0;
  double min = 0, max = 0;  // the real range the grid covers: scale·(qmin − zp), scale·(qmax − zp)
  bool is_unsigned = true;  // the tensor was non-negative in calibration (zero point 0)
};

// The encoding of [lo, hi] at `bits` (the range is widened to include 0; zero point rounded).
Encoding activation_encoding(double lo, double hi, int bits);

// Output-channel axis of a layer's weight: 0 for Conv and Gemm(transB=1), 1 for Gemm(transB=0)
// and MatMul.
int weight_axis(const std::string& op, bool trans_b);

// Per-channel scales of `weight` (`axis` = output channels) for `bits`: max |w| per channel,
// or (`mse`) the clipping α·max|w|, α = 1.00, 0.99, ..., 0.10, that minimises Σ|Q(w) − w|^2.4 per
// channel. The exponent 2.4 (BRECQ's and QDrop's choice) punishes clipping the few large
// weights harder than the squared error does; on resnet20 at W4 it gives 89.6% vs 89.0% top-1.
at::Tensor weight_scales(const at::Tensor& weight, int64_t axis, int bits, bool mse);

// `scale` [C] shaped to broadcast along `axis` of a tensor of rank `dim`.
at::Tensor along(const at::Tensor& scale, int64_t axis, int64_t dim);

// Round-to-nearest integers of `weight` on the grid of `scale` (per channel along `axis`).
at::Tensor quantize_weight(const at::Tensor& weight, const at::Tensor& scale, int64_t axis,
                           int bits);
// scale · q per channel: the float value the grid point stands for (exact float product, as
// ONNX DequantizeLinear computes it).
at::Tensor dequantize_weight(const at::Tensor& q, const at::Tensor& scale, int64_t axis);

}  // namespace mpq::quant
