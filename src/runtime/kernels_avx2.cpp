// AVX2 kernels (compiled with -mavx2 -mfma): for CPUs without AVX-512 VNNI.
//
// The convolution picks its multiply from the widths it is given (ConvArgs::in_max, w_max):
// vpmaddubsw (u8 × s8, 32 multiply-adds per instruction) saturates its int16 pair sums unless
// 2·in_max·w_max ≤ 32767. Where S = 32767 / (2·in_max·w_max) >= 2 (weights of 6 bits or fewer
// on 8-bit activations; any weights on 4-bit ones), the int16 sums of S consecutive weight
// groups are added in int16 before one vpmaddwd(ones) widens them (W4A8: 8, W2A8: 32), so narrow
// weights cost about one multiply per 32 multiply-adds. Otherwise (W7, W8 on 8-bit activations)
// the panel is unpacked to int16 pairs for vpmaddwd, which is exact: two multiplies per 32. Every
// tile is 16 output channels × 4 pixels read straight from the bordered NHWC input; the
// requantization is requantize_ref's 64-bit arithmetic in vectors (32-bit where every shift is
// 32 or more), so results equal conv_ref bit for bit. The depthwise does the same on tap pairs.
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "kernels.h"

namespace mpq::runtime {
namespace {

// ---- 64-bit lane arithmetic AVX2 lacks -------------------------------------------------------

__m256i sra64(__m256i x, __m256i count) {  // arithmetic shift right, per-lane counts
  const __m256i sign = _mm256_cmpgt_epi64(_mm256_setzero_si256(), x);
  return _mm256_xor_si256(_mm256_srlv_epi64(_mm256_xor_si256(x, sign), count), sign);
}
__m256i clamp64(__m256i x, __m256i lo, __m256i hi) {
  x = _mm256_blendv_epi8(x, hi, _mm256_cmpgt_epi64(x, hi));
  return _mm256_blendv_epi8(x, lo, _mm256_cmpgt_epi64(lo, x));
}
// 8 int32 lanes from the 64-bit results of the even (low halves) and odd lanes.
__m256i join(__m256i even, __m256i odd) {
  return _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
}
// Lanes [0, n) all ones.
__m256i lanes(int n) {
  n = n < 0 ? 0 : n > 8 ? 8 : n;
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
// 8 int32 lanes to and from memory, the first n of them: a plain load or store when n is 8
// (vpmaskmovd stores are microcoded and slow on AMD cores).
__m256i load_lanes(const int32_t* p, int n, __m256i mask) {
  return n == 8 ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))
                : _mm256_maskload_epi32(p, mask);
}
void store_lanes(int32_t* p, int n, __m256i mask, __m256i v) {
  if (n == 8)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v);
  else
    _mm256_maskstore_epi32(p, mask, v);
}
// The low bytes of 8 int32 lanes holding 0..255, stored as n <= 8 bytes.
void store_u8(uint8_t* dst, __m256i v, int n) {
  __m256i b = _mm256_packus_epi16(_mm256_packs_epi32(v, v), v);  // bytes 0-3 of each lane
  b = _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 0, 0, 0, 0, 0, 0));
  const int64_t word = _mm_cvtsi128_si64(_mm256_castsi256_si128(b));
  if (n >= 8)
    std::memcpy(dst, &word, 8);
  else if (n > 0)
    std::memcpy(dst, &word, n);
}

// The high 32 bits of the 64-bit lanes even (from int32 lanes 0, 2, ..) and odd (1, 3, ..), as
// 8 int32 lanes in order.
__m256i high_halves(__m256i even, __m256i odd) {
  return _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
}
// clamp(a + b, lo, hi) of int32 lanes, exact where a + b leaves int32 (lo, hi are int32).
__m256i add_clamp32(__m256i a, __m256i b, __m256i lo, __m256i hi) {
  const __m256i sum = _mm256_add_epi32(a, b);
  const __m256i overflow =
      _mm256_srai_epi32(_mm256_andnot_si256(_mm256_xor_si256(a, b), _mm256_xor_si256(a, sum)), 31);
  const __m256i clamped = _mm256_max_epi32(_mm256_min_epi32(sum, hi), lo);
  return _mm256_blendv_epi8(clamped, _mm256_blendv_epi8(hi, lo, a), overflow);
}

// A Rescale on 8 int32 lanes. (v·mult + add) >> shift is formed in 64 bits; with shift >= 32
// (every multiplier below 1/2) it is the high half shifted by shift − 32 in 32 bits, which is
// exact and fits int32. Otherwise the 64-bit lanes come out as even and odd halves.
struct Rescale8 {
  __m256i mult, add;
  __m128i shift, shift32;
  bool id, fast;
  explicit Rescale8(const Rescale& r)
      : mult(_mm256_set1_epi64x(r.mult)),
        add(_mm256_set1_epi64x(r.add)),
        shift(_mm_cvtsi32_si128(r.shift)),
        shift32(_mm_cvtsi32_si128(r.shift - 32)),
        id(r.mult == 1 && r.shift == 0 && r.add == 0),
        fast(r.shift >= 32) {}
  __m256i sra(__m256i x) const {
    const __m256i sign = _mm256_cmpgt_epi64(_mm256_setzero_si256(), x);
    return _mm256_xor_si256(_mm256_srl_epi64(_mm256_xor_si256(x, sign), shift), sign);
  }
  void operator()(__m256i v, __m256i* even, __m256i* odd) const {
    *even = sra(_mm256_add_epi64(_mm256_mul_epi32(v, mult), add));
    *odd = sra(_mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(v, 32), mult), add));
  }
  // Only with `fast` or `id`: the 8 results as int32.
  __m256i int32(__m256i v) const {
    if (id) return v;
    const __m256i even = _mm256_add_epi64(_mm256_mul_epi32(v, mult), add);
    const __m256i odd = _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(v, 32), mult), add);
    return _mm256_sra_epi32(high_halves(even, odd), shift32);
  }
  bool int32_exact() const { return id || fast; }
};

// The requantization of 8 channels starting at c0 (requantize_ref, conv_store_ref).
struct Epilogue8 {
  OutMode mode = OutMode::kU8;
  __m256i zpcorr, mult, mult_odd, add_even, add_odd, shift_even, shift_odd, lo, hi, zp, real;
  // fast: every shift >= 32 and the clamp bounds are int32 (see Rescale8).
  __m256i shift32, lo32, hi32;
  bool fast = false;
  // Lanes that are channels (< oc), and lanes a uint8 output stores (< cp: beyond oc, zp).
  // As conv_store_ref, an int32 output is written for real channels only.
  int nreal = 0, store = 0;
  // A residual added before the clamp and a uint8 copy of the result (ConvArgs).
  bool residual = false, copy = false;
  Rescale8 res_rs{Rescale{}}, copy_rs{Rescale{}};
  __m256i copy_lo, copy_hi, copy_zp, copy_lo32, copy_hi32;

