// Scalar reference kernels: the oracle of the kernel tests and the fallback on any CPU.
#include "kernels.h"

namespace mpq::runtime {
namespace {

template <typename T>
T* out_at(const OutDesc& o, int n, int y, int x) {
  int64_t pixel = (static_cast<int64_t>(n) * o.hp + y + o.border) * o.wp + x + o.border;
  return static_cast<T*>(o.data) + pixel * o.cp;
}

void store(const OutDesc& o, const Requant& rq, int n, int y, int x, int c, int32_t acc) {
  int32_t v = requantize_ref(acc, rq.mult ? rq.mult[c] : 0, rq.shift ? rq.shift[c] : 0,
                             rq.add ? rq.add[c] : 0, o.mode, rq.zp, rq.lo, rq.hi);
  if (o.mode == OutMode::kU8)
    out_at<uint8_t>(o, n, y, x)[c] = static_cast<uint8_t>(v);
  else
    out_at<int32_t>(o, n, y, x)[c] = v;
}

}  // namespace

void conv_ref(const ConvArgs& a) {
  const int64_t groups = a.k() / 4;
  const int c_begin = a.block0 * kBlock;
  const int c_end = (a.block0 + a.blocks) * kBlock;
  for (int y = a.oh0; y < a.oh1; ++y)
    for (int x = 0; x < a.ow; ++x)
      for (int c = c_begin; c < c_end && c < a.out.cp; ++c) {
        const int64_t pixel =
            (static_cast<int64_t>(a.n) * a.out.hp + y + a.out.border) * a.out.wp + x + a.out.border;
        const int64_t pixel2 =
            (static_cast<int64_t>(a.n) * a.out2.hp + y + a.out2.border) * a.out2.wp + x +
            a.out2.border;
        if (c >= a.oc) {
          conv_store_ref(a, pixel, pixel2, c, 0);
          continue;
        }
        int32_t acc = 0;
        for (int i = 0; i < a.kh; ++i)
          for (int j = 0; j < a.kw; ++j) {
            const uint8_t* px = pixel_at(a.in, a.n, a.ih, a.iw, a.icp, a.y0 + y * a.stride + i,
                                         a.x0 + x * a.stride + j);
            // A grouped conv reads its group's input channels; its weights hold `wk` per tap.
            const int wk = a.group_in ? (a.group_in + 3) / 4 * 4 : a.icp;
            const int count = a.group_in ? a.group_in : a.icp;
            if (a.group_in) px += c / a.group_out * a.group_in;
            for (int ci = 0; ci < count; ++ci) {
              int64_t k = (i * a.kw + j) * wk + ci;
              int64_t index = ((c / kBlock) * groups + k / 4) * 64 + (c % kBlock) * 4 + k % 4;
              acc += static_cast<int32_t>(px[ci]) * packed_value(a.weights, index, a.bits);
            }
          }
        conv_store_ref(a, pixel, pixel2, c, acc - a.zpcorr[c]);
      }
}

void dwconv_ref(const DwconvArgs& a) {
  const int taps = a.kh * a.kw;
  const int64_t cp64 = (a.c + 63) / 64 * 64;
  (void)taps;
  for (int y = a.oh0; y < a.oh1; ++y)
    for (int x = 0; x < a.ow; ++x)
      for (int c = 0; c < a.out.cp; ++c) {
        if (c >= a.c) {
          if (a.out.mode == OutMode::kU8) out_at<uint8_t>(a.out, a.n, y, x)[c] = a.rq.zp;
          continue;
        }
        int32_t acc = 0;
        for (int i = 0; i < a.kh; ++i)
          for (int j = 0; j < a.kw; ++j) {
            const uint8_t* px = pixel_at(a.in, a.n, a.ih, a.iw, a.icp, a.y0 + y * a.stride + i,
                                         a.x0 + x * a.stride + j);
            acc += (static_cast<int32_t>(px[c]) - a.zp_in) *
                   packed_value(a.weights, (i * a.kw + j) * cp64 + c, a.bits);
          }
        store(a.out, a.rq, a.n, y, x, c, acc);
      }
}

void requantize_ref(const RequantizeArgs& r) {
  for (int64_t p = 0; p < r.pixels; ++p) {
    const int32_t* src = r.in + p * r.c;
    uint8_t* dst = r.out + p * r.out_stride;
    for (int c = 0; c < r.c; ++c) {
      int64_t v = r.rq.apply(src[c]);
      v = v < r.lo - r.zp ? r.lo - r.zp : v > r.hi - r.zp ? r.hi - r.zp : v;
      dst[c] = static_cast<uint8_t>(v + r.zp);
    }
  }
}

void quantize_input_ref(const QuantizeInputArgs& a) {
  for (int64_t p = 0; p < a.pixels; ++p)
    for (int c = 0; c < 4; ++c)
      a.out[p * 4 + c] =
          c < a.c ? quantize_input_value(a.planes[c][p], a) : static_cast<uint8_t>(a.zp);
}

void add_ref(const AddArgs& a) {
  for (int64_t i = 0; i < a.count; ++i) {
    int64_t v = a.rq0.apply(a.a[i]) + a.rq1.apply(a.b[i]);
    a.out[i] = static_cast<int32_t>(v < a.lo ? a.lo : v > a.hi ? a.hi : v);
  }
}

}  // namespace mpq::runtime
