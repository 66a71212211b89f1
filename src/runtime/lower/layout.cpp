// Ops that move values: Flatten/Squeeze (aliases of a 1x1 map), Slice, Pad, Concat, and
// Reshape -> Transpose -> Reshape channel shuffles.
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
  return L.add_step(n, st, d);
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
  st.in0 = x->tensor;
  for (int a = 0; a < 3; ++a) {
    st.pad_before[a] = static_cast<int>(pads[1 + a]);
    st.pad_after[a] = static_cast<int>(pads[5 + a]);
  }
  d.c += st.pad_before[0] + st.pad_after[0];
  d.h += st.pad_before[1] + st.pad_after[1];
  d.w += st.pad_before[2] + st.pad_after[2];
  d.cp = d.c;
  return L.add_step(n, st, d);
}

Status lower_concat(Lowering& L, const onnx::NodeProto& n) {
  bool folded = false;
  if (Status s = fold_concat(L, n, &folded); !s.ok() || folded) return s;
  Program& p = L.program();
  const int64_t axis = attr_int(n, "axis", 0);
  if (axis != 1 && axis != -3)
    return L.fail(
        n, "axis " + std::to_string(axis) + ": only channel concatenation (axis 1) is supported");
  Step st;
  st.op = StepOp::kConcat;
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
  return L.add_step(n, st, d);
}

// Reshape of a feature map: of a 1x1 map, an alias (after global pooling); to
// [batch, g, c / g, h, w], the grouped view of a channel shuffle; of that view transposed,
// back to [batch, c, h, w], the shuffle itself (one gather of the channels). The target's first
// entry is the batch (0, 1 or -1: shape arithmetic computes it from a batch of 1).
Status lower_reshape(Lowering& L, const onnx::NodeProto& n) {
  Val *x = L.in(n, 0), *target = L.in(n, 1);
  if (target->kind != Val::kConst || target->packed)
    return L.fail(n, "the target shape must be a constant");
  if (attr_int(n, "allowzero", 0) != 0) return L.fail(n, "allowzero = 1 is not supported");
  std::vector<int64_t> t;
  for (double v : target->c.values) {
    if (!(std::fabs(v) <= kMaxSide) || v != std::floor(v))
      return L.fail(n, "target entry " + std::to_string(v) +
                           ": entries must be whole numbers in [-" + std::to_string(kMaxSide) +
                           ", " + std::to_string(kMaxSide) + "]");
    t.push_back(static_cast<int64_t>(v));
  }
  if (x->kind != Val::kTensor && x->kind != Val::kShuffled)
    return L.fail(n, "reshapes something that is not a feature map");
  const TensorDesc d = L.program().tensors[x->tensor];
  if (t.empty() || (t[0] != 0 && t[0] != 1 && t[0] != -1))
    return L.fail(n, "the target's first entry must be the batch (0, 1 or -1)");
  // The entries after the batch, 0 copying the input's (c, h, w) and one -1 inferred.
  const int64_t in_dims[3] = {d.c, d.h, d.w};
  std::vector<int64_t> rest(t.begin() + 1, t.end());
  const int64_t total = static_cast<int64_t>(d.c) * d.h * d.w;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < rest.size(); ++i) {
    if (rest[i] == 0 && i < 3) rest[i] = in_dims[i];
    if (rest[i] == -1 && infer < 0) {
      infer = static_cast<int64_t>(i);
      continue;
    }
    if (rest[i] < 1 || rest[i] > kMaxSide) return L.fail(n, "the target shape is not valid");
    if (known > total / rest[i])  // (checked before it could overflow)
      return L.fail(n,
                    "the target shape holds more values than the map's " + std::to_string(total));
    known *= rest[i];
  }
  if (infer >= 0) {
    if (total % known != 0) return L.fail(n, "the target shape does not divide the map");
    rest[infer] = total / known;
  }
  const int64_t product = infer >= 0 ? total : known;
  if (product != total)
    return L.fail(n, "the target shape holds " + std::to_string(product) + " values, the map " +
                         std::to_string(total));
  if (x->kind == Val::kShuffled) {
    if (rest != std::vector<int64_t>{d.c, d.h, d.w})
      return L.fail(n, "a transposed grouped view must be reshaped back to the map's shape");
    const int g = x->groups, per = d.c / g;
    Step st;
    st.op = StepOp::kShuffle;
    st.in0 = x->tensor;
    for (int i = 0; i < per; ++i)
      for (int j = 0; j < g; ++j) st.channel_map.push_back(j * per + i);
    TensorDesc out = d;
    out.cp = out.c;
    return L.add_step(n, st, out);
  }
  if (rest.size() == 4 && rest[2] == d.h && rest[3] == d.w && rest[0] * rest[1] == d.c &&
      L.is_tensor(x, TensorKind::kI32)) {
    Val v = *x;
    v.kind = Val::kGrouped;
    v.groups = static_cast<int>(rest[0]);
    L.set_value(n.output(0), v);
    return Status::Ok();
  }
  if (d.h == 1 && d.w == 1) {
    L.set_tensor(n.output(0), x->tensor);
    return Status::Ok();
  }
  return L.fail(n,
                "only reshapes of 1x1 maps and the grouped view of a channel shuffle "
                "([batch, groups, channels / groups, h, w]) are supported");
}

// Transpose of a grouped view's two channel axes (perm [0, 2, 1, 3, 4]): the channel shuffle.
Status lower_transpose(Lowering& L, const onnx::NodeProto& n) {
  Val* x = L.in(n, 0);
  if (x->kind != Val::kGrouped || attr_ints(n, "perm") != std::vector<int64_t>{0, 2, 1, 3, 4})
    return L.fail(n,
                  "only the channel shuffle (perm [0, 2, 1, 3, 4] of a [batch, groups, "
                  "channels / groups, h, w] view) is supported");
  Val v = *x;
  v.kind = Val::kShuffled;
  L.set_value(n.output(0), v);
  return Status::Ok();
}

}  // namespace mpq::runtime