  Epilogue8() = default;
  Epilogue8(const Requant& rq, OutMode m, const int32_t* zpc, int c0, int cp, int oc) : mode(m) {
    store = std::min(8, std::max(0, cp - c0));
    const int n = nreal = std::min(8, std::max(0, oc - c0));
    real = lanes(n);
    alignas(32) int32_t z[8] = {}, mu[8] = {}, sh[8] = {}, sh32[8] = {};
    alignas(32) int64_t ad[8] = {};
    fast = mode != OutMode::kRaw;
    for (int i = 0; i < n; ++i) {
      z[i] = zpc ? zpc[c0 + i] : 0;
      if (mode == OutMode::kRaw) continue;
      mu[i] = rq.mult[c0 + i], sh[i] = rq.shift[c0 + i], ad[i] = rq.add[c0 + i];
      sh32[i] = sh[i] - 32;
      fast = fast && sh[i] >= 32;
    }
    zpcorr = _mm256_load_si256(reinterpret_cast<const __m256i*>(z));
    mult = _mm256_load_si256(reinterpret_cast<const __m256i*>(mu));
    mult_odd = _mm256_srli_epi64(mult, 32);
    add_even = _mm256_setr_epi64x(ad[0], ad[2], ad[4], ad[6]);
    add_odd = _mm256_setr_epi64x(ad[1], ad[3], ad[5], ad[7]);
    shift_even = _mm256_setr_epi64x(sh[0], sh[2], sh[4], sh[6]);
    shift_odd = _mm256_setr_epi64x(sh[1], sh[3], sh[5], sh[7]);
    shift32 = _mm256_load_si256(reinterpret_cast<const __m256i*>(sh32));
    const int64_t l = static_cast<int64_t>(rq.lo) - rq.zp, h = static_cast<int64_t>(rq.hi) - rq.zp;
    lo = _mm256_set1_epi64x(l);
    hi = _mm256_set1_epi64x(h);
    fast = fast && l >= INT32_MIN && h <= INT32_MAX;
    lo32 = _mm256_set1_epi32(static_cast<int32_t>(std::max<int64_t>(l, INT32_MIN)));
    hi32 = _mm256_set1_epi32(static_cast<int32_t>(std::min<int64_t>(h, INT32_MAX)));
    zp = _mm256_set1_epi32(rq.zp);
  }
  void fuse(const ConvArgs& c) {
    residual = c.residual != nullptr;
    copy = c.out2.data != nullptr;
    res_rs = Rescale8(c.res_rq);
    copy_rs = Rescale8(c.out2_rq);
    const int64_t l = int64_t{c.out2_lo} - c.out2_zp, h = int64_t{c.out2_hi} - c.out2_zp;
    copy_lo = _mm256_set1_epi64x(l);
    copy_hi = _mm256_set1_epi64x(h);
    copy_zp = _mm256_set1_epi32(c.out2_zp);
    copy_lo32 = _mm256_set1_epi32(static_cast<int32_t>(std::max<int64_t>(l, INT32_MIN)));
    copy_hi32 = _mm256_set1_epi32(static_cast<int32_t>(std::min<int64_t>(h, INT32_MAX)));
    fast =
        fast && res_rs.int32_exact() && copy_rs.int32_exact() && l >= INT32_MIN && h <= INT32_MAX;
  }

  // acc: the 8 channel sums; out: channel c0 of the output pixel (uint8 or int32).
  void operator()(__m256i acc, void* out, const int32_t* res = nullptr,
                  uint8_t* out2 = nullptr) const {
    if (!store) return;
    acc = _mm256_sub_epi32(acc, zpcorr);
    if (mode == OutMode::kRaw) {
      store_lanes(static_cast<int32_t*>(out), nreal, real, acc);
      return;
    }
    __m256i even = _mm256_add_epi64(_mm256_mul_epi32(acc, mult), add_even);
    __m256i odd = _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(acc, 32), mult_odd), add_odd);
    __m256i r;
    if (fast) {
      r = _mm256_srav_epi32(high_halves(even, odd), shift32);
      r = residual ? add_clamp32(r, res_rs.int32(load_lanes(res, nreal, real)), lo32, hi32)
                   : _mm256_max_epi32(_mm256_min_epi32(r, hi32), lo32);
    } else {
      even = sra64(even, shift_even);
      odd = sra64(odd, shift_odd);
      if (residual) {
        __m256i e, o;
        res_rs(load_lanes(res, nreal, real), &e, &o);
        even = _mm256_add_epi64(even, e);
        odd = _mm256_add_epi64(odd, o);
      }
      r = join(clamp64(even, lo, hi), clamp64(odd, lo, hi));
    }
    r = _mm256_blendv_epi8(zp, _mm256_add_epi32(r, zp), real);
    if (mode == OutMode::kU8) {
      store_u8(static_cast<uint8_t*>(out), r, store);
      return;
    }
    store_lanes(static_cast<int32_t*>(out), nreal, real, r);
    if (copy && out2) {
      __m256i q;
      if (fast) {
        q = _mm256_max_epi32(_mm256_min_epi32(copy_rs.int32(r), copy_hi32), copy_lo32);
      } else {
        __m256i e, o;
        copy_rs(r, &e, &o);
        q = join(clamp64(e, copy_lo, copy_hi), clamp64(o, copy_lo, copy_hi));
      }
      store_u8(out2, _mm256_add_epi32(q, copy_zp), nreal);
    }
  }
};

// The requantization of 16 channels to uint8 where every shift is >= 32 (the common case): the
// 32-bit results of Rescale8's fast path, then saturated to int16 (the clamp bounds lie within
// ±255, so saturation keeps every comparison), clamped, offset and packed in int16 lanes.
// Lane j of the first vector is channel chan[j], of the second chan[8 + j] (from c0); `permute`:
// the two vectors are channels 0-7 and 8-15 (a conv), else 0-3, 8-11 and 4-7, 12-15
// (the depthwise's unpacklo/unpackhi order), which vpackssdw puts in order by itself.
// Lanes beyond oc get zero multipliers and the clamp [0, 0]: they hold zp, as conv_store_ref.
struct Epilogue16 {
  __m256i zpcorr[2], mult[2], mult_odd[2], add_even[2], add_odd[2], shift32[2];
  __m256i lo, hi, zp;  // int16, channel order
  int store = 0;       // channels stored (< cp − c0)
  bool permute = true, ok = false;

