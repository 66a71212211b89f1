// AVX-512 VNNI kernels (compiled with -mavx512f -mavx512bw -mavx512vl -mavx512vnni
// -mavx512vbmi). The convolution unpacks its weight panel (vpermb + vpmultishiftqb: any width
// 2..8 in four instructions per 64 values) into L1, then runs an implicit-GEMM tile of up to
// 24 output pixels × 16..64 channels with vpdpbusd (u8 × s8 → int32, no saturation), reading
// the activations straight from the bordered NHWC input. Requantization is the dyadic formula
// of requantize_ref in 64-bit lanes, so results equal conv_ref bit for bit.
#include <immintrin.h>

#include <array>
#include <utility>
#include <vector>

#include "kernels.h"

namespace mpq::runtime {
namespace {

struct Unpacker {
  __mmask64 load;
  __m512i perm, shifts, mask, sign;
  explicit Unpacker(int bits) {
    alignas(64) uint8_t p[64], s[64];
    for (int j = 0; j < 8; ++j)
      for (int t = 0; t < 8; ++t) {
        int src = j * bits + t;
        p[8 * j + t] = static_cast<uint8_t>(src < 64 ? src : 63);
        s[8 * j + t] = static_cast<uint8_t>(t * bits);
      }
    load = bits == 8 ? ~__mmask64{0} : ((__mmask64{1} << (8 * bits)) - 1);
    perm = _mm512_load_si512(p);
    shifts = _mm512_load_si512(s);
    mask = _mm512_set1_epi8(static_cast<char>((1 << bits) - 1));
    sign = _mm512_set1_epi8(static_cast<char>(1 << (bits - 1)));
  }
  // 64 values bit-packed LSB-first (8·bits bytes at src) -> 64 int8.
  __m512i operator()(const uint8_t* src) const {
    __m512i raw = _mm512_maskz_loadu_epi8(load, src);
    __m512i v = _mm512_multishift_epi64_epi8(shifts, _mm512_permutexvar_epi8(perm, raw));
    v = _mm512_and_si512(v, mask);
    return _mm512_sub_epi8(_mm512_xor_si512(v, sign), sign);
  }
};

// A Rescale on 16 int32 lanes, as 64-bit even and odd halves.
struct Rescale16 {
  __m512i mult, add;
  __m128i shift;
  bool id;
  explicit Rescale16(const Rescale& r)
      : mult(_mm512_set1_epi64(r.mult)),
        add(_mm512_set1_epi64(r.add)),
        shift(_mm_cvtsi32_si128(r.shift)),
        id(r.mult == 1 && r.shift == 0 && r.add == 0) {}
  void operator()(__m512i v, __m512i* even, __m512i* odd) const {
    if (id) {
      *even = _mm512_srai_epi64(_mm512_slli_epi64(v, 32), 32);
      *odd = _mm512_srai_epi64(v, 32);
      return;
    }
    *even = _mm512_sra_epi64(_mm512_add_epi64(_mm512_mul_epi32(v, mult), add), shift);
    *odd = _mm512_sra_epi64(_mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(v, 32), mult), add),
                            shift);
  }
};

__m512i join(__m512i even, __m512i odd) {
  return _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
}

// The requantization of 16 channels starting at c0 (arrays padded to whole blocks).
struct Epilogue {
  OutMode mode;
  __m512i zpcorr, mult, mult_odd, add_even, add_odd, shift_even, shift_odd, lo, hi, zp;
  __mmask16 store, real;  // lanes stored; lanes that are channels (the rest of cp hold zp)
  // A residual added before the clamp and a uint8 copy of the result (ConvArgs).
  bool residual = false, copy = false;
  Rescale16 res_rs{Rescale{}}, copy_rs{Rescale{}};
  __m512i copy_lo, copy_hi, copy_zp;

  void fuse(const ConvArgs& c) {
    residual = c.residual != nullptr;
    copy = c.out2.data != nullptr;
    res_rs = Rescale16(c.res_rq);
    copy_rs = Rescale16(c.out2_rq);
    copy_lo = _mm512_set1_epi64(int64_t{c.out2_lo} - c.out2_zp);
    copy_hi = _mm512_set1_epi64(int64_t{c.out2_hi} - c.out2_zp);
    copy_zp = _mm512_set1_epi32(c.out2_zp);
  }

