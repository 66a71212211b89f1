// Pooling of real-valued (int32) maps: global average (GlobalAveragePool, ReduceMean over H, W)
// and MaxPool.
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
  st.name = n.name();
  st.in0 = x->tensor;
  st.out = L.add_tensor(d);
  p.steps.push_back(st);
  L.set_tensor(n.output(0), st.out);
  return Status::Ok();
}

Status lower_max_pool(Lowering& L, const onnx::NodeProto& n) {
  Program& p = L.program();
  Val* x = L.get(n.input(0));
  if (x->kind != Val::kTensor || p.tensors[x->tensor].kind != TensorKind::kI32)
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
  TensorDesc d_out = p.tensors[x->tensor];
  Step st;
  st.op = StepOp::kMaxPool;
  st.name = n.name();
  st.in0 = x->tensor;
  int* side[2] = {&d_out.h, &d_out.w};
  for (int a = 0; a < 2; ++a) {
    const int64_t in = *side[a], span = in + pads[a] + pads[a + 2] - k[a];
    if (span < 0) return L.fail(n, "the kernel is larger than the padded map");
    int64_t out = (ceil ? (span + s[a] - 1) / s[a] : span / s[a]) + 1;
    if (ceil && (out - 1) * s[a] >= in + pads[a]) --out;  // the last window starts in the map
    *side[a] = static_cast<int>(out);
    st.pool_kernel[a] = static_cast<int>(k[a]);
    st.pool_stride[a] = static_cast<int>(s[a]);
    st.pad_before[a + 1] = static_cast<int>(pads[a]);
  }
  d_out.cp = d_out.c;
  st.out = L.add_tensor(d_out);
  p.steps.push_back(st);
  L.set_tensor(n.output(0), st.out);
  return Status::Ok();
}
}  // namespace mpq::runtime
