// Every SIMD kernel of the integer runtime against its scalar _ref, bit for bit: every weight
// width 2..8, output channels below, at and above the 16-channel block and the 64-channel panel,
// output rows below, at and above the 6/12/24-pixel tiles, 1x1 and 3x3, strides 1 and 2, and
// every output mode. Kernels this CPU cannot run are skipped with a message.
#include "runtime/kernels.h"

#include <gtest/gtest.h>

#include <limits>
#include <random>
#include <vector>

namespace mpq::runtime {
namespace {

std::mt19937 rng(7);
int uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); }

std::vector<uint8_t> random_bytes(size_t n) {
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(uniform(0, 255));
  return v;
}

struct Requants {
  std::vector<int32_t> mult, shift;
  std::vector<int64_t> add;
  // Shifts of 32 or more are the AVX2 epilogue's 32-bit path, smaller ones its 64-bit path.
  explicit Requants(int channels, int shift_lo = 36, int shift_hi = 44) {
    for (int c = 0; c < channels; ++c) {
      mult.push_back(uniform(1 << 30, 0x7fffffff));
      int sh = uniform(shift_lo, shift_hi);
      shift.push_back(sh);
      add.push_back(int64_t{uniform(-1000, 1000)} * (int64_t{1} << (sh - 4)) +
                    (int64_t{1} << (sh - 1)));
    }
  }
  Requant rq(int32_t zp, int32_t lo, int32_t hi) const {
    return {mult.data(), shift.data(), add.data(), zp, lo, hi};
  }
};

// `count` copies of `value` bit-packed LSB-first at `bits`, with the kernels' spare tail.
std::vector<uint8_t> packed_constant(int64_t count, int bits, int value) {
  std::vector<uint8_t> buf((count * bits + 7) / 8 + kWeightTail, 0);
  for (int64_t i = 0; i < count; ++i)
    for (int b = 0; b < bits; ++b)
      if ((static_cast<unsigned>(value) >> b) & 1)
        buf[(i * bits + b) / 8] |= static_cast<uint8_t>(1u << ((i * bits + b) % 8));
  return buf;
}

const std::vector<Isa> kSimd = {Isa::kAvx2, Isa::kAvx512Vnni};

// Whether this CPU runs the ISA's kernels; says so when it does not.
bool runs(Isa isa) {
  if (isa_supported(isa)) return true;
  std::printf("skipped: this CPU does not run the %s kernels\n", isa_name(isa));
  return false;
}

// One convolution through `fn`, the work split into row chunks and panels of <= 4 blocks.
template <typename Fn>
void run_conv(ConvArgs a, Fn fn, int row_chunk) {
  const int blocks = (a.out.cp + kBlock - 1) / kBlock;
  for (int b0 = 0; b0 < blocks; b0 += kMaxBlocks)
    for (int n = 0; n < 2; ++n)
      for (int y = 0; y < a.oh; y += row_chunk) {
        ConvArgs w = a;
        w.n = n, w.oh0 = y, w.oh1 = std::min(a.oh, y + row_chunk);
        w.block0 = b0, w.blocks = std::min(kMaxBlocks, blocks - b0);
        fn(w);
      }
}

