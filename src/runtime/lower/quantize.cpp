// Constants and the Q/DQ pairs of a QCDQ graph: DequantizeLinear of an int8 (or bit-packed)
// weight is a weight; QuantizeLinear makes a uint8 tensor; DequantizeLinear of one aliases it.
#include <algorithm>
#include <cmath>

#include "../lowering.h"

namespace mpq::runtime {

Status lower_constant(Lowering& L, const onnx::NodeProto& n) {
  const onnx::AttributeProto* a = attr(n, "value");
  Val v;
  v.kind = Val::kConst;
  if (!a || !parse_tensor(a->t(), &v.c)) return L.fail(n, "a Constant without a readable value");
  L.set_value(n.output(0), std::move(v));
  return Status::Ok();
}

Status lower_cast(Lowering& L, const onnx::NodeProto& n) {
  if (L.in(n, 0)->kind != Val::kConst) return L.fail(n, "only casts of constants are supported");
  Val v = *L.in(n, 0);
  const int64_t to = attr_int(n, "to", 0);
  if (to == onnx::TensorProto::INT64 || to == onnx::TensorProto::INT32) {  // shape arithmetic
    for (double& x : v.c.values) x = std::trunc(x);
    v.c.elem_type = static_cast<int>(to);
  }
  L.set_value(n.output(0), std::move(v));
  return Status::Ok();
}

Status lower_dequantize(Lowering& L, const onnx::NodeProto& n) {
  Program& p = L.program();
  Val* x = L.in(n, 0);
  Val *s = L.in(n, 1), *z = L.in(n, 2);
  if (!s || s->kind != Val::kConst) return L.fail(n, "the scale is not a constant");
  if (x->kind == Val::kConst) {  // a weight
    auto w = std::make_shared<Weight>();
    w->shape = x->c.dims;
    if (x->packed) {
      const PackedRef& ref = *x->packed;
      w->bits = ref.bits;
      const int64_t count = element_count(ref.shape);
      if (count < 1) return L.fail(n, "weight '" + n.input(0) + "' has no elements");
      w->q.resize(count);
      for (int64_t i = 0; i < count; ++i) w->q[i] = packed_value(ref.data, i, ref.bits);
    } else if (x->c.elem_type == onnx::TensorProto::INT8) {
      w->q.assign(x->c.values.begin(), x->c.values.end());
    } else {
      return L.fail(n, "weight '" + n.input(0) + "' is not int8");
    }
    if (z)
      for (double zp : z->c.values)
        if (zp != 0) return L.fail(n, "weight zero point " + std::to_string(zp) + ": must be 0");
    w->scale = s->c.values;
    for (int64_t d : w->shape)
      if (d < 1) return L.fail(n, "weight '" + n.input(0) + "' has an empty dimension");
    for (double v : w->scale)
      if (!(v > 0) || !std::isfinite(v))
        return L.fail(n, "weight scale " + std::to_string(v) + ": must be finite and positive");
    if (w->shape.empty() || (w->scale.size() != 1 && w->scale.size() != size_t(w->shape[0])))
      return L.fail(n, "weight scales must be per tensor or per output channel (axis 0)");
    if (w->scale.size() == 1) w->scale.assign(w->shape[0], w->scale[0]);
    Val v;
    v.kind = Val::kWeight;
    v.w = std::move(w);
    L.set_value(n.output(0), std::move(v));
    return Status::Ok();
  }
  if (x->kind != Val::kTensor || p.tensors[x->tensor].kind != TensorKind::kU8)
    return L.fail(n, "dequantizes something that is neither a weight nor a quantized tensor");
  L.set_tensor(n.output(0), x->tensor);
  return Status::Ok();
}

Status lower_quantize(Lowering& L, const onnx::NodeProto& n) {
  Program& p = L.program();
  Val* x = L.in(n, 0);
  double scale = 0, zp = 0;
  if (!L.scalar(n.input(1), &scale) || !(scale > 0) || !std::isfinite(scale))
    return L.fail(n, "the scale must be one finite positive constant");
  if (n.input_size() > 2 && !L.scalar(n.input(2), &zp))
    return L.fail(n, "the zero point must be a constant");
  if (n.input_size() > 2 && L.get(n.input(2))->c.elem_type != onnx::TensorProto::UINT8)
    return L.fail(n, "activations must quantize to uint8");
  TensorDesc d;
  d.kind = TensorKind::kU8;
  d.scale = scale;
  d.zp = static_cast<int32_t>(zp);
  Step st;
  if (x->kind == Val::kInput) {
    d.c = p.in_c, d.h = p.in_h, d.w = p.in_w;
    st.op = StepOp::kQuantizeInput;
  } else if (x->kind == Val::kTensor && p.tensors[x->tensor].kind == TensorKind::kI32) {
    const TensorDesc& src = p.tensors[x->tensor];
    d.c = src.c, d.h = src.h, d.w = src.w;
    st.op = StepOp::kRequantize;
    st.in0 = x->tensor;
  } else {
    return L.fail(n, "quantizes a value that is not real-valued");
  }
  d.cp = (d.c + 3) / 4 * 4;
  return L.add_step(n, st, d);
}

}  // namespace mpq::runtime