  static constexpr int kInOrder[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  static constexpr int kUnpackOrder[16] = {0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 12, 13, 14, 15};

  Epilogue16(const Requant& rq, const int32_t* zpc, int c0, int cp, int oc, bool in_order)
      : permute(in_order) {
    store = std::min(16, std::max(0, cp - c0));
    const int* chan = in_order ? kInOrder : kUnpackOrder;
    alignas(32) int32_t z[16] = {}, mu[16] = {}, sh[16] = {};
    alignas(32) int64_t ad[16] = {};
    alignas(32) int16_t l[16] = {}, h[16] = {};
    const int64_t lo64 = static_cast<int64_t>(rq.lo) - rq.zp,
                  hi64 = static_cast<int64_t>(rq.hi) - rq.zp;
    ok = lo64 >= -32768 && hi64 <= 32767 && lo64 <= 0 && hi64 >= 0;
    for (int j = 0; j < 16; ++j) {
      const int c = c0 + chan[j];
      if (c >= oc) continue;  // zero multiplier, clamp [0, 0]
      z[j] = zpc ? zpc[c] : 0;
      mu[j] = rq.mult[c], sh[j] = rq.shift[c] - 32, ad[j] = rq.add[c];
      ok = ok && rq.shift[c] >= 32;
    }
    for (int i = 0; i < 16; ++i) {  // int16 lanes are in channel order
      const bool real = c0 + i < oc;
      l[i] = static_cast<int16_t>(real ? std::max<int64_t>(lo64, -32768) : 0);
      h[i] = static_cast<int16_t>(real ? std::min<int64_t>(hi64, 32767) : 0);
    }
    for (int v = 0; v < 2; ++v) {
      zpcorr[v] = _mm256_load_si256(reinterpret_cast<const __m256i*>(z + 8 * v));
      mult[v] = _mm256_load_si256(reinterpret_cast<const __m256i*>(mu + 8 * v));
      mult_odd[v] = _mm256_srli_epi64(mult[v], 32);
      const int64_t* a = ad + 8 * v;
      add_even[v] = _mm256_setr_epi64x(a[0], a[2], a[4], a[6]);
      add_odd[v] = _mm256_setr_epi64x(a[1], a[3], a[5], a[7]);
      shift32[v] = _mm256_load_si256(reinterpret_cast<const __m256i*>(sh + 8 * v));
    }
    lo = _mm256_load_si256(reinterpret_cast<const __m256i*>(l));
    hi = _mm256_load_si256(reinterpret_cast<const __m256i*>(h));
    zp = _mm256_set1_epi16(static_cast<int16_t>(rq.zp));
  }
  __attribute__((always_inline)) __m256i rescale(int v, __m256i acc) const {
    acc = _mm256_sub_epi32(acc, zpcorr[v]);
    const __m256i even = _mm256_add_epi64(_mm256_mul_epi32(acc, mult[v]), add_even[v]);
    const __m256i odd =
        _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(acc, 32), mult_odd[v]), add_odd[v]);
    return _mm256_srav_epi32(high_halves(even, odd), shift32[v]);
  }
  __attribute__((always_inline)) void operator()(__m256i a, __m256i b, uint8_t* out) const {
    __m256i v = _mm256_packs_epi32(rescale(0, a), rescale(1, b));
    if (permute) v = _mm256_permute4x64_epi64(v, 0xD8);
    v = _mm256_add_epi16(_mm256_max_epi16(_mm256_min_epi16(v, hi), lo), zp);
    const __m128i bytes =
        _mm256_castsi256_si128(_mm256_permute4x64_epi64(_mm256_packus_epi16(v, v), 0x08));
    if (store == 16) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out), bytes);
    } else if (store > 0) {
      alignas(16) uint8_t tmp[16];
      _mm_store_si128(reinterpret_cast<__m128i*>(tmp), bytes);
      std::memcpy(out, tmp, store);
    }
  }
};

// ---- weight unpacking ------------------------------------------------------------------------

// `groups` groups of 64 values bit-packed LSB-first at `bits` (8·bits bytes each) -> int8.
void unpack_groups(const uint8_t* src, int bits, int64_t groups, int8_t* dst) {
  if (bits == 8) {
    std::memcpy(dst, src, static_cast<size_t>(groups) * 64);
    return;
  }
  if (bits == 4 || bits == 2) {
    const __m128i sign = _mm_set1_epi8(static_cast<char>(1 << (bits - 1)));
    const __m128i mask = _mm_set1_epi8(static_cast<char>((1 << bits) - 1));
    auto extend = [&](__m128i v) { return _mm_sub_epi8(_mm_xor_si128(v, sign), sign); };
    for (int64_t g = 0; g < groups; ++g, src += 8 * bits, dst += 64) {
      __m128i* out = reinterpret_cast<__m128i*>(dst);
      if (bits == 4) {
        for (int h = 0; h < 2; ++h) {
          const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 16 * h));
          const __m128i lo = _mm_and_si128(x, mask), hi = _mm_and_si128(_mm_srli_epi16(x, 4), mask);
          _mm_storeu_si128(out + 2 * h, extend(_mm_unpacklo_epi8(lo, hi)));
          _mm_storeu_si128(out + 2 * h + 1, extend(_mm_unpackhi_epi8(lo, hi)));
        }
        continue;
      }
      const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src));
      const __m128i b0 = _mm_and_si128(x, mask), b1 = _mm_and_si128(_mm_srli_epi16(x, 2), mask);
      const __m128i b2 = _mm_and_si128(_mm_srli_epi16(x, 4), mask);
      const __m128i b3 = _mm_and_si128(_mm_srli_epi16(x, 6), mask);
      const __m128i p01lo = _mm_unpacklo_epi8(b0, b1), p23lo = _mm_unpacklo_epi8(b2, b3);
      const __m128i p01hi = _mm_unpackhi_epi8(b0, b1), p23hi = _mm_unpackhi_epi8(b2, b3);
      _mm_storeu_si128(out + 0, extend(_mm_unpacklo_epi16(p01lo, p23lo)));
      _mm_storeu_si128(out + 1, extend(_mm_unpackhi_epi16(p01lo, p23lo)));
      _mm_storeu_si128(out + 2, extend(_mm_unpacklo_epi16(p01hi, p23hi)));
      _mm_storeu_si128(out + 3, extend(_mm_unpackhi_epi16(p01hi, p23hi)));
    }
    return;
  }
  // Any other width: every int16 lane takes the two bytes holding its value (vpshufb; each
  // 128-bit lane starts at the byte where its 8 values start), shifts the value to the top
  // (vpmullw by a power of two) and back down with its sign (vpsraw).
  alignas(32) int8_t pick[32];
  alignas(32) int16_t mul[16];
  for (int t = 0; t < 8; ++t) {
    const int bit = t * bits, byte = bit >> 3, off = bit & 7;
    for (int lane = 0; lane < 2; ++lane) {
      pick[16 * lane + 2 * t] = static_cast<int8_t>(byte);
      pick[16 * lane + 2 * t + 1] = static_cast<int8_t>(byte + 1);
      mul[8 * lane + t] = static_cast<int16_t>(1 << (16 - off - bits));
    }
  }
  const __m256i shuffle = _mm256_load_si256(reinterpret_cast<const __m256i*>(pick));
  const __m256i scale = _mm256_load_si256(reinterpret_cast<const __m256i*>(mul));
  const __m128i down = _mm_cvtsi32_si128(16 - bits);
  const auto sixteen = [&](const uint8_t* p) {  // values 0..15 from p (the next 2·bits bytes)
    const __m256i raw = _mm256_loadu2_m128i(reinterpret_cast<const __m128i*>(p + bits),
                                            reinterpret_cast<const __m128i*>(p));
    return _mm256_sra_epi16(_mm256_mullo_epi16(_mm256_shuffle_epi8(raw, shuffle), scale), down);
  };
  for (int64_t g = 0; g < groups; ++g, src += 8 * bits, dst += 64)
    for (int h = 0; h < 2; ++h) {
      const __m256i v0 = sixteen(src + 4 * h * bits), v1 = sixteen(src + (4 * h + 2) * bits);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 32 * h),
                          _mm256_permute4x64_epi64(_mm256_packs_epi16(v0, v1), 0xD8));
    }
}