  Epilogue(const Requant& rq, OutMode m, const int32_t* zpc, int c0, int cp, int oc) : mode(m) {
    auto lanes = [](int n) {
      return n >= 16 ? __mmask16(0xffff) : __mmask16((1u << (n > 0 ? n : 0)) - 1);
    };
    store = lanes(cp - c0);
    real = lanes(oc - c0);
    zpcorr = zpc ? _mm512_loadu_si512(zpc + c0) : _mm512_setzero_si512();
    if (mode == OutMode::kRaw) return;
    const __m512i even_idx = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);
    const __m512i odd_idx = _mm512_setr_epi64(1, 3, 5, 7, 9, 11, 13, 15);
    mult = _mm512_loadu_si512(rq.mult + c0);
    mult_odd = _mm512_srli_epi64(mult, 32);
    __m512i a0 = _mm512_loadu_si512(rq.add + c0), a1 = _mm512_loadu_si512(rq.add + c0 + 8);
    add_even = _mm512_permutex2var_epi64(a0, even_idx, a1);
    add_odd = _mm512_permutex2var_epi64(a0, odd_idx, a1);
    __m512i s = _mm512_loadu_si512(rq.shift + c0);
    __m512i s0 = _mm512_cvtepi32_epi64(_mm512_castsi512_si256(s));
    __m512i s1 = _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(s, 1));
    shift_even = _mm512_permutex2var_epi64(s0, even_idx, s1);
    shift_odd = _mm512_permutex2var_epi64(s0, odd_idx, s1);
    lo = _mm512_set1_epi64(static_cast<int64_t>(rq.lo) - rq.zp);
    hi = _mm512_set1_epi64(static_cast<int64_t>(rq.hi) - rq.zp);
    zp = _mm512_set1_epi32(rq.zp);
  }

  void operator()(__m512i acc, void* out, const int32_t* res = nullptr,
                  uint8_t* out2 = nullptr) const {
    acc = _mm512_sub_epi32(acc, zpcorr);
    if (mode == OutMode::kRaw) {
      _mm512_mask_storeu_epi32(out, store, acc);
      return;
    }
    __m512i even = _mm512_mul_epi32(acc, mult);
    __m512i odd = _mm512_mul_epi32(_mm512_srli_epi64(acc, 32), mult_odd);
    even = _mm512_srav_epi64(_mm512_add_epi64(even, add_even), shift_even);
    odd = _mm512_srav_epi64(_mm512_add_epi64(odd, add_odd), shift_odd);
    if (residual) {
      __m512i e, o;
      res_rs(_mm512_maskz_loadu_epi32(real, res), &e, &o);
      even = _mm512_add_epi64(even, e);
      odd = _mm512_add_epi64(odd, o);
    }
    even = _mm512_max_epi64(_mm512_min_epi64(even, hi), lo);
    odd = _mm512_max_epi64(_mm512_min_epi64(odd, hi), lo);
    __m512i r = _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
    r = _mm512_mask_mov_epi32(zp, real, _mm512_add_epi32(r, zp));
    if (mode == OutMode::kU8) {
      _mm_mask_storeu_epi8(out, store, _mm512_cvtepi32_epi8(r));
      return;
    }
    _mm512_mask_storeu_epi32(out, store, r);
    if (copy) {
      __m512i e, o;
      copy_rs(r, &e, &o);
      e = _mm512_max_epi64(_mm512_min_epi64(e, copy_hi), copy_lo);
      o = _mm512_max_epi64(_mm512_min_epi64(o, copy_hi), copy_lo);
      _mm_mask_storeu_epi8(out2, real, _mm512_cvtepi32_epi8(_mm512_add_epi32(join(e, o), copy_zp)));
    }
  }
};

