// AVX2 kernels (compiled with -mavx2 -mfma): for CPUs without AVX-512 VNNI. The convolution
// unpacks its panel to int16 and multiplies with vpmaddwd, which is exact for u8 × s8 (no
// saturation, unlike vpmaddubsw); two output pixels × 16 channels per tile. Requantization is
// requantize_ref itself, so results equal the reference bit for bit.
#include <immintrin.h>

#include <vector>

#include "kernels.h"

namespace mpq::runtime {
namespace {

void store(const OutDesc& o, const Requant& rq, int64_t pixel, int c, int32_t acc) {
  int32_t v = requantize_ref(acc, rq.mult ? rq.mult[c] : 0, rq.shift ? rq.shift[c] : 0,
                             rq.add ? rq.add[c] : 0, o.mode, rq.zp, rq.lo, rq.hi);
  if (o.mode == OutMode::kU8)
    static_cast<uint8_t*>(o.data)[pixel * o.cp + c] = static_cast<uint8_t>(v);
  else
    static_cast<int32_t*>(o.data)[pixel * o.cp + c] = v;
}

// 8 channel sums from the pair-wise accumulators of channels 0-3 (a) and 4-7 (b).
__m256i channel_sums(__m256i a, __m256i b) {
  return _mm256_permute4x64_epi64(_mm256_hadd_epi32(a, b), 0xD8);
}

template <int MR>
void tile(const ConvArgs& c, const int16_t* panel, const std::vector<int32_t>& koff,
          const uint8_t* const* rows, const int64_t* pixels, const int64_t* pixels2, int block) {
  __m256i acc[MR][4];
  for (int m = 0; m < MR; ++m)
    for (int j = 0; j < 4; ++j) acc[m][j] = _mm256_setzero_si256();
  const int groups = static_cast<int>(koff.size());
  for (int g = 0; g < groups; ++g) {
    const int16_t* w = panel + static_cast<int64_t>(g) * 64;
    __m256i w0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(w));
    __m256i w1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(w + 16));
    __m256i w2 = _mm256_load_si256(reinterpret_cast<const __m256i*>(w + 32));
    __m256i w3 = _mm256_load_si256(reinterpret_cast<const __m256i*>(w + 48));
    for (int m = 0; m < MR; ++m) {
      int32_t word;
      __builtin_memcpy(&word, rows[m] + koff[g], 4);
      __m256i a = _mm256_cvtepu8_epi16(_mm_set1_epi32(word));
      acc[m][0] = _mm256_add_epi32(acc[m][0], _mm256_madd_epi16(a, w0));
      acc[m][1] = _mm256_add_epi32(acc[m][1], _mm256_madd_epi16(a, w1));
      acc[m][2] = _mm256_add_epi32(acc[m][2], _mm256_madd_epi16(a, w2));
      acc[m][3] = _mm256_add_epi32(acc[m][3], _mm256_madd_epi16(a, w3));
    }
  }
  for (int m = 0; m < MR; ++m) {
    alignas(32) int32_t sums[16];
    _mm256_store_si256(reinterpret_cast<__m256i*>(sums), channel_sums(acc[m][0], acc[m][1]));
    _mm256_store_si256(reinterpret_cast<__m256i*>(sums + 8), channel_sums(acc[m][2], acc[m][3]));
    for (int i = 0; i < kBlock; ++i) {
      int ch = block * kBlock + i;
      if (ch >= c.out.cp) break;
      conv_store_ref(c, pixels[m], pixels2[m], ch, ch < c.oc ? sums[i] - c.zpcorr[ch] : 0);
    }
  }
}

}  // namespace

double peak_loop_avx2(int64_t iterations) {
  // 8 independent vpmaddwd + vpaddd chains (16 MACs each).
  __m256i acc[8];
  for (int i = 0; i < 8; ++i) acc[i] = _mm256_set1_epi32(i);
  const __m256i a = _mm256_set1_epi32(0x00030004), b = _mm256_set1_epi32(0x0001FFFF);
  for (int64_t it = 0; it < iterations; ++it)
    for (int i = 0; i < 8; ++i) {
      acc[i] = _mm256_add_epi32(acc[i], _mm256_madd_epi16(a, b));
      __asm__ volatile("" : "+x"(acc[i]));
    }
  __m256i sum = acc[0];
  for (int i = 1; i < 8; ++i) sum = _mm256_add_epi32(sum, acc[i]);
  alignas(32) int32_t v[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(v), sum);
  return v[0];
}