// ---- convolution -----------------------------------------------------------------------------

enum class Mac {
  kInt16,  // vpmaddubsw sums of S >= 2 groups added in int16, then one vpmaddwd(ones)
  kWide,   // int16 pairs and vpmaddwd: exact for any u8 × s8 (with S = 1, vpmaddubsw and a
           // vpmaddwd(ones) every group measured slower: W7A8 7.3 ms vs W8A8 5.9 on resnet20)
};

struct TileContext {
  const ConvArgs* args;
  const int32_t* koff;
  int groups, steps;        // steps: groups summed in int16 (kInt16)
  const void* panel;        // one block: groups × 64 int8, or groups × 64 int16 pairs (kWide)
  const Epilogue8* epi;     // the block's two halves
  const Epilogue16* epi16;  // non-null: the block's uint8 output in one (Epilogue16)
  int block;
};

// Stores an output pixel's 16 channel sums (acc[0]: channels 0-7, acc[1]: 8-15) at (y, x).
void store_pixel(const TileContext& t, const __m256i* acc, int y, int x) {
  const ConvArgs& c = *t.args;
  const OutDesc& o = c.out;
  const int esize = o.mode == OutMode::kU8 ? 1 : 4;
  const int64_t pixel = (static_cast<int64_t>(c.n) * o.hp + y + o.border) * o.wp + x + o.border;
  const int c0 = t.block * kBlock;
  char* base = static_cast<char*>(o.data) + (pixel * o.cp + c0) * esize;
  if (t.epi16) {
    (*t.epi16)(acc[0], acc[1], reinterpret_cast<uint8_t*>(base));
    return;
  }
  if (!c.residual && !c.out2.data) {
    t.epi[0](acc[0], base);
    t.epi[1](acc[1], base + 8 * esize);
    return;
  }
  const OutDesc& o2 = c.out2;
  const int64_t pixel2 =
      (static_cast<int64_t>(c.n) * o2.hp + y + o2.border) * o2.wp + x + o2.border;
  const int32_t* res = c.residual ? c.residual + pixel * o.cp + c0 : nullptr;
  uint8_t* copy = o2.data ? static_cast<uint8_t*>(o2.data) + pixel2 * o2.cp + c0 : nullptr;
  t.epi[0](acc[0], base, res, copy);
  t.epi[1](acc[1], base + 8 * esize, res ? res + 8 : nullptr, copy ? copy + 8 : nullptr);
}