TEST(RuntimeKernels, ConvMatchesRefBitForBit) {
  struct Geometry {
    int k, stride, pad;
  };
  const Geometry geometries[] = {{1, 1, 0}, {3, 1, 1}, {3, 2, 1}, {1, 2, 0}};
  const int ocs[] = {1, 16, 17, 40, 64, 70};
  const int icps[] = {4, 16, 20, 8};
  const int widths[] = {5, 6, 7, 12, 13, 23, 24, 25, 1};
  int cases = 0;
  for (Isa isa : kSimd) {
    if (!runs(isa)) continue;
    const Kernels& k = kernels_for(isa);
    int index = 0;
    for (int bits = 2; bits <= 8; ++bits)
      for (const Geometry& g : geometries)
        for (OutMode mode : {OutMode::kU8, OutMode::kI32, OutMode::kRaw})
          for (int variant = 0; variant < 3; ++variant) {
            ++index;
            const int oc = ocs[index % 6], icp = icps[index % 4], iw = widths[index % 9];
            const int ih = 1 + index % 7, border = g.pad;
            ConvArgs a;
            a.ih = ih + 2 * border, a.iw = iw + 2 * border, a.icp = icp;
            a.kh = a.kw = g.k, a.stride = g.stride, a.y0 = a.x0 = 0;
            a.oh = (ih + 2 * g.pad - g.k) / g.stride + 1;
            a.ow = (iw + 2 * g.pad - g.k) / g.stride + 1;
            auto input = random_bytes(static_cast<size_t>(2) * a.ih * a.iw * icp + 64);
            // Variant 2 has 7-bit activations: W8 then fits vpmaddubsw on AVX2.
            if (variant == 2)
              for (auto& v : input) v &= 127;
            a.in = input.data(), a.in_max = variant == 2 ? 127 : 255;
            const int groups = a.k() / 4, blocks = (oc + 15) / 16;
            auto weights = random_bytes(blocks * groups * group_bytes(bits) + kWeightTail);
            a.weights = weights.data(), a.bits = bits, a.oc = oc, a.w_max = 1 << (bits - 1);
            const int padded = (oc + 63) / 64 * 64 + 64;
            std::vector<int32_t> zpcorr(padded);
            for (int c = 0; c < oc; ++c) zpcorr[c] = uniform(-100000, 100000);
            a.zpcorr = zpcorr.data();
            // Variant 1 requantizes with shifts below 32 (multipliers of 1/2 and more).
            Requants r(padded, variant == 1 ? 20 : 36, variant == 1 ? 31 : 44);
            int zp = uniform(0, 40);
            a.rq = mode == OutMode::kU8 ? r.rq(zp, zp, uniform(200, 255))
                                        : r.rq(0, uniform(-(1 << 20), 0), uniform(1, 1 << 20));
            const int obord = mode == OutMode::kU8 ? 1 : 0;
            const int ocp = mode == OutMode::kU8 ? (oc + 3) / 4 * 4 : oc;
            const size_t esize = mode == OutMode::kU8 ? 1 : 4;
            const size_t out_bytes =
                static_cast<size_t>(2) * (a.oh + 2 * obord) * (a.ow + 2 * obord) * ocp * esize + 64;
            std::vector<uint8_t> want(out_bytes, 0xAB), got(out_bytes, 0xAB);
            a.out = {mode, want.data(), a.oh + 2 * obord, a.ow + 2 * obord, ocp, obord};
            // An int32 output with a residual and a uint8 copy (a residual block's last conv):
            // every other case of kI32, the rescales on either side of 32-bit shifts.
            std::vector<int32_t> residual(out_bytes / 4);
            const size_t copy_bytes =
                static_cast<size_t>(2) * (a.oh + 2) * (a.ow + 2) * ((oc + 3) / 4 * 4) + 64;
            std::vector<uint8_t> copy_want(copy_bytes, 0xEF), copy_got(copy_bytes, 0xEF);
            const bool fused = mode == OutMode::kI32 && index % 2 == 0;
            if (fused) {
              for (auto& v : residual) v = uniform(-(1 << 24), 1 << 24);
              a.residual = residual.data();
              const int rs = variant == 1 ? uniform(1, 31) : uniform(32, 40);
              a.res_rq = {uniform(1 << 30, 0x7fffffff), rs, int64_t{1} << (rs - 1)};
              a.out2 = {OutMode::kU8, copy_want.data(), a.oh + 2, a.ow + 2, (oc + 3) / 4 * 4, 1};
              const int cs = variant == 2 ? uniform(2, 31) : uniform(32, 44);
              a.out2_rq = {uniform(1 << 30, 0x7fffffff), cs,
                           int64_t{uniform(-50, 50)} * (int64_t{1} << (cs - 2))};
              a.out2_zp = uniform(0, 30), a.out2_lo = 0, a.out2_hi = uniform(100, 255);
            }
            std::vector<uint8_t> scratch(static_cast<size_t>(a.k()) * 64 * kMaxBlocks + 4096);
            a.scratch = reinterpret_cast<uint8_t*>(
                (reinterpret_cast<uintptr_t>(scratch.data()) + 63) / 64 * 64);
            run_conv(a, conv_ref, a.oh);
            a.out.data = got.data();
            if (fused) a.out2.data = copy_got.data();
            run_conv(a, k.conv, 1 + index % 3);
            ASSERT_EQ(want, got) << isa_name(isa) << " conv: bits " << bits << ", " << g.k << "x"
                                 << g.k << " stride " << g.stride << ", oc " << oc << ", icp "
                                 << icp << ", input " << ih << "x" << iw << ", mode "
                                 << static_cast<int>(mode) << ", variant " << variant
                                 << (fused ? ", residual and copy" : "");
            ASSERT_EQ(copy_want, copy_got) << isa_name(isa) << " conv copy: bits " << bits;
            ++cases;
          }
  }
  std::printf("%d conv cases bit-exact\n", cases);
}