// A run of output pixels: consecutive in row-major order from (y, x), input pixels `astride`
// bytes apart starting at `a`.
struct Run {
  const uint8_t* a;
  int64_t astride;
  int y, x, count;
};

struct TileContext {
  const ConvArgs* args;
  const int32_t* koff;
  int groups;
  const uint8_t* panel;  // blocks × groups × 64 int8
  const Epilogue* epi;   // per block
};

template <int MR, int NB>
void tile(const TileContext& t, const uint8_t* a, int64_t astride, int y, int x) {
  __m512i acc[MR][NB];
  for (int m = 0; m < MR; ++m)
    for (int b = 0; b < NB; ++b) acc[m][b] = _mm512_setzero_si512();
  const int64_t pstride = static_cast<int64_t>(t.groups) * 64;
  for (int g = 0; g < t.groups; ++g) {
    const uint8_t* ap = a + t.koff[g];
    __m512i w[NB];
    for (int b = 0; b < NB; ++b) w[b] = _mm512_load_si512(t.panel + b * pstride + g * 64);
#pragma GCC unroll 24
    for (int m = 0; m < MR; ++m) {
      int32_t word;
      __builtin_memcpy(&word, ap + m * astride, 4);
      __m512i av = _mm512_set1_epi32(word);
      for (int b = 0; b < NB; ++b) acc[m][b] = _mm512_dpbusd_epi32(acc[m][b], av, w[b]);
    }
  }
  const ConvArgs& c = *t.args;
  const OutDesc& o = c.out;
  const int esize = o.mode == OutMode::kU8 ? 1 : 4;
  const bool fused = c.residual || c.out2.data;
  for (int m = 0; m < MR; ++m) {
    int px = x + m, py = y + px / c.ow;
    px %= c.ow;
    int64_t pixel = (static_cast<int64_t>(c.n) * o.hp + py + o.border) * o.wp + px + o.border;
    char* base = static_cast<char*>(o.data) + pixel * o.cp * esize;
    if (!fused) {
      for (int b = 0; b < NB; ++b)
        if (t.epi[b].store) t.epi[b](acc[m][b], base + (c.block0 + b) * kBlock * esize);
      continue;
    }
    const OutDesc& o2 = c.out2;
    int64_t pixel2 = (static_cast<int64_t>(c.n) * o2.hp + py + o2.border) * o2.wp + px + o2.border;
    for (int b = 0; b < NB; ++b) {
      if (!t.epi[b].store) continue;
      const int c0 = (c.block0 + b) * kBlock;
      t.epi[b](acc[m][b], base + c0 * esize, c.residual ? c.residual + pixel * o.cp + c0 : nullptr,
               o2.data ? static_cast<uint8_t*>(o2.data) + pixel2 * o2.cp + c0 : nullptr);
    }
  }
}

using TileFn = void (*)(const TileContext&, const uint8_t*, int64_t, int, int);
template <int NB>
constexpr int kRows = NB == 1   ? 24
                      : NB == 2 ? 12
                      : NB == 3 ? 8
                                : 6;

template <int NB, int... M>
constexpr std::array<TileFn, sizeof...(M)> tiles(std::integer_sequence<int, M...>) {
  return {&tile<M + 1, NB>...};
}
template <int NB>
const auto kTiles = tiles<NB>(std::make_integer_sequence<int, kRows<NB>>{});

template <int NB>
void run_rows(const TileContext& t, const Run& r) {
  constexpr int MR = kRows<NB>;
  int q = 0;
  for (; q + MR <= r.count; q += MR) tile<MR, NB>(t, r.a + q * r.astride, r.astride, r.y, r.x + q);
  if (q < r.count) kTiles<NB>[r.count - q - 1](t, r.a + q * r.astride, r.astride, r.y, r.x + q);
}

}  // namespace

