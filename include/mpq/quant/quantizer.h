// Integer grids and encodings (DESIGN.md section 3).
//
// Weights: per output channel, signed, zero point 0, on one of two grids:
//   restricted  q in [-(2^(b-1)-1), 2^(b-1)-1]: symmetric (15 levels at 4 bits, 3 at 2 bits)
//   full        q in [-2^(b-1), 2^(b-1)-1]: every code of b bits (16 and 4 levels), as int4
//               hardware and the QDrop/BRECQ reference code use; the extra negative level is
//               used where a channel's negative tail is the longer one.
// Activations: per tensor, q in [0, 2^b-1] with a zero point (0 when the tensor is non-negative).
// real = scale · (q − zero_point).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>

namespace mpq::quant {

struct IntRange {
  int64_t qmin = 0, qmax = 0;
};

enum class WeightGrid { kRestricted, kFull };
// The grid mpq uses unless told otherwise: restricted, because the full grid measured no better
// (README, --weight-grid: resnet20 W4 within the noise, W2A4 -0.59 points).
constexpr WeightGrid kDefaultWeightGrid = WeightGrid::kRestricted;
const char* name(WeightGrid grid);  // "restricted", "full"

IntRange weight_range(int bits, WeightGrid grid);  // see above
IntRange activation_range(int bits);               // [0, 2^b-1]

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

// Per-channel scales of `weight` (`axis` = output channels) for `bits` on `grid`: the smallest
// scale that puts every weight of the channel inside the grid (max w / qmax, min w / qmin), or
// (`mse`) the scale α·max|w|/qmax, α = 1.00, 0.99, ..., 0.10, that minimises Σ|Q(w) − w|^2.4 per
// channel (on the full grid the clamp keeps the extra negative level, so the search never ends
// worse than on the restricted grid). The exponent 2.4 (BRECQ's and QDrop's choice) punishes
// clipping the few large weights harder than the squared error does; on resnet20 at W4 it
// gives 89.6% vs 89.0% top-1.
at::Tensor weight_scales(const at::Tensor& weight, int64_t axis, int bits, WeightGrid grid,
                         bool mse);

// `scale` [C] shaped to broadcast along `axis` of a tensor of rank `dim`.
at::Tensor along(const at::Tensor& scale, int64_t axis, int64_t dim);

// Round-to-nearest integers of `weight` on the grid of `scale` (per channel along `axis`).
at::Tensor quantize_weight(const at::Tensor& weight, const at::Tensor& scale, int64_t axis,
                           IntRange range);
// scale · q per channel: the float value the grid point stands for (exact float product, as
// ONNX DequantizeLinear computes it).
at::Tensor dequantize_weight(const at::Tensor& q, const at::Tensor& scale, int64_t axis);

}  // namespace mpq::quant