// The AVX2 conv sums u8 × s8 pairs in int16 where 2·in_max·w_max <= 32767, and S such pair sums
// before widening: every width at its extreme values (weights all at -2^(bits-1), activations all
// at in_max, a long K) is where a wrong S or a saturating vpmaddubsw would show.
TEST(RuntimeKernels, ConvAtTheInt16BoundaryMatchesRef) {
  int cases = 0;
  for (Isa isa : kSimd) {
    if (!runs(isa)) continue;
    const Kernels& k = kernels_for(isa);
    for (int bits = 2; bits <= 8; ++bits)
      for (int in_max : {255, 128, 127, 64})
        for (int sign : {-1, 1}) {
          ConvArgs a;
          const int icp = 64, oc = 32, side = 5;
          a.ih = a.iw = side + 2, a.icp = icp, a.kh = a.kw = 3, a.oh = a.ow = side;
          std::vector<uint8_t> input(static_cast<size_t>(2) * a.ih * a.iw * icp + 64,
                                     static_cast<uint8_t>(in_max));
          a.in = input.data(), a.in_max = in_max;
          const int groups = a.k() / 4, blocks = oc / 16;
          // Every value at -2^(bits-1) (sign -1) or 2^(bits-1) - 1.
          const int value = sign < 0 ? -(1 << (bits - 1)) : (1 << (bits - 1)) - 1;
          auto weights = packed_constant(int64_t{blocks} * groups * 64, bits, value);
          a.weights = weights.data(), a.bits = bits, a.oc = oc, a.w_max = 1 << (bits - 1);
          std::vector<int32_t> zpcorr(128, 0);
          a.zpcorr = zpcorr.data();
          Requants r(128);
          a.rq = r.rq(0, std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max());
          const size_t out_bytes = static_cast<size_t>(2) * side * side * oc * 4 + 64;
          std::vector<uint8_t> want(out_bytes, 0xAB), got(out_bytes, 0xAB);
          a.out = {OutMode::kRaw, want.data(), side, side, oc, 0};
          std::vector<uint8_t> scratch(static_cast<size_t>(a.k()) * 64 * kMaxBlocks + 4096);
          a.scratch = reinterpret_cast<uint8_t*>(
              (reinterpret_cast<uintptr_t>(scratch.data()) + 63) / 64 * 64);
          run_conv(a, conv_ref, a.oh);
          a.out.data = got.data();
          run_conv(a, k.conv, 2);
          ASSERT_EQ(want, got) << isa_name(isa) << " conv: bits " << bits << ", in_max " << in_max
                               << ", weights " << value;
          ++cases;
        }
  }
  std::printf("%d boundary conv cases bit-exact\n", cases);
}