template <int MR, Mac kMac>
void tile(const TileContext& t, const uint8_t* a, int64_t astride, int y, int x) {
  __m256i acc[MR][2];
  for (int m = 0; m < MR; ++m) acc[m][0] = acc[m][1] = _mm256_setzero_si256();
  const __m256i ones = _mm256_set1_epi16(1);
  if constexpr (kMac == Mac::kWide) {
    // Activation pairs (k0, k1) and (k2, k3) as int16 in every int32 lane.
    const __m256i pick01 = _mm256_set1_epi32(static_cast<int>(0x80018000u));
    const __m256i pick23 = _mm256_set1_epi32(static_cast<int>(0x80038002u));
    const int16_t* panel = static_cast<const int16_t*>(t.panel);
    // Named sums, as the int8 tile below.
    __m256i c00 = acc[0][0], c01 = acc[0][1], c10 = acc[MR > 1][0], c11 = acc[MR > 1][1];
    __m256i c20 = acc[MR > 2 ? 2 : 0][0], c21 = acc[MR > 2 ? 2 : 0][1];
    __m256i c30 = acc[MR > 3 ? 3 : 0][0], c31 = acc[MR > 3 ? 3 : 0][1];
    for (int g = 0; g < t.groups; ++g) {
      const __m256i* w = reinterpret_cast<const __m256i*>(panel + static_cast<int64_t>(g) * 64);
      const __m256i w0 = _mm256_load_si256(w), w1 = _mm256_load_si256(w + 1);
      const __m256i w2 = _mm256_load_si256(w + 2), w3 = _mm256_load_si256(w + 3);
      const uint8_t* ap = a + t.koff[g];
      const auto step = [&](int m, __m256i& lo, __m256i& hi) {
        int32_t word;
        std::memcpy(&word, ap + m * astride, 4);
        const __m256i av = _mm256_set1_epi32(word);
        const __m256i p01 = _mm256_shuffle_epi8(av, pick01), p23 = _mm256_shuffle_epi8(av, pick23);
        lo = _mm256_add_epi32(
            lo, _mm256_add_epi32(_mm256_madd_epi16(p01, w0), _mm256_madd_epi16(p23, w2)));
        hi = _mm256_add_epi32(
            hi, _mm256_add_epi32(_mm256_madd_epi16(p01, w1), _mm256_madd_epi16(p23, w3)));
      };
      step(0, c00, c01);
      if constexpr (MR > 1) step(1, c10, c11);
      if constexpr (MR > 2) step(2, c20, c21);
      if constexpr (MR > 3) step(3, c30, c31);
    }
    acc[0][0] = c00, acc[0][1] = c01;
    if constexpr (MR > 1) acc[MR > 1][0] = c10, acc[MR > 1][1] = c11;
    if constexpr (MR > 2) acc[MR > 2 ? 2 : 0][0] = c20, acc[MR > 2 ? 2 : 0][1] = c21;
    if constexpr (MR > 3) acc[MR > 3 ? 3 : 0][0] = c30, acc[MR > 3 ? 3 : 0][1] = c31;
  } else {
    const int8_t* panel = static_cast<const int8_t*>(t.panel);
    const int steps = t.steps;
    // The int32 sums wait in memory (the barrier below): the registers hold the int16 sums of
    // 2·MR vectors, the weights and the activation.
    alignas(32) int32_t total[MR][16];
    for (int g0 = 0; g0 < t.groups; g0 += steps) {
      const int g1 = std::min(t.groups, g0 + steps);
      __m256i sum[MR][2];
      for (int m = 0; m < MR; ++m) sum[m][0] = sum[m][1] = _mm256_setzero_si256();
      if constexpr (MR == 4) {
        // Named sums: gcc keeps them in registers (an array costs a copy of each every group).
        __m256i s00 = sum[0][0], s01 = sum[0][1], s10 = sum[1][0], s11 = sum[1][1];
        __m256i s20 = sum[2][0], s21 = sum[2][1], s30 = sum[3][0], s31 = sum[3][1];
        const int64_t as = astride;
        for (int g = g0; g < g1; ++g) {
          const __m256i* w = reinterpret_cast<const __m256i*>(panel + static_cast<int64_t>(g) * 64);
          const __m256i w0 = _mm256_load_si256(w), w1 = _mm256_load_si256(w + 1);
          const uint8_t* ap = a + t.koff[g];
          int32_t word;
          std::memcpy(&word, ap, 4);
          __m256i av = _mm256_set1_epi32(word);
          s00 = _mm256_add_epi16(s00, _mm256_maddubs_epi16(av, w0));
          s01 = _mm256_add_epi16(s01, _mm256_maddubs_epi16(av, w1));
          std::memcpy(&word, ap + as, 4);
          av = _mm256_set1_epi32(word);
          s10 = _mm256_add_epi16(s10, _mm256_maddubs_epi16(av, w0));
          s11 = _mm256_add_epi16(s11, _mm256_maddubs_epi16(av, w1));
          std::memcpy(&word, ap + 2 * as, 4);
          av = _mm256_set1_epi32(word);
          s20 = _mm256_add_epi16(s20, _mm256_maddubs_epi16(av, w0));
          s21 = _mm256_add_epi16(s21, _mm256_maddubs_epi16(av, w1));
          std::memcpy(&word, ap + 3 * as, 4);
          av = _mm256_set1_epi32(word);
          s30 = _mm256_add_epi16(s30, _mm256_maddubs_epi16(av, w0));
          s31 = _mm256_add_epi16(s31, _mm256_maddubs_epi16(av, w1));
        }
        sum[0][0] = s00, sum[0][1] = s01, sum[1][0] = s10, sum[1][1] = s11;
        sum[2][0] = s20, sum[2][1] = s21, sum[3][0] = s30, sum[3][1] = s31;
      } else {
        for (int g = g0; g < g1; ++g) {
          const __m256i* w = reinterpret_cast<const __m256i*>(panel + static_cast<int64_t>(g) * 64);
          const __m256i w0 = _mm256_load_si256(w), w1 = _mm256_load_si256(w + 1);
          const uint8_t* ap = a + t.koff[g];
          for (int m = 0; m < MR; ++m) {
            int32_t word;
            std::memcpy(&word, ap + m * astride, 4);
            const __m256i av = _mm256_set1_epi32(word);
            sum[m][0] = _mm256_add_epi16(_mm256_maddubs_epi16(av, w0), sum[m][0]);
            sum[m][1] = _mm256_add_epi16(_mm256_maddubs_epi16(av, w1), sum[m][1]);
          }
        }
      }
      if (g0 == 0 && g1 == t.groups) {  // one run of groups: no memory
        for (int m = 0; m < MR; ++m) {
          acc[m][0] = _mm256_madd_epi16(sum[m][0], ones);
          acc[m][1] = _mm256_madd_epi16(sum[m][1], ones);
        }
        break;
      }
      for (int m = 0; m < MR; ++m)
        for (int h = 0; h < 2; ++h) {
          __m256i* p = reinterpret_cast<__m256i*>(total[m] + 8 * h);
          const __m256i wide = _mm256_madd_epi16(sum[m][h], ones);
          _mm256_store_si256(p, g0 == 0 ? wide : _mm256_add_epi32(_mm256_load_si256(p), wide));
        }
      __asm__ volatile("" : : "r"(&total[0][0]) : "memory");
    }
    if (t.groups > steps)
      for (int m = 0; m < MR; ++m)
        for (int h = 0; h < 2; ++h)
          acc[m][h] = _mm256_load_si256(reinterpret_cast<const __m256i*>(total[m] + 8 * h));
  }
  // Consecutive pixels in row-major order from (y, x < ow).
  const ConvArgs& c = *t.args;
  if (t.epi16) {
    const OutDesc& o = c.out;
    const auto at = [&](int yy, int xx) {
      return static_cast<uint8_t*>(o.data) +
             ((static_cast<int64_t>(c.n) * o.hp + yy + o.border) * o.wp + xx + o.border) * o.cp +
             t.block * kBlock;
    };
    uint8_t* dst = at(y, x);
    for (int m = 0; m < MR; ++m) {
      (*t.epi16)(acc[m][0], acc[m][1], dst);
      dst += o.cp;
      if (++x == c.ow) x = 0, ++y, dst = at(y, x);
    }
    return;
  }
  for (int m = 0; m < MR; ++m) {
    store_pixel(t, acc[m], y, x);
    if (++x == c.ow) x = 0, ++y;
  }
}

using TileFn = void (*)(const TileContext&, const uint8_t*, int64_t, int, int);
template <Mac kMac>
constexpr int kRows = 4;  // the named sums of tile() are for 4 pixels

template <Mac kMac, int... M>
constexpr std::array<TileFn, sizeof...(M)> tiles(std::integer_sequence<int, M...>) {
  return {&tile<M + 1, kMac>...};
}
template <Mac kMac>
const auto kTiles = tiles<kMac>(std::make_integer_sequence<int, kRows<kMac>>{});

// `count` output pixels, consecutive in row-major order from (y, x < ow), input pixels
// `astride` bytes apart from `a`.
template <Mac kMac>
void run_pixels(const TileContext& t, const uint8_t* a, int64_t astride, int y, int x, int count) {
  constexpr int MR = kRows<kMac>;
  const int ow = t.args->ow;
  int q = 0;
  for (; q + MR <= count; q += MR) {
    tile<MR, kMac>(t, a + q * astride, astride, y, x);
    for (x += MR; x >= ow;) x -= ow, ++y;
  }
  if (q < count) kTiles<kMac>[count - q - 1](t, a + q * astride, astride, y, x);
}