double peak_loop_avx512vnni(int64_t iterations) {
  // 16 independent vpdpbusd chains: throughput, not latency, bounds the loop.
  __m512i acc[16];
  for (int i = 0; i < 16; ++i) acc[i] = _mm512_set1_epi32(i);
  const __m512i a = _mm512_set1_epi32(0x01020304), b = _mm512_set1_epi32(0x01FF01FF);
  for (int64_t it = 0; it < iterations; ++it)
    for (int i = 0; i < 16; ++i) {
      acc[i] = _mm512_dpbusd_epi32(acc[i], a, b);
      __asm__ volatile("" : "+v"(acc[i]));
    }
  __m512i sum = acc[0];
  for (int i = 1; i < 16; ++i) sum = _mm512_add_epi32(sum, acc[i]);
  return static_cast<double>(_mm512_reduce_add_epi32(sum));
}

void requantize_avx512vnni(const RequantizeArgs& r) {
  Rescale16 rs(r.rq);
  const __m512i lo = _mm512_set1_epi64(static_cast<int64_t>(r.lo) - r.zp);
  const __m512i hi = _mm512_set1_epi64(static_cast<int64_t>(r.hi) - r.zp);
  const __m512i zp = _mm512_set1_epi32(r.zp);
  for (int64_t p = 0; p < r.pixels; ++p) {
    const int32_t* src = r.in + p * r.c;
    uint8_t* dst = r.out + p * r.out_stride;
    for (int c = 0; c < r.c; c += 16) {
      const __mmask16 m = r.c - c >= 16 ? 0xffff : (1u << (r.c - c)) - 1;
      __m512i even, odd;
      rs(_mm512_maskz_loadu_epi32(m, src + c), &even, &odd);
      even = _mm512_max_epi64(_mm512_min_epi64(even, hi), lo);
      odd = _mm512_max_epi64(_mm512_min_epi64(odd, hi), lo);
      __m512i q = _mm512_add_epi32(join(even, odd), zp);
      _mm_mask_storeu_epi8(dst + c, m, _mm512_cvtepi32_epi8(q));
    }
  }
}

void quantize_input_avx512vnni(const QuantizeInputArgs& a) {
  const __m512 scale = _mm512_set1_ps(a.scale), big = _mm512_set1_ps(1e6f);
  const __m512i zp = _mm512_set1_epi32(a.zp), lo = _mm512_set1_epi32(a.lo),
                hi = _mm512_set1_epi32(a.hi);
  int64_t p = 0;
  for (; p + 16 <= a.pixels; p += 16) {
    __m512i packed = _mm512_setzero_si512();
    for (int c = 0; c < 4; ++c) {
      __m512i q = zp;
      if (c < a.c) {
        __m512 v = _mm512_div_ps(_mm512_loadu_ps(a.planes[c] + p), scale);
        v = _mm512_min_ps(_mm512_max_ps(v, _mm512_sub_ps(_mm512_setzero_ps(), big)), big);
        v = _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        q = _mm512_max_epi32(_mm512_min_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(v), zp), hi), lo);
      }
      packed = _mm512_or_si512(packed, _mm512_slli_epi32(q, 8 * c));
    }
    _mm512_storeu_si512(a.out + p * 4, packed);
  }
  QuantizeInputArgs rest = a;
  for (int c = 0; c < a.c; ++c) rest.planes[c] = a.planes[c] + p;
  rest.pixels = a.pixels - p;
  rest.out = a.out + p * 4;
  quantize_input_ref(rest);
}

void add_avx512vnni(const AddArgs& a) {
  Rescale16 r0(a.rq0), r1(a.rq1);
  const __m512i lo = _mm512_set1_epi64(a.lo), hi = _mm512_set1_epi64(a.hi);
  for (int64_t i = 0; i < a.count; i += 16) {
    const __mmask16 m = a.count - i >= 16 ? 0xffff : (1u << (a.count - i)) - 1;
    __m512i e0, o0, e1, o1;
    r0(_mm512_maskz_loadu_epi32(m, a.a + i), &e0, &o0);
    r1(_mm512_maskz_loadu_epi32(m, a.b + i), &e1, &o1);
    __m512i even = _mm512_max_epi64(_mm512_min_epi64(_mm512_add_epi64(e0, e1), hi), lo);
    __m512i odd = _mm512_max_epi64(_mm512_min_epi64(_mm512_add_epi64(o0, o1), hi), lo);
    _mm512_mask_storeu_epi32(a.out + i, m, join(even, odd));
  }
}