// The AVX2 depthwise's vpmaddubsw path at the same extremes, 3x3 (5 tap pairs) and 5x5 (13).
TEST(RuntimeKernels, DepthwiseAtTheInt16BoundaryMatchesRef) {
  int cases = 0;
  for (Isa isa : kSimd) {
    if (!runs(isa)) continue;
    const Kernels& k = kernels_for(isa);
    for (int bits = 2; bits <= 8; ++bits)
      for (int in_max : {255, 127})
        for (int kernel : {3, 5})
          for (int sign : {-1, 1}) {
            DwconvArgs a;
            const int c = 40, icp = 40, side = 6;
            a.ih = a.iw = side + kernel - 1, a.icp = icp, a.c = c, a.kh = a.kw = kernel;
            a.oh = a.ow = side;
            std::vector<uint8_t> input(static_cast<size_t>(a.ih) * a.iw * icp + 64,
                                       static_cast<uint8_t>(in_max));
            a.in = input.data(), a.in_max = in_max;
            const int value = sign < 0 ? -(1 << (bits - 1)) : (1 << (bits - 1)) - 1;
            const int64_t count = int64_t{kernel} * kernel * 64;
            auto weights = packed_constant(count, bits, value);
            a.weights = weights.data(), a.bits = bits, a.w_max = 1 << (bits - 1);
            a.zp_in = 3;
            Requants r(128);
            a.rq =
                r.rq(0, std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max());
            const size_t out_bytes = static_cast<size_t>(side) * side * c * 4 + 64;
            std::vector<uint8_t> want(out_bytes, 0xCD), got(out_bytes, 0xCD);
            std::vector<int8_t> scratch(static_cast<size_t>(5 * kernel * kernel + 4) * 64 + 4096);
            a.scratch = reinterpret_cast<int8_t*>(
                (reinterpret_cast<uintptr_t>(scratch.data()) + 63) / 64 * 64);
            a.out = {OutMode::kI32, want.data(), side, side, c, 0};
            a.oh0 = 0, a.oh1 = side;
            dwconv_ref(a);
            a.out.data = got.data();
            k.dwconv(a);
            ASSERT_EQ(want, got) << isa_name(isa) << " dwconv: bits " << bits << ", in_max "
                                 << in_max << ", " << kernel << "x" << kernel << ", weights "
                                 << value;
            ++cases;
          }
  }
  std::printf("%d boundary depthwise cases bit-exact\n", cases);
}

TEST(RuntimeKernels, DepthwiseMatchesRefBitForBit) {
  int cases = 0;
  for (Isa isa : kSimd) {
    if (!runs(isa)) continue;
    const Kernels& k = kernels_for(isa);
    for (int bits = 2; bits <= 8; ++bits)
      for (int c : {1, 15, 16, 17, 64, 65, 100})
        for (int stride : {1, 2})
          for (OutMode mode : {OutMode::kU8, OutMode::kI32}) {
            DwconvArgs a;
            const int ih = 3 + c % 5, iw = 4 + c % 7, icp = (c + 3) / 4 * 4;
            a.ih = ih + 2, a.iw = iw + 2, a.icp = icp, a.c = c;
            a.kh = a.kw = 3, a.stride = stride;
            a.oh = (ih + 2 - 3) / stride + 1, a.ow = (iw + 2 - 3) / stride + 1;
            auto input = random_bytes(static_cast<size_t>(a.ih) * a.iw * icp + 64);
            a.in = input.data();
            const int cp64 = (c + 63) / 64 * 64;
            auto weights = random_bytes(9 * cp64 * bits / 8 + kWeightTail);
            a.weights = weights.data(), a.bits = bits, a.zp_in = uniform(0, 255);
            a.in_max = 255, a.w_max = 1 << (bits - 1);  // AVX2: vpmaddubsw up to 4 bits
            Requants r(cp64 + 64);
            int zp = uniform(0, 40);
            a.rq = mode == OutMode::kU8 ? r.rq(zp, 0, 255) : r.rq(0, -(1 << 24), 1 << 24);
            const int ocp = mode == OutMode::kU8 ? icp : c;
            const size_t esize = mode == OutMode::kU8 ? 1 : 4;
            const size_t out_bytes = static_cast<size_t>(a.oh) * a.ow * ocp * esize + 64;
            std::vector<uint8_t> want(out_bytes, 0xCD), got(out_bytes, 0xCD);
            std::vector<int8_t> scratch(10 * (cp64 + 64) * 4 + 4096);
            a.scratch = reinterpret_cast<int8_t*>(
                (reinterpret_cast<uintptr_t>(scratch.data()) + 63) / 64 * 64);
            a.out = {mode, want.data(), a.oh, a.ow, ocp, 0};
            a.oh0 = 0, a.oh1 = a.oh;
            dwconv_ref(a);
            a.out.data = got.data();
            for (int y = 0; y < a.oh; ++y) {
              a.oh0 = y, a.oh1 = y + 1;
              k.dwconv(a);
            }
            ASSERT_EQ(want, got) << isa_name(isa) << " dwconv: bits " << bits << ", c " << c
                                 << ", stride " << stride << ", mode " << static_cast<int>(mode);
            ++cases;
          }
  }
  std::printf("%d depthwise cases bit-exact\n", cases);
}

