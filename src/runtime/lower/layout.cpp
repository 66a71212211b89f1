// Ops that move values: Flatten/Reshape/Squeeze (aliases of a 1x1 map), Slice, Pad, Concat.
#include <algorithm>
#include <cmath>

#include "../lowering.h"

namespace mpq::runtime {

Status lower_flatten(Lowering& L, const onnx::NodeProto& n) {
  Program& p = L.program();
  Val* x = L.in(n, 0);
  if (x->kind != Val::kTensor) return L.fail(n, "reshapes something that is not a tensor");
  const TensorDesc& d = p.tensors[x->tensor];
  if (d.h != 1 || d.w != 1)
    return L.fail(n, "reshapes a " + std::to_string(d.h) + "x" + std::to_string(d.w) +
                         " feature map; only 1x1 maps (after global pooling) are supported");
  L.set_tensor(n.output(0), x->tensor);
  return Status::Ok();
}

Status lower_slice(Lowering& L, const onnx::NodeProto& n) {
  Program& p = L.program();
  Val* x = L.in(n, 0);
  if (x->kind != Val::kTensor || p.tensors[x->tensor].kind != TensorKind::kI32)
    return L.fail(n, "slices a value that is not a real-valued tensor");
  std::vector<double> starts, ends, axes, steps;
  for (int i = 1; i < n.input_size(); ++i) {
    Val* v = L.in(n, i);
    if (!n.input(i).empty() && (!v || v->kind != Val::kConst))
      return L.fail(n, "slice parameters must be constants");
  }
  starts = L.in(n, 1)->c.values, ends = L.in(n, 2)->c.values;
  if (L.in(n, 3)) axes = L.in(n, 3)->c.values;
  if (L.in(n, 4)) steps = L.in(n, 4)->c.values;
  if (ends.size() != starts.size() || (!axes.empty() && axes.size() != starts.size()) ||
      (!steps.empty() && steps.size() != starts.size()))
    return L.fail(n, "starts, ends, axes and steps must have the same length");
  TensorDesc d = p.tensors[x->tensor];
  Step st;
  st.op = StepOp::kSlice;
  st.name = n.name();
  st.in0 = x->tensor;
  int* dims[4] = {nullptr, &d.c, &d.h, &d.w};
  for (size_t i = 0; i < starts.size(); ++i) {
    const double axis_value = axes.empty() ? static_cast<double>(i) : axes[i];
    const double step_value = steps.empty() ? 1.0 : steps[i];
    if (!(axis_value >= -4 && axis_value <= 3) || !(step_value >= 1 && step_value <= kMaxSide))
      return L.fail(n, "only forward slices of the channel or spatial axes are supported");
    int axis = static_cast<int>(axis_value);
    if (axis < 0) axis += 4;
    int64_t step = static_cast<int64_t>(step_value);
    if (axis < 1 || axis > 3)
      return L.fail(n, "only forward slices of the channel or spatial axes are supported");
    int64_t size = *dims[axis];
    auto clampi = [&](double v) {
      if (std::isnan(v)) v = 0;
      int64_t i64 = v >= 9e18 ? size : v <= -9e18 ? 0 : static_cast<int64_t>(v);
      if (i64 < 0) i64 += size;
      return std::max<int64_t>(0, std::min<int64_t>(size, i64));
    };
    int64_t b = clampi(starts[i]), e = clampi(ends[i]);
    st.slice_begin[axis - 1] = static_cast<int>(b);
    st.slice_step[axis - 1] = static_cast<int>(step);
    *dims[axis] = static_cast<int>(e > b ? (e - b + step - 1) / step : 0);
  }
  d.cp = d.c;
  st.out = L.add_tensor(d);
  p.steps.push_back(st);
  L.set_tensor(n.output(0), st.out);
  return Status::Ok();
}

Status lower_pad(Lowering& L, const onnx::NodeProto& n) {
  Program& p = L.program();
  Val* x = L.in(n, 0);
  if (x->kind != Val::kTensor || p.tensors[x->tensor].kind != TensorKind::kI32)
    return L.fail(n, "pads a value that is not a real-valued tensor");
  std::vector<double> pads;
  if (n.input_size() > 1 && L.in(n, 1) && L.in(n, 1)->kind == Val::kConst)
    pads = L.in(n, 1)->c.values;
  else {
    auto a = attr_ints(n, "pads");
    pads.assign(a.begin(), a.end());
  }
  const onnx::AttributeProto* mode = attr(n, "mode");
  if (mode && mode->s() != "constant") return L.fail(n, "only constant padding is supported");
  double value = 0;
  if (n.input_size() > 2 && !n.input(2).empty() && (!L.scalar(n.input(2), &value) || value != 0))
    return L.fail(n, "only zero padding is supported");
  if (pads.size() != 8 || pads[0] != 0 || pads[4] != 0)
    return L.fail(n, "pads must have 8 values with none on the batch axis");
  for (double v : pads)
    if (!(v >= 0 && v <= kMaxSide) || v != std::floor(v))
      return L.fail(n, "pad " + std::to_string(v) + ": pads must be whole numbers in [0, " +
                           std::to_string(kMaxSide) + "]");
  TensorDesc d = p.tensors[x->tensor];
  Step st;
  st.op = StepOp::kPad;
  st.name = n.name();
  st.in0 = x->tensor;
  for (int a = 0; a < 3; ++a) {
    st.pad_before[a] = static_cast<int>(pads[1 + a]);
    st.pad_after[a] = static_cast<int>(pads[5 + a]);
  }
  d.c += st.pad_before[0] + st.pad_after[0];
  d.h += st.pad_before[1] + st.pad_after[1];
  d.w += st.pad_before[2] + st.pad_after[2];
  d.cp = d.c;
  st.out = L.add_tensor(d);
  p.steps.push_back(st);
  L.set_tensor(n.output(0), st.out);
  return Status::Ok();
}

Status lower_concat(Lowering& L, const onnx::NodeProto& n) {
  Program& p = L.program();
  const int64_t axis = attr_int(n, "axis", 0);
  if (axis != 1 && axis != -3)
    return L.fail(
        n, "axis " + std::to_string(axis) + ": only channel concatenation (axis 1) is supported");
  Step st;
  st.op = StepOp::kConcat;
  st.name = n.name();
  TensorDesc d;
  for (int i = 0; i < n.input_size(); ++i) {
    Val* x = L.in(n, i);
    if (!x || x->kind != Val::kTensor || p.tensors[x->tensor].kind != TensorKind::kI32)
      return L.fail(n, "input " + std::to_string(i) + " is not a real-valued tensor");
    const TensorDesc& t = p.tensors[x->tensor];
    if (i == 0) {
      d = t;
      st.in0 = x->tensor;
      continue;
    }
    if (t.h != d.h || t.w != d.w)
      return L.fail(n, "input " + std::to_string(i) + " is " + std::to_string(t.h) + "x" +
                           std::to_string(t.w) + ", input 0 is " + std::to_string(d.h) + "x" +
                           std::to_string(d.w) + "; the maps must have the same size");
    if (d.c + t.c > kMaxSide)
      return L.fail(n, "more than " + std::to_string(kMaxSide) + " channels");
    d.c += t.c;
    st.more.push_back(x->tensor);
  }
  d.cp = d.c;
  st.out = L.add_tensor(d);
  p.steps.push_back(st);
  L.set_tensor(n.output(0), st.out);
  return Status::Ok();
}

}  // namespace mpq::runtime
