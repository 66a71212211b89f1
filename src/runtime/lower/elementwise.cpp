// Element-wise ops on real-valued (int32) tensors: Clip and Relu (on a uint8 tensor they narrow
// its grid), Add, and inference BatchNormalization where no conv precedes it to fold into
// (DenseNet's after a Concat) as a per-channel affine map.
#include <algorithm>
#include <cmath>

#include "../lowering.h"

namespace mpq::runtime {

Status lower_clip(Lowering& L, const onnx::NodeProto& n) {
  Program& p = L.program();
  Val* x = L.in(n, 0);
  const std::string& op = n.op_type();
  double lo = op == "Relu" ? 0 : -INFINITY, hi = INFINITY;
  if (op == "Clip") {
    if (n.input_size() > 1 && !n.input(1).empty() && !L.scalar(n.input(1), &lo))
      return L.fail(n, "min must be a constant");
    if (n.input_size() > 2 && !n.input(2).empty() && !L.scalar(n.input(2), &hi))
      return L.fail(n, "max must be a constant");
    if (const auto* a = attr(n, "min")) lo = a->f();
    if (const auto* a = attr(n, "max")) hi = a->f();
    if (std::isnan(lo) || std::isnan(hi)) return L.fail(n, "min and max must be numbers");
  }
  if (x->kind != Val::kTensor) return L.fail(n, "clips something that is not a tensor");
  TensorDesc src = p.tensors[x->tensor];
  if (src.kind == TensorKind::kU8) {  // narrows the grid of a QuantizeLinear
    TensorDesc& d = p.tensors[x->tensor];
    // In doubles first: a bound like 1e30 must not be cast to int.
    const double new_lo = std::max<double>(d.lo, std::ceil(lo));
    const double new_hi = std::min<double>(d.hi, std::floor(hi));
    if (!(new_lo <= new_hi)) return L.fail(n, "clips the uint8 grid to nothing");
    d.lo = static_cast<int>(new_lo), d.hi = static_cast<int>(new_hi);
    L.set_tensor(n.output(0), x->tensor);
    return Status::Ok();
  }
  Step st;
  st.op = StepOp::kClip;
  st.in0 = x->tensor;
  st.lo = lo, st.hi = hi;
  return L.add_step(n, st, src);
}

Status lower_add(Lowering& L, const onnx::NodeProto& n) {
  bool folded = false;
  if (Status s = fold_arithmetic(L, n, &folded); !s.ok() || folded) return s;
  Program& p = L.program();
  Val *a = L.in(n, 0), *b = L.in(n, 1);
  if (a->kind != Val::kTensor || b->kind != Val::kTensor ||
      p.tensors[a->tensor].kind != TensorKind::kI32 ||
      p.tensors[b->tensor].kind != TensorKind::kI32)
    return L.fail(n, "adds values that are not real-valued tensors");
  const TensorDesc &da = p.tensors[a->tensor], &db = p.tensors[b->tensor];
  if (da.c != db.c || da.h != db.h || da.w != db.w)
    return L.fail(n, "adds tensors of different shapes (" + std::to_string(da.c) + "x" +
                         std::to_string(da.h) + "x" + std::to_string(da.w) + " and " +
                         std::to_string(db.c) + "x" + std::to_string(db.h) + "x" +
                         std::to_string(db.w) + "); broadcasting is not supported");
  Step st;
  st.op = StepOp::kAdd;
  st.in0 = a->tensor, st.in1 = b->tensor;
  return L.add_step(n, st, da);
}

Status lower_batch_norm(Lowering& L, const onnx::NodeProto& n) {
  Val* x = L.in(n, 0);
  if (!L.is_tensor(x, TensorKind::kI32))
    return L.fail(n, "normalizes a value that is not a real-valued tensor");
  if (n.output_size() > 1) return L.fail(n, "training-mode outputs are not supported");
  if (attr_int(n, "training_mode", 0) != 0) return L.fail(n, "training_mode = 1 is not supported");
  const TensorDesc& in = L.program().tensors[x->tensor];
  const char* names[4] = {"scale", "bias", "mean", "var"};
  const std::vector<double>* v[4];
  for (int i = 0; i < 4; ++i) {
    Val* c = L.in(n, i + 1);
    if (c->kind != Val::kConst || c->c.values.size() != static_cast<size_t>(in.c))
      return L.fail(n, std::string(names[i]) + " must be a constant of " + std::to_string(in.c) +
                           " values, one per channel");
    v[i] = &c->c.values;
  }
  const onnx::AttributeProto* eps_attr = attr(n, "epsilon");
  const double eps = eps_attr ? eps_attr->f() : 1e-5;
  Step st;
  st.op = StepOp::kAffine;
  st.in0 = x->tensor;
  for (int c = 0; c < in.c; ++c) {
    const double var = (*v[3])[c] + eps;
    if (!(var > 0) || !std::isfinite(var))
      return L.fail(n, "channel " + std::to_string(c) + ": variance + epsilon is " +
                           std::to_string(var) + "; it must be finite and positive");
    const double a = (*v[0])[c] / std::sqrt(var), b = (*v[1])[c] - (*v[2])[c] * a;
    if (!std::isfinite(a) || !std::isfinite(b))
      return L.fail(n, "channel " + std::to_string(c) + ": the scale or shift is not finite");
    st.channel_scale.push_back(a);
    st.channel_shift.push_back(b);
  }
  TensorDesc out = in;
  out.cp = out.c;
  return L.add_step(n, st, out);
}

// Sigmoid and HardSigmoid of a real-valued tensor (squeeze-excite gates, SiLU's and HardSwish's
// factor).
Status lower_unary(Lowering& L, const onnx::NodeProto& n) {
  Val* x = L.in(n, 0);
  if (!L.is_tensor(x, TensorKind::kI32))
    return L.fail(n, "applies to a value that is not a real-valued tensor");
  Step st;
  st.op = StepOp::kUnary;
  st.in0 = x->tensor;
  const std::string& op = n.op_type();
  st.unary = op == "Sigmoid" ? UnaryOp::kSigmoid : UnaryOp::kHardSigmoid;
  if (const auto* a = attr(n, "alpha")) st.alpha = a->f();
  if (const auto* b = attr(n, "beta")) st.beta = b->f();
  if (!std::isfinite(st.alpha) || !std::isfinite(st.beta))
    return L.fail(n, "alpha and beta must be finite");
  TensorDesc out = L.program().tensors[x->tensor];
  out.cp = out.c;
  return L.add_step(n, st, out);
}

// Mul of two real-valued tensors of one shape, or of a map and a 1x1 map of its channels (a
// squeeze-excite gate): the int64 product of the integers, rescaled once.
Status lower_mul(Lowering& L, const onnx::NodeProto& n) {
  Program& p = L.program();
  Val *a = L.in(n, 0), *b = L.in(n, 1);
  if (!L.is_tensor(a, TensorKind::kI32) || !L.is_tensor(b, TensorKind::kI32))
    return L.fail(n, "Mul of feature maps is supported for real-valued tensors only");
  const TensorDesc *da = &p.tensors[a->tensor], *db = &p.tensors[b->tensor];
  Step st;
  st.op = StepOp::kMul;
  st.in0 = a->tensor, st.in1 = b->tensor;
  if (da->h * da->w < db->h * db->w) {  // the map first, the per-channel factor second
    std::swap(da, db);
    std::swap(st.in0, st.in1);
  }
  if (da->c != db->c || ((db->h != da->h || db->w != da->w) && (db->h != 1 || db->w != 1)))
    return L.fail(n, "multiplies a " + std::to_string(da->c) + "x" + std::to_string(da->h) + "x" +
                         std::to_string(da->w) + " map by a " + std::to_string(db->c) + "x" +
                         std::to_string(db->h) + "x" + std::to_string(db->w) +
                         " one; only equal shapes or one factor per channel are supported");
  TensorDesc out = *da;
  out.cp = out.c;
  return L.add_step(n, st, out);
}

}  // namespace mpq::runtime