TEST(RuntimeKernels, RequantizeAndAddMatchRefBitForBit) {
  for (Isa isa : kSimd) {
    if (!runs(isa)) continue;
    const Kernels& k = kernels_for(isa);
    for (int count : {1, 15, 16, 17, 100, 257}) {
      std::vector<int32_t> a(count), b(count);
      for (int i = 0; i < count; ++i)
        a[i] = uniform(-(1 << 24), 1 << 24), b[i] = uniform(-(1 << 24), 1 << 24);
      for (bool identity : {true, false}) {
        Rescale r0, r1;
        if (!identity) {
          r0 = {uniform(1 << 30, 0x7fffffff), 40, int64_t{1} << 39};
          r1 = {uniform(1 << 30, 0x7fffffff), 33, int64_t{1} << 32};
        }
        AddArgs args;
        args.a = a.data(), args.b = b.data(), args.count = count, args.rq0 = r0, args.rq1 = r1;
        args.lo = identity ? 0 : std::numeric_limits<int32_t>::min();
        std::vector<int32_t> want(count), got(count);
        args.out = want.data();
        add_ref(args);
        args.out = got.data();
        k.add(args);
        ASSERT_EQ(want, got) << isa_name(isa) << " add: count " << count;
        // requantize: count values as pixels of c channels
        for (int c : {1, 3, 16, 17}) {
          if (count % c) continue;
          RequantizeArgs q;
          q.in = a.data(), q.pixels = count / c, q.c = c, q.out_stride = c + 2;
          q.rq = r0.mult == 1 ? Rescale{uniform(1 << 30, 0x7fffffff), 50, int64_t{1} << 49} : r0;
          q.zp = uniform(0, 128), q.lo = 0, q.hi = identity ? 15 : 255;
          std::vector<uint8_t> qw(q.pixels * q.out_stride + 16, 9), qg = qw;
          q.out = qw.data();
          requantize_ref(q);
          q.out = qg.data();
          k.requantize(q);
          ASSERT_EQ(qw, qg) << isa_name(isa) << " requantize: " << count << " values, c " << c;
        }
      }
    }
  }
}

TEST(RuntimeKernels, InputQuantizationMatchesRefBitForBit) {
  for (Isa isa : kSimd) {
    if (!runs(isa)) continue;
    const Kernels& k = kernels_for(isa);
    for (int c : {1, 3, 4})
      for (int pixels : {1, 15, 16, 17, 100}) {
        std::vector<float> planes(4 * pixels);
        const float scale = 0.0173f;
        for (size_t i = 0; i < planes.size(); ++i)  // ties (k + 0.5)·scale and far outliers too
          planes[i] = i % 7 == 0    ? (uniform(-200, 200) + 0.5f) * scale
                      : i % 11 == 0 ? uniform(-1, 1) * 1e9f
                                    : uniform(-30000, 30000) * 1e-4f;
        QuantizeInputArgs q;
        q.c = c, q.pixels = pixels, q.scale = scale, q.zp = uniform(0, 255), q.lo = 0, q.hi = 255;
        for (int i = 0; i < c; ++i) q.planes[i] = planes.data() + i * pixels;
        std::vector<uint8_t> want(pixels * 4 + 8, 3), got = want;
        q.out = want.data();
        quantize_input_ref(q);
        q.out = got.data();
        k.quantize_input(q);
        ASSERT_EQ(want, got) << isa_name(isa) << " quantize_input: c " << c << ", " << pixels;
      }
  }
}

TEST(RuntimeKernels, UnpackedValuesRoundTripEveryWidth) {
  // packed_value reads what the .mpq writer stores: b-bit two's complement, LSB first.
  for (int bits = 2; bits <= 8; ++bits) {
    std::vector<int> values;
    for (int v = -(1 << (bits - 1)); v < (1 << (bits - 1)); ++v) values.push_back(v);
    std::vector<uint8_t> buf((values.size() * bits + 7) / 8 + 2, 0);
    for (size_t i = 0; i < values.size(); ++i)
      for (int b = 0; b < bits; ++b)
        if ((static_cast<unsigned>(values[i]) >> b) & 1)
          buf[(i * bits + b) / 8] |= static_cast<uint8_t>(1u << ((i * bits + b) % 8));
    for (size_t i = 0; i < values.size(); ++i)
      ASSERT_EQ(packed_value(buf.data(), static_cast<int64_t>(i), bits), values[i]) << bits;
  }
}

}  // namespace
}  // namespace mpq::runtime