void conv_avx2(const ConvArgs& c) {
  const int groups = c.k() / 4;
  const int64_t gbytes = group_bytes(c.bits);
  int16_t* panel = reinterpret_cast<int16_t*>(c.scratch);  // one block: groups × 64 int16
  std::vector<int32_t> koff(groups);
  const int c4 = c.icp / 4;
  for (int g = 0; g < groups; ++g) {
    int tap = g / c4;
    koff[g] = ((tap / c.kw) * c.iw + tap % c.kw) * c.icp + (g % c4) * 4;
  }
  const OutDesc& o = c.out;
  for (int b = c.block0; b < c.block0 + c.blocks; ++b) {
    const uint8_t* src = c.weights + static_cast<int64_t>(b) * groups * gbytes;
    for (int64_t i = 0; i < static_cast<int64_t>(groups) * 64; ++i)
      panel[i] = packed_value(src, i, c.bits);
    const uint8_t* rows[2];
    int64_t pixels[2], pixels2[2];
    int m = 0;
    for (int y = c.oh0; y < c.oh1; ++y)
      for (int x = 0; x < c.ow; ++x) {
        rows[m] = c.in + ((static_cast<int64_t>(c.n) * c.ih + c.y0 + y * c.stride) * c.iw + c.x0 +
                          x * c.stride) *
                             c.icp;
        pixels[m] = (static_cast<int64_t>(c.n) * o.hp + y + o.border) * o.wp + x + o.border;
        pixels2[m] = (static_cast<int64_t>(c.n) * c.out2.hp + y + c.out2.border) * c.out2.wp + x +
                     c.out2.border;
        if (++m == 2) {
          tile<2>(c, panel, koff, rows, pixels, pixels2, b);
          m = 0;
        }
      }
    if (m == 1) tile<1>(c, panel, koff, rows, pixels, pixels2, b);
  }
}

void dwconv_avx2(const DwconvArgs& d) {
  const int taps = d.kh * d.kw;
  const int cp64 = (d.c + 63) / 64 * 64;
  int32_t* w = reinterpret_cast<int32_t*>(d.scratch);  // [tap][cp64]
  for (int64_t i = 0; i < static_cast<int64_t>(taps) * cp64; ++i)
    w[i] = packed_value(d.weights, i, d.bits);
  int32_t* zpc = w + static_cast<int64_t>(taps) * cp64;
  for (int c = 0; c < cp64; ++c) {
    int32_t s = 0;
    for (int t = 0; t < taps; ++t) s += w[t * cp64 + c];
    zpc[c] = d.zp_in * s;
  }
  std::vector<int64_t> toff(taps);
  for (int t = 0; t < taps; ++t) toff[t] = ((t / d.kw) * d.iw + t % d.kw) * d.icp;
  const OutDesc& o = d.out;
  for (int y = d.oh0; y < d.oh1; ++y)
    for (int x = 0; x < d.ow; ++x) {
      const uint8_t* a = d.in + ((static_cast<int64_t>(d.n) * d.ih + d.y0 + y * d.stride) * d.iw +
                                 d.x0 + x * d.stride) *
                                    d.icp;
      int64_t pixel = (static_cast<int64_t>(d.n) * o.hp + y + o.border) * o.wp + x + o.border;
      for (int c0 = 0; c0 < o.cp; c0 += 8) {
        __m256i acc = _mm256_setzero_si256();
        for (int t = 0; t < taps; ++t) {
          int64_t word;
          __builtin_memcpy(&word, a + toff[t] + c0, 8);  // buffers keep 64 spare bytes
          __m256i xv = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(word));
          __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + t * cp64 + c0));
          acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(xv, wv));
        }
        alignas(32) int32_t sums[8];
        _mm256_store_si256(reinterpret_cast<__m256i*>(sums), acc);
        for (int i = 0; i < 8 && c0 + i < o.cp; ++i) {
          int ch = c0 + i;
          if (ch >= d.c) {
            if (o.mode == OutMode::kU8) static_cast<uint8_t*>(o.data)[pixel * o.cp + ch] = d.rq.zp;
            continue;
          }
          store(o, d.rq, pixel, ch, sums[i] - zpc[ch]);
        }
      }
    }
}

// The elementwise steps are a small share of the time: the scalar code serves AVX2 machines.
void requantize_avx2(const RequantizeArgs& r) { requantize_ref(r); }
void add_avx2(const AddArgs& a) { add_ref(a); }
void quantize_input_avx2(const QuantizeInputArgs& a) { quantize_input_ref(a); }

}  // namespace mpq::runtime