void conv_avx512vnni(const ConvArgs& c) {
  const int groups = c.k() / 4;
  const int64_t gbytes = group_bytes(c.bits);
  Unpacker unpack(c.bits);
  for (int b = 0; b < c.blocks; ++b) {
    const uint8_t* src = c.weights + (static_cast<int64_t>(c.block0 + b) * groups) * gbytes;
    uint8_t* dst = c.scratch + static_cast<int64_t>(b) * groups * 64;
    for (int g = 0; g < groups; ++g) _mm512_store_si512(dst + g * 64, unpack(src + g * gbytes));
  }
  // Tap offsets on the stack: this runs once per work item, on every layer of every batch.
  int32_t koff_small[512];
  std::vector<int32_t> koff_large(groups > 512 ? groups : 0);
  int32_t* koff = groups > 512 ? koff_large.data() : koff_small;
  const int c4 = c.icp / 4;
  for (int g = 0; g < groups; ++g) {
    int tap = g / c4, i = tap / c.kw, j = tap % c.kw;
    koff[g] = (i * c.iw + j) * c.icp + (g % c4) * 4;
  }
  Epilogue epi[kMaxBlocks] = {
      Epilogue(c.rq, c.out.mode, c.zpcorr, (c.block0 + 0) * kBlock, c.out.cp, c.oc),
      Epilogue(c.rq, c.out.mode, c.zpcorr, (c.block0 + (c.blocks > 1 ? 1 : 0)) * kBlock, c.out.cp,
               c.oc),
      Epilogue(c.rq, c.out.mode, c.zpcorr, (c.block0 + (c.blocks > 2 ? 2 : 0)) * kBlock, c.out.cp,
               c.oc),
      Epilogue(c.rq, c.out.mode, c.zpcorr, (c.block0 + (c.blocks > 3 ? 3 : 0)) * kBlock, c.out.cp,
               c.oc)};
  if (c.residual || c.out2.data)
    for (Epilogue& e : epi) e.fuse(c);
  TileContext t{&c, koff, groups, c.scratch, epi};
  auto run = [&](const Run& r) {
    switch (c.blocks) {
      case 1:
        run_rows<1>(t, r);
        break;
      case 2:
        run_rows<2>(t, r);
        break;
      case 3:
        run_rows<3>(t, r);
        break;
      default:
        run_rows<4>(t, r);
        break;
    }
  };
  const uint8_t* image = c.in + static_cast<int64_t>(c.n) * c.ih * c.iw * c.icp;
  if (c.kh == 1 && c.kw == 1 && c.stride == 1 && c.iw == c.ow && c.x0 == 0) {
    const uint8_t* a = image + static_cast<int64_t>(c.y0 + c.oh0) * c.iw * c.icp;
    run({a, c.icp, c.oh0, 0, (c.oh1 - c.oh0) * c.ow});
    return;
  }
  for (int y = c.oh0; y < c.oh1; ++y) {
    const uint8_t* a = image + (static_cast<int64_t>(c.y0 + y * c.stride) * c.iw + c.x0) * c.icp;
    run({a, static_cast<int64_t>(c.stride) * c.icp, y, 0, c.ow});
  }
}