template <Mac kMac>
void conv_block(const TileContext& t) {
  const ConvArgs& c = *t.args;
  const uint8_t* image = c.in + static_cast<int64_t>(c.n) * c.ih * c.iw * c.icp;
  if (c.kh == 1 && c.kw == 1 && c.stride == 1 && c.iw == c.ow && c.x0 == 0) {
    const uint8_t* a = image + static_cast<int64_t>(c.y0 + c.oh0) * c.iw * c.icp;
    run_pixels<kMac>(t, a, c.icp, c.oh0, 0, (c.oh1 - c.oh0) * c.ow);
    return;
  }
  for (int y = c.oh0; y < c.oh1; ++y) {
    const uint8_t* a = image + (static_cast<int64_t>(c.y0 + y * c.stride) * c.iw + c.x0) * c.icp;
    run_pixels<kMac>(t, a, static_cast<int64_t>(c.stride) * c.icp, y, 0, c.ow);
  }
}

}  // namespace

double peak_loop_avx2(int64_t iterations) {
  // 12 independent vpmaddubsw chains (32 multiply-adds each), each feeding its own next input:
  // with constant operands the compiler folds the multiply away and times the adds.
  __m256i acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_epi16(static_cast<int16_t>(i + 1));
  __m256i b = _mm256_set1_epi32(0x00010001);
  __asm__ volatile("" : "+x"(b));
  for (int64_t it = 0; it < iterations; ++it)
    for (int i = 0; i < 12; ++i) {
      acc[i] = _mm256_maddubs_epi16(acc[i], b);
      __asm__ volatile("" : "+x"(acc[i]));
    }
  __m256i sum = acc[0];
  for (int i = 1; i < 12; ++i) sum = _mm256_add_epi16(sum, acc[i]);
  alignas(32) int16_t v[16];
  _mm256_store_si256(reinterpret_cast<__m256i*>(v), sum);
  return v[0];
}

int conv_int16_steps_avx2(int in_max, int w_max) {
  const int64_t pair = 2 * static_cast<int64_t>(std::max(in_max, 1)) * std::max(w_max, 1);
  return static_cast<int>(std::min<int64_t>(32767 / pair, 1 << 20));
}

void conv_avx2(const ConvArgs& c) {
  const int groups = c.k() / 4;
  const int64_t gbytes = group_bytes(c.bits);
  const int steps = conv_int16_steps_avx2(c.in_max, c.w_max);
  const Mac mac = steps >= 2 ? Mac::kInt16 : Mac::kWide;
  // Tap offsets on the stack: this runs once per work item, on every layer of every batch.
  int32_t koff_small[512];
  std::vector<int32_t> koff_large(groups > 512 ? groups : 0);
  int32_t* koff = groups > 512 ? koff_large.data() : koff_small;
  const int c4 = c.icp / 4;
  for (int g = 0; g < groups; ++g) {
    const int tap = g / c4;
    koff[g] = ((tap / c.kw) * c.iw + tap % c.kw) * c.icp + (g % c4) * 4;
  }
  int8_t* panel8 = reinterpret_cast<int8_t*>(c.scratch);  // one block: groups × 64 int8
  int16_t* panel16 = reinterpret_cast<int16_t*>(c.scratch + static_cast<int64_t>(groups) * 64);
  for (int b = c.block0; b < c.block0 + c.blocks; ++b) {
    unpack_groups(c.weights + static_cast<int64_t>(b) * groups * gbytes, c.bits, groups, panel8);
    const void* panel = panel8;
    if (mac == Mac::kWide) {  // [g][pair 0: 16 channels × (k0, k1)][pair 1: × (k2, k3)]
      for (int g = 0; g < groups; ++g)
        for (int ch = 0; ch < kBlock; ++ch)
          for (int k = 0; k < 4; ++k)
            panel16[g * 64 + (k / 2) * 32 + ch * 2 + k % 2] = panel8[g * 64 + ch * 4 + k];
      panel = panel16;
    }
    Epilogue8 epi[2] = {Epilogue8(c.rq, c.out.mode, c.zpcorr, b * kBlock, c.out.cp, c.oc),
                        Epilogue8(c.rq, c.out.mode, c.zpcorr, b * kBlock + 8, c.out.cp, c.oc)};
    if (c.residual || c.out2.data)
      for (Epilogue8& e : epi) e.fuse(c);
    const Epilogue16 epi16(c.rq, c.zpcorr, b * kBlock, c.out.cp, c.oc, true);
    const bool use16 = c.out.mode == OutMode::kU8 && epi16.ok;
    const TileContext t{&c, koff, groups, steps, panel, epi, use16 ? &epi16 : nullptr, b};
    switch (mac) {
      case Mac::kInt16:
        conv_block<Mac::kInt16>(t);
        break;
      case Mac::kWide:
        conv_block<Mac::kWide>(t);
        break;
    }
  }
}

// ---- depthwise -------------------------------------------------------------------------------

