// Conv (group 1 or depthwise) and Gemm on a uint8 input with a quantized weight: one ConvLayer,
// repacked at the weight's width, writing an int32 (real) output.
#include <algorithm>
#include <cmath>

#include "../lowering.h"

namespace mpq::runtime {

namespace {

Status lower_conv_or_gemm(Lowering& lw, const onnx::NodeProto& n, bool gemm) {
  Program& p = lw.program();
  Val* x = lw.get(n.input(0));
  Val* wv = lw.get(n.input(1));
  if (x->kind != Val::kTensor || p.tensors[x->tensor].kind != TensorKind::kU8)
    return lw.fail(n, "the input is not quantized (the runtime runs quantized layers only)");
  if (!wv || wv->kind != Val::kWeight)
    return lw.fail(n, "the weight is not a quantized weight (DequantizeLinear of int8)");
  const Weight& w = *wv->w;
  TensorDesc& in = p.tensors[x->tensor];
  auto layer = std::make_shared<ConvLayer>();
  ConvLayer& L = *layer;
  L.bits = w.bits;
  L.in_scale = in.scale;
  L.in_zp = in.zp;
  L.a_bits = bits_of(in.lo, in.hi);
  L.w_scale = w.scale;
  L.oc = static_cast<int>(w.shape[0]);
  std::vector<int8_t> q = w.q;  // [oc][ic][kh][kw]
  int ic = 0;
  if (gemm) {
    if (attr_int(n, "transA", 0) != 0) return lw.fail(n, "transA = 1 is not supported");
    const onnx::AttributeProto* alpha = attr(n, "alpha");
    const onnx::AttributeProto* beta = attr(n, "beta");
    if ((alpha && alpha->f() != 1.0f) || (beta && beta->f() != 1.0f))
      return lw.fail(n, "alpha and beta must be 1");
    if (in.h != 1 || in.w != 1) return lw.fail(n, "the input is not a vector");
    if (w.shape.size() != 2) return lw.fail(n, "the weight is not a matrix");
    if (in.border != 0) return lw.fail(n, "the input is also read by a padded convolution");
    if (attr_int(n, "transB", 0) == 0) {  // [ic][oc] -> [oc][ic]
      int rows = static_cast<int>(w.shape[0]), cols = static_cast<int>(w.shape[1]);
      for (int r = 0; r < rows; ++r)
        for (int c = 0; c < cols; ++c) q[c * rows + r] = w.q[r * cols + c];
      L.oc = cols;
      ic = rows;
      if (L.w_scale.size() != size_t(cols))
        return lw.fail(n, "per-channel scales of an untransposed Gemm weight are not supported");
    } else {
      ic = static_cast<int>(w.shape[1]);
    }
    L.kh = L.kw = 1;
    L.kind = ConvKind::kFc;
  } else {
    if (w.shape.size() != 4) return lw.fail(n, "the weight is not 4-D");
    ic = static_cast<int>(w.shape[1]);
    L.kh = static_cast<int>(w.shape[2]);
    L.kw = static_cast<int>(w.shape[3]);
    auto strides = attr_ints(n, "strides");
    auto pads = attr_ints(n, "pads");
    auto dil = attr_ints(n, "dilations");
    if (L.kh > kMaxKernel || L.kw > kMaxKernel)
      return lw.fail(n, "kernel " + std::to_string(L.kh) + "x" + std::to_string(L.kw) +
                            ": kernels up to " + std::to_string(kMaxKernel) + "x" +
                            std::to_string(kMaxKernel) + " are supported");
    if ((!strides.empty() && strides.size() != 2) || (!pads.empty() && pads.size() != 4) ||
        (!dil.empty() && dil.size() != 2))
      return lw.fail(n, "strides, dilations and pads must have 2, 2 and 4 values (2-D)");
    for (int64_t s : strides)
      if (s < 1 || s > kMaxKernel)
        return lw.fail(n, "stride " + std::to_string(s) + ": must be in [1, " +
                              std::to_string(kMaxKernel) + "]");
    for (int i = 0; i < static_cast<int>(pads.size()); ++i)
      if (pads[i] < 0 || pads[i] >= (i % 2 ? L.kw : L.kh))
        return lw.fail(n, "pad " + std::to_string(pads[i]) +
                              ": pads must be non-negative and smaller than the kernel");
    for (int64_t d : dil)
      if (d != 1) return lw.fail(n, "dilation " + std::to_string(d) + " is not supported");
    if (!strides.empty() && strides[0] != strides.back())
      return lw.fail(n, "different strides per axis are not supported");
    L.stride = strides.empty() ? 1 : static_cast<int>(strides[0]);
    if (pads.empty()) pads.assign(4, 0);
    if (const auto* ap = attr(n, "auto_pad"); ap && ap->s() != "NOTSET")
      return lw.fail(n, "auto_pad " + ap->s() + " is not supported; export explicit pads");
    L.pad_top = static_cast<int>(pads[0]), L.pad_left = static_cast<int>(pads[1]);
    L.pad_bottom = static_cast<int>(pads[2]), L.pad_right = static_cast<int>(pads[3]);
    int64_t group = attr_int(n, "group", 1);
    if (group == 1) {
      L.kind = ConvKind::kConv;
    } else if (group == in.c && ic == 1 && L.oc == in.c) {
      L.kind = ConvKind::kDwconv;
      if (L.kh * L.kw > kMaxDwTaps)
        return lw.fail(n, "depthwise kernel " + std::to_string(L.kh) + "x" + std::to_string(L.kw) +
                              ": at most " + std::to_string(kMaxDwTaps) + " taps are supported");
    } else if (group > 1 && group <= in.c && ic * group == in.c && L.oc % group == 0) {
      L.kind = ConvKind::kGrouped;  // RegNet's: the reference kernel on every ISA
      L.groups = static_cast<int>(group);
    } else {
      return lw.fail(n, "group = " + std::to_string(group) + " with " + std::to_string(ic) +
                            " input channels per group, " + std::to_string(in.c) + " input and " +
                            std::to_string(L.oc) + " output channels: the groups must divide both");
    }
  }
  if (L.kind != ConvKind::kDwconv && L.kind != ConvKind::kGrouped && ic != in.c)
    return lw.fail(n, "weight has " + std::to_string(ic) + " input channels, the input " +
                          std::to_string(in.c));
  L.ic = L.kind == ConvKind::kGrouped ? ic : in.c;
  if (in.h + L.pad_top + L.pad_bottom < L.kh || in.w + L.pad_left + L.pad_right < L.kw)
    return lw.fail(n, "the " + std::to_string(L.kh) + "x" + std::to_string(L.kw) +
                          " kernel is larger than the padded " + std::to_string(in.h) + "x" +
                          std::to_string(in.w) + " input");
  L.oh = (in.h + L.pad_top + L.pad_bottom - L.kh) / L.stride + 1;
  L.ow = (in.w + L.pad_left + L.pad_right - L.kw) / L.stride + 1;
  in.border = std::max({in.border, L.pad_top, L.pad_left, L.pad_bottom, L.pad_right});
  // Bias.
  L.bias.assign(L.oc, 0.0);
  if (n.input_size() > 2 && !n.input(2).empty()) {
    Val* b = lw.get(n.input(2));
    if (b->kind != Val::kConst || b->c.values.size() != size_t(L.oc))
      return lw.fail(n, "the bias must be a constant of one value per output channel");
    L.bias = b->c.values;
  }
  // The largest real output: per channel, the input's largest |q - zp| times the weights' sum of
  // |q|, scaled, plus the bias.
  {
    const double x_max = std::max(std::abs(in.hi - in.zp), std::abs(in.lo - in.zp));
    const size_t per = q.size() / L.oc;
    for (int c = 0; c < L.oc; ++c) {
      double sum = 0;
      for (size_t i = 0; i < per; ++i) sum += std::abs(q[c * per + i]);
      L.out_bound =
          std::max(L.out_bound, L.in_scale * L.w_scale[c] * sum * x_max + std::fabs(L.bias[c]));
    }
  }
  // Repack into the runtime layout at the weight's width.
  pack_layer(L, q);
  p.weight_bytes += static_cast<int64_t>(L.packed.size());
  TensorDesc out;
  out.kind = TensorKind::kI32;
  out.c = out.cp = L.oc;
  out.h = L.oh, out.w = L.ow;
  Step st;
  st.op = StepOp::kConv;
  st.in0 = x->tensor;
  st.conv = layer;
  return lw.add_step(n, st, out);
}

}  // namespace

Status lower_conv(Lowering& L, const onnx::NodeProto& n) { return lower_conv_or_gemm(L, n, false); }
Status lower_gemm(Lowering& L, const onnx::NodeProto& n) { return lower_conv_or_gemm(L, n, true); }

}  // namespace mpq::runtime