void dwconv_avx512vnni(const DwconvArgs& d) {
  const int taps = d.kh * d.kw;
  const int cp64 = (d.c + 63) / 64 * 64;
  // Weights as int32 lanes holding (int16 w, 0) for vpdpwssd, [tap][cp64], and zp·Σw.
  int32_t* w = reinterpret_cast<int32_t*>(d.scratch);
  Unpacker unpack(d.bits);
  const int64_t gbytes = group_bytes(d.bits);
  for (int64_t g = 0; g < static_cast<int64_t>(taps) * cp64 / 64; ++g) {
    __m512i v = unpack(d.weights + g * gbytes);
    // The lane index of extracti32x4 is an immediate: spelled out, so every -O level compiles.
    const __m128i lanes[4] = {_mm512_extracti32x4_epi32(v, 0), _mm512_extracti32x4_epi32(v, 1),
                              _mm512_extracti32x4_epi32(v, 2), _mm512_extracti32x4_epi32(v, 3)};
    for (int q = 0; q < 4; ++q) {
      __m512i x = _mm512_cvtepi8_epi32(lanes[q]);
      _mm512_store_si512(w + g * 64 + q * 16, _mm512_and_si512(x, _mm512_set1_epi32(0xffff)));
    }
  }
  int32_t* zpc = w + static_cast<int64_t>(taps) * cp64;
  const __m512i zp_in = _mm512_set1_epi32(d.zp_in);
  for (int c = 0; c < cp64; c += 16) {
    __m512i sum = _mm512_setzero_si512();
    for (int t = 0; t < taps; ++t)
      sum = _mm512_add_epi32(
          sum, _mm512_srai_epi32(_mm512_slli_epi32(_mm512_load_si512(w + t * cp64 + c), 16), 16));
    _mm512_store_si512(zpc + c, _mm512_mullo_epi32(sum, zp_in));
  }
  int64_t toff[64];
  for (int t = 0; t < taps && t < 64; ++t) toff[t] = ((t / d.kw) * d.iw + t % d.kw) * d.icp;
  const int chunks = (d.out.cp + 15) / 16;
  const int esize = d.out.mode == OutMode::kU8 ? 1 : 4;
  const OutDesc& o = d.out;
  // Channel chunk outermost: one epilogue per chunk, pixels inside.
  for (int q = 0; q < chunks; ++q) {
    const int c0 = q * 16;
    const Epilogue epi(d.rq, d.out.mode, zpc, c0, d.out.cp, d.c);
    const int valid = d.icp - c0;
    const __mmask16 in_mask = valid >= 16 ? 0xffff : (1u << valid) - 1;
    for (int y = d.oh0; y < d.oh1; ++y) {
      const uint8_t* row =
          d.in + ((static_cast<int64_t>(d.n) * d.ih + d.y0 + y * d.stride) * d.iw + d.x0) * d.icp +
          c0;
      char* out =
          static_cast<char*>(o.data) +
          ((static_cast<int64_t>(d.n) * o.hp + y + o.border) * o.wp + o.border) * o.cp * esize +
          c0 * esize;
      // Four pixels at a time: four independent vpdpwssd chains instead of one.
      const int64_t step = static_cast<int64_t>(d.stride) * d.icp;
      int x = 0;
      for (; x + 4 <= d.ow; x += 4) {
        const uint8_t* a = row + x * step;
        __m512i acc0 = _mm512_setzero_si512(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
        for (int t = 0; t < taps; ++t) {
          const __m512i wt = _mm512_load_si512(w + t * cp64 + c0);
          const uint8_t* p = a + toff[t];
          acc0 =
              _mm512_dpwssd_epi32(acc0, _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(in_mask, p)), wt);
          acc1 = _mm512_dpwssd_epi32(
              acc1, _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(in_mask, p + step)), wt);
          acc2 = _mm512_dpwssd_epi32(
              acc2, _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(in_mask, p + 2 * step)), wt);
          acc3 = _mm512_dpwssd_epi32(
              acc3, _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(in_mask, p + 3 * step)), wt);
        }
        char* dst = out + static_cast<int64_t>(x) * o.cp * esize;
        const int64_t next = static_cast<int64_t>(o.cp) * esize;
        epi(acc0, dst);
        epi(acc1, dst + next);
        epi(acc2, dst + 2 * next);
        epi(acc3, dst + 3 * next);
      }
      for (; x < d.ow; ++x) {
        const uint8_t* a = row + x * step;
        __m512i acc = _mm512_setzero_si512();
        for (int t = 0; t < taps; ++t) {
          __m512i xv = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(in_mask, a + toff[t]));
          acc = _mm512_dpwssd_epi32(acc, xv, _mm512_load_si512(w + t * cp64 + c0));
        }
        epi(acc, out + static_cast<int64_t>(x) * o.cp * esize);
      }
    }
  }
}

}  // namespace mpq::runtime