// Taps in pairs (t, t + 1) for vpmaddwd: per pair and 16-channel chunk, two vectors of int32
// lanes (w_t, w_t+1) as int16, in the order unpacklo/unpackhi_epi16 interleave 16 channels:
// channels 0-3 and 8-11, then 4-7 and 12-15.
namespace {

// Where a depthwise work item reads and writes: tap offsets in tap pairs (an odd last tap pairs
// with itself, under zero weights), the input row and output row of channel c0.
struct DwGeometry {
  const DwconvArgs& d;
  int taps;
  int64_t toff[64];
  int esize;
  int64_t step, next;  // bytes between input pixels of consecutive outputs, between output pixels
  explicit DwGeometry(const DwconvArgs& a)
      : d(a),
        taps(a.kh * a.kw),
        esize(a.out.mode == OutMode::kU8 ? 1 : 4),
        step(static_cast<int64_t>(a.stride) * a.icp),
        next(static_cast<int64_t>(a.out.cp) * esize) {
    for (int t = 0; t < taps && t < 64; ++t) toff[t] = ((t / d.kw) * d.iw + t % d.kw) * d.icp;
  }
  int64_t first(int p) const { return toff[2 * p]; }
  int64_t second(int p) const { return toff[2 * p + 1 < taps ? 2 * p + 1 : 2 * p]; }
  const uint8_t* row(int y, int c0) const {
    return d.in + ((static_cast<int64_t>(d.n) * d.ih + d.y0 + y * d.stride) * d.iw + d.x0) * d.icp +
           c0;
  }
  char* out(int y, int c0) const {
    const OutDesc& o = d.out;
    return static_cast<char*>(o.data) +
           ((static_cast<int64_t>(d.n) * o.hp + y + o.border) * o.wp + o.border) * next +
           c0 * esize;
  }
};

// The depthwise for widths where u8 × s8 pair sums fit int16 (ConvArgs::in_max): taps in pairs
// (t, t + 1), 32 channels of both taps byte-interleaved by vpunpcklbw/hbw (channels 0-7 and 16-23,
// then 8-15 and 24-31) and multiplied by vpmaddubsw; every pair's int16 sums are added in int16
// (steps >= pairs), then widened once.
void dwconv_narrow(const DwconvArgs& d, int pairs) {
  const int taps = d.kh * d.kw;
  const int cp64 = (d.c + 63) / 64 * 64, chunks = cp64 / 32;
  // Scratch: the pairs [pair][chunk][2 vectors], zp·Σw per channel, the unpacked int8 weights.
  __m256i* w = reinterpret_cast<__m256i*>(d.scratch);
  int32_t* zpc = reinterpret_cast<int32_t*>(w + static_cast<int64_t>(pairs) * chunks * 2);
  int8_t* values = reinterpret_cast<int8_t*>(zpc + cp64);  // [tap][cp64]
  unpack_groups(d.weights, d.bits, static_cast<int64_t>(taps) * cp64 / 64, values);
  for (int c = 0; c < cp64; ++c) {
    int32_t sum = 0;
    for (int t = 0; t < taps; ++t) sum += values[int64_t{t} * cp64 + c];
    zpc[c] = d.zp_in * sum;
  }
  for (int q = 0; q < chunks; ++q)
    for (int p = 0; p < pairs; ++p) {
      const auto tap = [&](int t) {
        return t < taps ? _mm256_loadu_si256(
                              reinterpret_cast<const __m256i*>(values + int64_t{t} * cp64 + q * 32))
                        : _mm256_setzero_si256();
      };
      const __m256i w0 = tap(2 * p), w1 = tap(2 * p + 1);
      w[(int64_t{p} * chunks + q) * 2] = _mm256_unpacklo_epi8(w0, w1);
      w[(int64_t{p} * chunks + q) * 2 + 1] = _mm256_unpackhi_epi8(w0, w1);
    }
  const DwGeometry geo(d);
  const OutDesc& o = d.out;
  const int esize = geo.esize;
  const int64_t step = geo.step, next = geo.next;
  for (int q = 0; q * 32 < o.cp; ++q) {
    const int c0 = q * 32;
    const Epilogue8 epi[4] = {Epilogue8(d.rq, o.mode, zpc, c0, o.cp, d.c),
                              Epilogue8(d.rq, o.mode, zpc, c0 + 8, o.cp, d.c),
                              Epilogue8(d.rq, o.mode, zpc, c0 + 16, o.cp, d.c),
                              Epilogue8(d.rq, o.mode, zpc, c0 + 24, o.cp, d.c)};
    const Epilogue16 epi16[2] = {Epilogue16(d.rq, zpc, c0, o.cp, d.c, true),
                                 Epilogue16(d.rq, zpc, c0 + 16, o.cp, d.c, true)};
    const bool use16 = o.mode == OutMode::kU8 && epi16[0].ok && epi16[1].ok;
    const __m256i* wq = w + q * 2;
    for (int y = d.oh0; y < d.oh1; ++y) {
      const uint8_t* row = geo.row(y, c0);
      char* out = geo.out(y, c0);
      for (int x = 0; x < d.ow; ++x) {
        __m256i lo = _mm256_setzero_si256(), hi = lo;
        const uint8_t* a = row + x * step;
        for (int p = 0; p < pairs; ++p) {  // 32 bytes from c0: the buffers keep spare bytes
          const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + geo.first(p)));
          const __m256i x1 =
              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + geo.second(p)));
          lo = _mm256_add_epi16(
              lo, _mm256_maddubs_epi16(_mm256_unpacklo_epi8(x0, x1), wq[p * chunks * 2]));
          hi = _mm256_add_epi16(
              hi, _mm256_maddubs_epi16(_mm256_unpackhi_epi8(x0, x1), wq[p * chunks * 2 + 1]));
        }
        // lo: channels 0-7 | 16-23, hi: 8-15 | 24-31.
        const __m256i c0_7 = _mm256_cvtepi16_epi32(_mm256_castsi256_si128(lo));
        const __m256i c8_15 = _mm256_cvtepi16_epi32(_mm256_castsi256_si128(hi));
        const __m256i c16_23 = _mm256_cvtepi16_epi32(_mm256_extracti128_si256(lo, 1));
        const __m256i c24_31 = _mm256_cvtepi16_epi32(_mm256_extracti128_si256(hi, 1));
        char* dst = out + x * next;
        if (use16) {
          epi16[0](c0_7, c8_15, reinterpret_cast<uint8_t*>(dst));
          epi16[1](c16_23, c24_31, reinterpret_cast<uint8_t*>(dst + 16));
          continue;
        }
        epi[0](c0_7, dst);
        epi[1](c8_15, dst + 8 * esize);
        epi[2](c16_23, dst + 16 * esize);
        epi[3](c24_31, dst + 24 * esize);
      }
    }
  }
}

}  // namespace

