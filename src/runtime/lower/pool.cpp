// Pooling of real-valued (int32) maps: global average (GlobalAveragePool, ReduceMean over H, W),
// MaxPool and AveragePool.
#include <algorithm>
#include <cmath>

#include "../lowering.h"

namespace mpq::runtime {

Status lower_global_pool(Lowering& L, const onnx::NodeProto& n) {
  Program& p = L.program();
  Val* x = L.in(n, 0);
  if (x->kind != Val::kTensor || p.tensors[x->tensor].kind != TensorKind::kI32)
    return L.fail(n, "pools a value that is not a real-valued tensor");
  if (n.op_type() == "ReduceMean") {
    auto axes = attr_ints(n, "axes");
    if (axes != std::vector<int64_t>{2, 3} && axes != std::vector<int64_t>{-2, -1})
      return L.fail(n, "only ReduceMean over the spatial axes [2, 3] is supported");
  }
  TensorDesc d = p.tensors[x->tensor];
  d.h = d.w = 1;
  Step st;
  st.op = StepOp::kGap;
  st.in0 = x->tensor;
  return L.add_step(n, st, d);
}

namespace {

// The window of a MaxPool or AveragePool over a real-valued map: kernel, strides, pads and the
// output size into `st` and `out`.
Status pool_window(Lowering& L, const onnx::NodeProto& n, Step* st, TensorDesc* out) {
  Program& p = L.program();
  Val* x = L.in(n, 0);
  if (!L.is_tensor(x, TensorKind::kI32))
    return L.fail(n, "pools a value that is not a real-valued tensor");
  if (n.output_size() > 1 && !n.output(1).empty())
    return L.fail(n, "the Indices output is not supported");
  const onnx::AttributeProto* auto_pad = attr(n, "auto_pad");
  if (auto_pad && auto_pad->s() != "NOTSET" && auto_pad->s() != "VALID")
    return L.fail(n, "auto_pad " + auto_pad->s() + " is not supported; export with explicit pads");
  std::vector<int64_t> k = attr_ints(n, "kernel_shape"), s = attr_ints(n, "strides"),
                       pads = attr_ints(n, "pads"), d = attr_ints(n, "dilations");
  if (s.empty()) s = {1, 1};
  if (pads.empty()) pads = {0, 0, 0, 0};
  if (k.size() != 2 || s.size() != 2 || pads.size() != 4)
    return L.fail(n,
                  "only 2-D pooling (kernel_shape, strides of 2 values, pads of 4) is supported");
  for (int64_t v : d)
    if (v != 1) return L.fail(n, "dilation " + std::to_string(v) + ": only 1 is supported");
  for (int a = 0; a < 2; ++a) {
    if (k[a] < 1 || k[a] > kMaxKernel || s[a] < 1 || s[a] > kMaxKernel)
      return L.fail(n, "kernel " + std::to_string(k[a]) + ", stride " + std::to_string(s[a]) +
                           ": each must be in [1, " + std::to_string(kMaxKernel) + "]");
    for (int64_t pad : {pads[a], pads[a + 2]})
      if (pad < 0 || pad >= k[a])
        return L.fail(n, "pad " + std::to_string(pad) + ": pads must be in [0, kernel)");
  }
  const bool ceil = attr_int(n, "ceil_mode", 0) != 0;
  *out = p.tensors[x->tensor];
  st->in0 = x->tensor;
  int* side[2] = {&out->h, &out->w};
  for (int a = 0; a < 2; ++a) {
    const int64_t in = *side[a], span = in + pads[a] + pads[a + 2] - k[a];
    if (span < 0) return L.fail(n, "the kernel is larger than the padded map");
    int64_t o = (ceil ? (span + s[a] - 1) / s[a] : span / s[a]) + 1;
    if (ceil && (o - 1) * s[a] >= in + pads[a]) --o;  // the last window starts in the map
    *side[a] = static_cast<int>(o);
    st->pool_kernel[a] = static_cast<int>(k[a]);
    st->pool_stride[a] = static_cast<int>(s[a]);
    st->pad_before[a + 1] = static_cast<int>(pads[a]);
    st->pad_after[a + 1] = static_cast<int>(pads[a + 2]);
  }
  out->cp = out->c;
  return Status::Ok();
}

}  // namespace

// MaxPool: the maximum commutes with the (positive) rescale, so the integers are exact. Pads
// never win (ONNX pads MaxPool with -inf).
Status lower_max_pool(Lowering& L, const onnx::NodeProto& n) {
  Step st;
  st.op = StepOp::kMaxPool;
  TensorDesc out;
  if (Status s = pool_window(L, n, &st, &out); !s.ok()) return s;
  return L.add_step(n, st, out);
}

// AveragePool: the window's integer sum, rescaled by 1 / (kernel area). Every window must
// count the same number of values (no pads, or pads counted with count_include_pad = 1, and
// no ceil-mode window past the padded map), so one rescale serves every pixel.
Status lower_average_pool(Lowering& L, const onnx::NodeProto& n) {
  Step st;
  st.op = StepOp::kAvgPool;
  TensorDesc out;
  if (Status s = pool_window(L, n, &st, &out); !s.ok()) return s;
  const TensorDesc& in = L.program().tensors[st.in0];
  const bool count_pads = attr_int(n, "count_include_pad", 0) != 0;
  const int sides[2] = {in.h, in.w}, outs[2] = {out.h, out.w};
  for (int a = 0; a < 2; ++a) {
    const int before = st.pad_before[a + 1], after = st.pad_after[a + 1];
    if (!count_pads && (before > 0 || after > 0))
      return L.fail(n,
                    "padding with count_include_pad = 0 divides border windows by fewer "
                    "values; only windows of one size are supported");
    const int64_t last_end =
        static_cast<int64_t>(outs[a] - 1) * st.pool_stride[a] - before + st.pool_kernel[a];
    if (last_end > sides[a] + after)
      return L.fail(n,
                    "ceil_mode makes the last window smaller than the kernel; only windows "
                    "of one size are supported");
  }
  return L.add_step(n, st, out);
}
}  // namespace mpq::runtime
