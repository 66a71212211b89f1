// Kernel arguments and per-ISA kernel tables of the integer runtime.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

#include "mpq/runtime/runtime.h"

namespace mpq::runtime {

// Packed weight storage of a group-1 convolution: K = kh·kw·cp (cp: input channels rounded up
// to 4), output channels in blocks of 16 (the last one zero-filled), each block as K/4 groups
// of 64 values (16 channels × 4 consecutive k), every group bit-packed LSB-first at `bits`:
// 8·bits bytes per group. The buffer ends in kWeightTail spare bytes so kernels may load whole
// vectors.
struct PackedGroup64 {
  uint8_t bytes_at_8_bits[64];
};
static_assert(sizeof(PackedGroup64) == 64, "a 64-value group takes 64 bytes at 8 bits");
inline constexpr int kBlock = 16;       // output channels per block
inline constexpr int kMaxBlocks = 4;    // blocks per panel (one work item)
inline constexpr int kWeightTail = 64;  // spare bytes after every packed buffer

inline int64_t group_bytes(int bits) { return 8 * bits; }

enum class OutMode { kU8 = 0, kI32 = 1, kRaw = 2 };

// Where a kernel writes: pixel (n, y, x) channel c at
// ((n·hp + y + border)·wp + x + border)·cp + c, as uint8 (kU8) or int32.
struct OutDesc {
  OutMode mode = OutMode::kU8;
  void* data = nullptr;
  int hp = 0, wp = 0, cp = 0, border = 0;
};

// Per output channel requantization: r = (acc·mult + add) >> shift (64-bit, arithmetic), then
// clamp(r, lo − zp, hi − zp) + zp (kI32: zp = 0, lo/hi default to the int32 range); kRaw: acc
// unchanged.
// acc already has the input zero point removed (Σ (x − zp)·w).
struct Requant {
  const int32_t* mult = nullptr;
  const int32_t* shift = nullptr;
  const int64_t* add = nullptr;
  int32_t zp = 0, lo = 0, hi = 255;
};

inline int32_t requantize_ref(int32_t acc, int32_t mult, int32_t shift, int64_t add, OutMode mode,
                              int32_t zp, int32_t lo, int32_t hi) {
  if (mode == OutMode::kRaw) return acc;
  int64_t r = (static_cast<int64_t>(acc) * mult + add) >> shift;
  const int64_t l = static_cast<int64_t>(lo) - zp, h = static_cast<int64_t>(hi) - zp;
  return static_cast<int32_t>((r < l ? l : r > h ? h : r) + zp);
}

// One fixed-point rescale: r -> (r·mult + add) >> shift; mult = 1, shift = add = 0 is the
// identity.
struct Rescale {
  int32_t mult = 1, shift = 0;
  int64_t add = 0;
  // In 128 bits: a sum of many int32 values (pooling) times the multiplier may pass 2^63.
  int64_t apply(int64_t r) const {
    const __int128 v = (static_cast<__int128>(r) * mult + add) >> shift;
    const __int128 lim = std::numeric_limits<int64_t>::max();
    return static_cast<int64_t>(v > lim ? lim : v < -lim ? -lim : v);
  }
};

struct ConvArgs {
  // Input: uint8 NHWC with a border, [n][ih][iw][icp]; output (y, x) tap (i, j) reads padded
  // pixel (y0 + y·stride + i, x0 + x·stride + j).
  const uint8_t* in = nullptr;
  int ih = 0, iw = 0, icp = 0;
  int oh = 0, ow = 0, kh = 1, kw = 1, stride = 1, y0 = 0, x0 = 0;
  // Weights: packed as above; oc real output channels; zpcorr[c] = zp_in · Σ_k w[c][k].
  const uint8_t* weights = nullptr;
  int bits = 8, oc = 0;
  const int32_t* zpcorr = nullptr;
  // Bounds of the input values (uint8, border included) and of |weight|: where
  // 2·in_max·w_max <= 32767, u8 × s8 pair sums fit int16 (the AVX2 conv's vpmaddubsw).
  int in_max = 255, w_max = 128;
  Requant rq;
  OutDesc out;
  // Work: image n, output rows [oh0, oh1), blocks [block0, block0 + blocks) (blocks <= 4).
  // scratch: at least K·64 bytes, 64-byte aligned, owned by the calling thread.
  int n = 0, oh0 = 0, oh1 = 0, block0 = 0, blocks = 1;
  uint8_t* scratch = nullptr;
  // Optional, with out.mode == kI32 (a residual block's last conv, its Add and Relu fused):
  // r = clamp(((acc·mult + add) >> shift) + res_rq(residual), lo, hi) in 64 bits, the residual
  // laid out as the output; and a uint8 copy of r for the next conv, clamp(out2_rq(r) + out2_zp,
  // out2_lo, out2_hi) at out2 (its padding channels are left alone).
  const int32_t* residual = nullptr;
  Rescale res_rq;
  OutDesc out2;  // data == nullptr: none
  Rescale out2_rq;
  int32_t out2_zp = 0, out2_lo = 0, out2_hi = 255;
  // A grouped conv (the reference kernel only): input and output channels per group; the
  // weights hold round_up(group_in, 4) values per tap. 0: one group.
  int group_in = 0, group_out = 0;
  int k() const { return kh * kw * (group_in ? (group_in + 3) / 4 * 4 : icp); }
};

// The reference epilogue of one conv output: channel c of output pixel `pixel` (out2: `pixel2`).
inline void conv_store_ref(const ConvArgs& a, int64_t pixel, int64_t pixel2, int c, int32_t acc) {
  const OutDesc& o = a.out;
  if (c >= a.oc) {  // channel padding of a uint8 output: the zero point
    if (o.mode == OutMode::kU8) static_cast<uint8_t*>(o.data)[pixel * o.cp + c] = a.rq.zp;
    return;
  }
  if (o.mode != OutMode::kI32 || (!a.residual && !a.out2.data)) {
    int32_t v = requantize_ref(acc, a.rq.mult[c], a.rq.shift[c], a.rq.add[c], o.mode, a.rq.zp,
                               a.rq.lo, a.rq.hi);
    if (o.mode == OutMode::kU8)
      static_cast<uint8_t*>(o.data)[pixel * o.cp + c] = static_cast<uint8_t>(v);
    else
      static_cast<int32_t*>(o.data)[pixel * o.cp + c] = v;
    return;
  }
  int64_t r = (static_cast<int64_t>(acc) * a.rq.mult[c] + a.rq.add[c]) >> a.rq.shift[c];
  if (a.residual) r += a.res_rq.apply(a.residual[pixel * o.cp + c]);
  r = r < a.rq.lo ? a.rq.lo : r > a.rq.hi ? a.rq.hi : r;
  static_cast<int32_t*>(o.data)[pixel * o.cp + c] = static_cast<int32_t>(r);
  if (a.out2.data) {
    int64_t q = a.out2_rq.apply(r);
    const int64_t lo = int64_t{a.out2_lo} - a.out2_zp, hi = int64_t{a.out2_hi} - a.out2_zp;
    q = q < lo ? lo : q > hi ? hi : q;
    static_cast<uint8_t*>(a.out2.data)[pixel2 * a.out2.cp + c] =
        static_cast<uint8_t>(q + a.out2_zp);
  }
}

struct DwconvArgs {
  const uint8_t* in = nullptr;  // as ConvArgs; icp = channel stride, c channels
  int ih = 0, iw = 0, icp = 0, c = 0;
  int oh = 0, ow = 0, kh = 3, kw = 3, stride = 1, y0 = 0, x0 = 0;
  // Weights: c·kh·kw values in [c][kh][kw] order, bit-packed LSB-first at `bits`.
  const uint8_t* weights = nullptr;
  int bits = 8;
  int32_t zp_in = 0;
  int in_max = 255, w_max = 128;  // as ConvArgs
  Requant rq;
  OutDesc out;
  int n = 0, oh0 = 0, oh1 = 0;
  int8_t* scratch = nullptr;  // at least (5·kh·kw + 4)·c64 bytes (c64: c rounded up to 64)
};

// `pixels` pixels of c int32 values each (contiguous) -> uint8 pixels `out_stride` bytes apart:
// clamp(rescale(r) + zp, lo, hi).
struct RequantizeArgs {
  const int32_t* in = nullptr;
  uint8_t* out = nullptr;
  int64_t pixels = 0;
  int c = 0, out_stride = 0;
  Rescale rq;
  int32_t zp = 0, lo = 0, hi = 255;
};

// out[i] = clamp(rescale0(a[i]) + rescale1(b[i]), lo, hi) for i < count (64-bit sum).
struct AddArgs {
  const int32_t* a = nullptr;
  const int32_t* b = nullptr;
  int32_t* out = nullptr;
  int64_t count = 0;
  Rescale rq0, rq1;
  int32_t lo = std::numeric_limits<int32_t>::min(), hi = std::numeric_limits<int32_t>::max();
};

// A row of `pixels` image pixels from up to 4 float planes (NCHW rows) to uint8 pixels of 4
// channels (channels >= c hold zp): clamp(nearbyint(x / scale) + zp, lo, hi), x / scale in
// float as the simulation divides.
struct QuantizeInputArgs {
  const float* planes[4] = {nullptr, nullptr, nullptr, nullptr};
  int c = 3;
  int64_t pixels = 0;
  uint8_t* out = nullptr;
  float scale = 1;
  int32_t zp = 0, lo = 0, hi = 255;
};

inline uint8_t quantize_input_value(float x, const QuantizeInputArgs& a) {
  float v = std::nearbyint(std::fmin(std::fmax(x / a.scale, -1e6f), 1e6f));
  int32_t q = static_cast<int32_t>(v) + a.zp;
  return static_cast<uint8_t>(q < a.lo ? a.lo : q > a.hi ? a.hi : q);
}

// Pixel (y, x) of image n of a bordered uint8 NHWC map [n][ih][iw][icp] (padded coordinates).
inline const uint8_t* pixel_at(const uint8_t* in, int n, int ih, int iw, int icp, int y, int x) {
  return in + ((static_cast<int64_t>(n) * ih + y) * iw + x) * icp;
}

// Value i of a buffer bit-packed LSB-first at `bits`, sign-extended.
inline int8_t packed_value(const uint8_t* data, int64_t i, int bits) {
  int64_t bit = i * bits;
  uint32_t word = data[bit >> 3] | (static_cast<uint32_t>(data[(bit >> 3) + 1]) << 8);
  int32_t raw = static_cast<int32_t>((word >> (bit & 7)) & ((1u << bits) - 1));
  if (raw & (1 << (bits - 1))) raw -= 1 << bits;
  return static_cast<int8_t>(raw);
}

#define MPQ_RT_KERNEL(name, Args) void name##_ref(const Args& args);
#include "kernels.inc"
#undef MPQ_RT_KERNEL
#define MPQ_RT_KERNEL(name, Args) void name##_avx2(const Args& args);
#include "kernels.inc"
#undef MPQ_RT_KERNEL
#define MPQ_RT_KERNEL(name, Args) void name##_avx512vnni(const Args& args);
#include "kernels.inc"
#undef MPQ_RT_KERNEL

struct Kernels {
#define MPQ_RT_KERNEL(name, Args) void (*name)(const Args&);
#include "kernels.inc"
#undef MPQ_RT_KERNEL
};
// The kernel table of an ISA (kAuto: the best supported).
const Kernels& kernels_for(Isa isa);

}  // namespace mpq::runtime