void dwconv_avx2(const DwconvArgs& d) {
  const int taps = d.kh * d.kw, pairs = (taps + 1) / 2;
  if (conv_int16_steps_avx2(d.in_max, d.w_max) >= pairs) {
    dwconv_narrow(d, pairs);
    return;
  }
  const int cp64 = (d.c + 63) / 64 * 64, chunks16 = cp64 / 16;
  // Scratch: the pairs [pair][chunk][2 vectors], zp·Σw per channel, the unpacked int8 weights.
  __m256i* w = reinterpret_cast<__m256i*>(d.scratch);
  int32_t* zpc = reinterpret_cast<int32_t*>(w + static_cast<int64_t>(pairs) * chunks16 * 2);
  int8_t* values = reinterpret_cast<int8_t*>(zpc + cp64);  // [tap][cp64]
  unpack_groups(d.weights, d.bits, static_cast<int64_t>(taps) * cp64 / 64, values);
  const __m256i zp_in = _mm256_set1_epi32(d.zp_in);
  for (int q = 0; q < chunks16; ++q) {
    auto tap = [&](int t) {
      return _mm256_cvtepi8_epi16(
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(values + int64_t{t} * cp64 + q * 16)));
    };
    __m256i sum = _mm256_setzero_si256();  // Σw in int16: at most 64 taps × 128
    for (int p = 0; p < pairs; ++p) {
      const __m256i x0 = tap(2 * p);
      const __m256i x1 = 2 * p + 1 < taps ? tap(2 * p + 1) : _mm256_setzero_si256();
      sum = _mm256_add_epi16(sum, _mm256_add_epi16(x0, x1));
      w[(int64_t{p} * chunks16 + q) * 2] = _mm256_unpacklo_epi16(x0, x1);
      w[(int64_t{p} * chunks16 + q) * 2 + 1] = _mm256_unpackhi_epi16(x0, x1);
    }
    __m256i* z = reinterpret_cast<__m256i*>(zpc + q * 16);
    _mm256_storeu_si256(
        z, _mm256_mullo_epi32(_mm256_cvtepi16_epi32(_mm256_castsi256_si128(sum)), zp_in));
    _mm256_storeu_si256(
        z + 1, _mm256_mullo_epi32(_mm256_cvtepi16_epi32(_mm256_extracti128_si256(sum, 1)), zp_in));
  }
  const DwGeometry geo(d);
  const OutDesc& o = d.out;
  const int esize = geo.esize;
  const int64_t step = geo.step, next = geo.next;
  for (int q = 0; q * 16 < o.cp; ++q) {
    const int c0 = q * 16;
    const Epilogue8 epi[2] = {Epilogue8(d.rq, o.mode, zpc, c0, o.cp, d.c),
                              Epilogue8(d.rq, o.mode, zpc, c0 + 8, o.cp, d.c)};
    const Epilogue16 epi16(d.rq, zpc, c0, o.cp, d.c, false);
    const bool use16 = o.mode == OutMode::kU8 && epi16.ok;
    const __m256i* wq = w + q * 2;
    for (int y = d.oh0; y < d.oh1; ++y) {
      const uint8_t* row = geo.row(y, c0);
      char* out = geo.out(y, c0);
      // Up to four pixels at a time: independent vpmaddwd chains.
      for (int x = 0; x < d.ow; x += 4) {
        const int mr = std::min(4, d.ow - x);
        __m256i lo[4], hi[4];
        for (int m = 0; m < 4; ++m) lo[m] = hi[m] = _mm256_setzero_si256();
        for (int p = 0; p < pairs; ++p) {
          const __m256i w0 = _mm256_load_si256(wq + p * chunks16 * 2);
          const __m256i w1 = _mm256_load_si256(wq + p * chunks16 * 2 + 1);
          const uint8_t* a0 = row + x * step + geo.first(p);
          const uint8_t* a1 = row + x * step + geo.second(p);
          for (int m = 0; m < mr; ++m) {  // 16 bytes from c0: the buffers keep spare bytes
            const __m256i x0 = _mm256_cvtepu8_epi16(
                _mm_loadu_si128(reinterpret_cast<const __m128i*>(a0 + m * step)));
            const __m256i x1 = _mm256_cvtepu8_epi16(
                _mm_loadu_si128(reinterpret_cast<const __m128i*>(a1 + m * step)));
            lo[m] = _mm256_add_epi32(lo[m], _mm256_madd_epi16(_mm256_unpacklo_epi16(x0, x1), w0));
            hi[m] = _mm256_add_epi32(hi[m], _mm256_madd_epi16(_mm256_unpackhi_epi16(x0, x1), w1));
          }
        }
        for (int m = 0; m < mr; ++m) {
          char* dst = out + (x + m) * next;
          if (use16) {
            epi16(lo[m], hi[m], reinterpret_cast<uint8_t*>(dst));
            continue;
          }
          epi[0](_mm256_permute2x128_si256(lo[m], hi[m], 0x20), dst);
          epi[1](_mm256_permute2x128_si256(lo[m], hi[m], 0x31), dst + 8 * esize);
        }
      }
    }
  }
}

// ---- elementwise -----------------------------------------------------------------------------

void requantize_avx2(const RequantizeArgs& r) {
  const Rescale8 rs(r.rq);
  const __m256i lo = _mm256_set1_epi64x(static_cast<int64_t>(r.lo) - r.zp);
  const __m256i hi = _mm256_set1_epi64x(static_cast<int64_t>(r.hi) - r.zp);
  const __m256i zp = _mm256_set1_epi32(r.zp);
  for (int64_t p = 0; p < r.pixels; ++p) {
    const int32_t* src = r.in + p * r.c;
    uint8_t* dst = r.out + p * r.out_stride;
    for (int c = 0; c < r.c; c += 8) {
      const int n = std::min(8, r.c - c);
      __m256i even, odd;
      rs(load_lanes(src + c, n, lanes(n)), &even, &odd);
      store_u8(dst + c, _mm256_add_epi32(join(clamp64(even, lo, hi), clamp64(odd, lo, hi)), zp), n);
    }
  }
}

void add_avx2(const AddArgs& a) {
  const Rescale8 r0(a.rq0), r1(a.rq1);
  const __m256i lo = _mm256_set1_epi64x(a.lo), hi = _mm256_set1_epi64x(a.hi);
  for (int64_t i = 0; i < a.count; i += 8) {
    const int n = static_cast<int>(std::min<int64_t>(8, a.count - i));
    const __m256i m = lanes(n);
    __m256i e0, o0, e1, o1;
    r0(load_lanes(a.a + i, n, m), &e0, &o0);
    r1(load_lanes(a.b + i, n, m), &e1, &o1);
    const __m256i even = clamp64(_mm256_add_epi64(e0, e1), lo, hi);
    const __m256i odd = clamp64(_mm256_add_epi64(o0, o1), lo, hi);
    store_lanes(a.out + i, n, m, join(even, odd));
  }
}

void quantize_input_avx2(const QuantizeInputArgs& a) {
  const __m256 scale = _mm256_set1_ps(a.scale), big = _mm256_set1_ps(1e6f);
  const __m256 small = _mm256_set1_ps(-1e6f);
  const __m256i zp = _mm256_set1_epi32(a.zp), lo = _mm256_set1_epi32(a.lo),
                hi = _mm256_set1_epi32(a.hi);
  int64_t p = 0;
  for (; p + 8 <= a.pixels; p += 8) {
    __m256i packed = _mm256_setzero_si256();
    for (int c = 0; c < 4; ++c) {
      __m256i q = zp;
      if (c < a.c) {
        __m256 v = _mm256_div_ps(_mm256_loadu_ps(a.planes[c] + p), scale);
        v = _mm256_min_ps(_mm256_max_ps(v, small), big);
        v = _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        q = _mm256_max_epi32(_mm256_min_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(v), zp), hi), lo);
      }
      packed = _mm256_or_si256(
          packed, _mm256_slli_epi32(_mm256_and_si256(q, _mm256_set1_epi32(0xff)), 8 * c));
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(a.out + p * 4), packed);
  }
  QuantizeInputArgs rest = a;
  for (int c = 0; c < a.c; ++c) rest.planes[c] = a.planes[c] + p;
  rest.pixels = a.pixels - p;
  rest.out = a.out + p * 4;
  quantize_input_ref(rest);
}

}  // namespace mpq::runtime
