// The lowered program of the integer runtime: tensors, layers and steps (internal).
#pragma once

#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kernels.h"
#include "mpq/runtime/runtime.h"

namespace mpq::runtime {

// Limits a file must respect (the loader says so otherwise): no real CNN comes near them, and a
// crafted file cannot make the runtime allocate without bound.
inline constexpr int kMaxSide = 1 << 16;  // channels, height or width of any map
inline constexpr int kMaxKernel = 16;     // kernel side and stride
inline constexpr int kMaxDwTaps = 64;     // depthwise kernel taps (the AVX-512 kernel's table)

enum class TensorKind { kU8, kI32 };

struct TensorDesc {
  TensorKind kind = TensorKind::kI32;
  int c = 0, h = 1, w = 1;
  int cp = 0;      // stored channels (uint8: a multiple of 4, the extra ones hold zp)
  int border = 0;  // uint8: zp-filled pixels around the map, for the next conv's padding
  // uint8: real = scale·(q − zp), q in [lo, hi]. int32: real = scale·r.
  double scale = 1;
  int32_t zp = 0;
  int lo = 0, hi = 255;
  int hp() const { return h + 2 * border; }
  int wp() const { return w + 2 * border; }
  int64_t elements() const { return static_cast<int64_t>(hp()) * wp() * cp; }  // per image
};

// A Rescale (fixed-point multiplier and shift) for multiplier·r + offset, rounded; false
// when the multiplier is 2^31 or more.
bool make_dyadic(double multiplier, double offset, Rescale* out);

enum class ConvKind { kConv, kDwconv, kFc, kGrouped };  // kGrouped: the reference kernel

struct ConvLayer {
  ConvKind kind = ConvKind::kConv;
  int ic = 0, oc = 0, kh = 1, kw = 1, stride = 1;
  int pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  int oh = 1, ow = 1;
  int bits = 8, a_bits = 8;
  int groups = 1;  // kGrouped: ic and oc are per group
  double in_scale = 1;
  int32_t in_zp = 0;
  std::vector<double> w_scale, bias;
  double out_bound = 0;  // the largest |real output| any input can give (every channel)
  // Runtime layout (kernels.h): conv/fc in 16-channel blocks of 64-value groups; depthwise
  // [tap][c rounded up to 64]. Bit-packed at `bits`, kWeightTail spare bytes at the end.
  std::vector<uint8_t> packed;
  int icp = 0;    // input channels as stored (conv K = kh·kw·icp)
  int w_max = 0;  // the largest |weight| as stored
  // Per output channel, padded to a multiple of 64 channels with zeros.
  std::vector<int32_t> zpcorr, mult, shift;
  std::vector<int64_t> add;
  std::vector<float> out_scale, out_bias;  // kRaw output to float: raw·scale + bias
  int64_t macs() const {
    return static_cast<int64_t>(oh) * ow * oc * kh * kw * (kind == ConvKind::kDwconv ? 1 : ic);
    // (kGrouped: ic is the input channels of one group)
  }
};
// Fills L.packed, L.icp and L.zpcorr from q ([oc][ic][kh][kw] int8 values).
void pack_layer(ConvLayer& L, const std::vector<int8_t>& q);

enum class StepOp {
  kQuantizeInput,  // float NCHW graph input -> uint8
  kRequantize,     // int32 real -> uint8
  kConv,           // conv, dwconv or fc: uint8 -> uint8 (fused) or int32
  kClip,           // int32 -> int32
  kAdd,            // int32 + int32 -> int32
  kGap,            // int32 -> int32, 1x1
  kSlice,          // int32 -> int32
  kPad,            // int32 -> int32 (zeros)
  kMaxPool,        // int32 -> int32 (padding never wins)
  kAvgPool,        // int32 -> int32 (windows of one size)
  kAffine,         // int32 -> int32, per channel: scale·x + shift (inference BatchNormalization)
  kConcat,         // int32, ... -> int32 along channels (in0, then `more`)
  kShuffle,        // int32 -> int32, output channel k = input channel channel_map[k]
  kMul,            // int32 · int32 -> int32 (in1 may be 1x1: one factor per channel)
  kUnary,          // int32 -> int32 through a function of the real value (`unary`)
};

// The functions of kUnary, computed in double on the real value the int32 tensor holds: the
// QCDQ graph computes them in float on the convolution's real output (no quantizer before
// them), and so does the runtime. (HardSwish is opset 14; mpq's opset-13 export writes it as
// x · HardSigmoid(x).)
enum class UnaryOp { kSigmoid, kHardSigmoid };

struct Step {
  StepOp op = StepOp::kClip;
  std::string name;
  int in0 = -1, in1 = -1, out = -1;
  std::shared_ptr<ConvLayer> conv;
  // Output clamp in real units (kClip, and a Relu/Clip fused into kConv (int32) or kAdd), and
  // in output units.
  double lo = -HUGE_VAL, hi = HUGE_VAL;
  int32_t ilo = INT32_MIN, ihi = INT32_MAX;
  Rescale rq0, rq1;  // rescale of in0 / in1 to the output's scale
  int slice_begin[3] = {0, 0, 0}, slice_step[3] = {1, 1, 1};
  int pad_before[3] = {0, 0, 0}, pad_after[3] = {0, 0, 0};
  int pool_kernel[2] = {1, 1}, pool_stride[2] = {1, 1};  // pooling (pads: pad_before/after[1..2])
  // kAffine: real scale and shift per channel, then per channel the rescale of |scale|·r + shift
  // to the output's units, applied to −r where the scale is negative.
  std::vector<double> channel_scale, channel_shift;
  std::vector<Rescale> channel_rq;
  std::vector<uint8_t> channel_negate;
  std::vector<int> channel_map;  // kShuffle
  UnaryOp unary = UnaryOp::kSigmoid;
  double alpha = 0.2, beta = 0.5;  // kUnary kHardSigmoid: max(0, min(1, alpha·x + beta))
  std::vector<int> more;                                 // kConcat: the inputs after in0
  std::vector<Rescale> more_rq;                          // and their rescales to the output's scale
  // kConv with an int32 output: a residual Add (and its Relu) fused after the requantization,
  // and a uint8 copy of the result (a Requantize fused).
  int residual = -1, out2 = -1;
  Rescale res_rq, out2_rq;
  bool dead = false;  // fused into another step
};

struct Program {
  int in_c = 0, in_h = 0, in_w = 0;
  std::vector<TensorDesc> tensors;
  std::vector<Step> steps;
  int output = -1;               // int32 tensor
  std::vector<float> out_scale;  // per output channel: float = r·scale (+ out_bias)
  std::vector<float> out_bias;
  int64_t weight_bytes = 0;
  std::map<std::string, int> names;  // ONNX value -> tensor, for debug_values()
  std::string file;                  // the .mpq weights section while loading
};

Status load_program(const std::string& path, Program* p);

// Scales of real tensors, requantization constants and fusions (after lowering).
Status finish_program(Program* p, const std::string& path);

}  // namespace mpq::runtime
