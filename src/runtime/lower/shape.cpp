// Shape arithmetic on constants. Exporters compute reshape targets from the maps' shapes
// (ShuffleNet's channel shuffle: Shape -> Gather -> Div -> Unsqueeze -> Concat -> Reshape, and
// Slice ends from Shape -> Add -> Div -> Mul). The runtime knows every map's size when it loads,
// so all of it folds to constants here. The batch axis is 1 in these constants; Reshape reads
// the first entry of its target as the batch.
#include <algorithm>
#include <cmath>

#include "../lowering.h"

namespace mpq::runtime {
namespace {

bool integer_type(int elem_type) {
  return elem_type == onnx::TensorProto::INT64 || elem_type == onnx::TensorProto::INT32 ||
         elem_type == onnx::TensorProto::INT8 || elem_type == onnx::TensorProto::UINT8;
}

Val constant(std::vector<int64_t> dims, std::vector<double> values, int elem_type) {
  Val v;
  v.kind = Val::kConst;
  v.c.dims = std::move(dims);
  v.c.values = std::move(values);
  v.c.elem_type = elem_type;
  return v;
}

bool is_small_const(const Val* v) { return v && v->kind == Val::kConst && !v->packed; }

}  // namespace

Status lower_shape(Lowering& L, const onnx::NodeProto& n) {
  Val* x = L.in(n, 0);
  if (!L.is_tensor(x, TensorKind::kI32) && !L.is_tensor(x, TensorKind::kU8))
    return L.fail(n, "the shape of a value that is not a feature map");
  if (attr(n, "start") || attr(n, "end")) return L.fail(n, "start and end are not supported");
  const TensorDesc& d = L.program().tensors[x->tensor];
  L.set_value(n.output(0),
              constant({4}, {1, double(d.c), double(d.h), double(d.w)}, onnx::TensorProto::INT64));
  return Status::Ok();
}

Status lower_gather(Lowering& L, const onnx::NodeProto& n) {
  Val *data = L.in(n, 0), *idx = L.in(n, 1);
  if (!is_small_const(data) || !is_small_const(idx))
    return L.fail(n, "only gathers from constants (shape arithmetic) are supported");
  if (attr_int(n, "axis", 0) != 0 || data->c.dims.size() != 1)
    return L.fail(n, "only gathers along axis 0 of a 1-D constant are supported");
  const int64_t size = static_cast<int64_t>(data->c.values.size());
  std::vector<double> out;
  for (double i : idx->c.values) {
    // The range first: a crafted index may be NaN or beyond int64.
    if (!(i == std::floor(i)) || !(i >= -double(size) && i < double(size)))
      return L.fail(n, "index " + std::to_string(i) + " is out of range for " +
                           std::to_string(size) + " values");
    int64_t k = static_cast<int64_t>(i);
    if (k < 0) k += size;
    out.push_back(data->c.values[k]);
  }
  L.set_value(n.output(0), constant(idx->c.dims, std::move(out), data->c.elem_type));
  return Status::Ok();
}

Status lower_unsqueeze(Lowering& L, const onnx::NodeProto& n) {
  Val* x = L.in(n, 0);
  if (!is_small_const(x)) return L.fail(n, "only constants can be unsqueezed");
  std::vector<int64_t> axes = attr_ints(n, "axes");
  if (Val* a = L.in(n, 1); a && is_small_const(a))
    for (double v : a->c.values) {
      if (!(std::fabs(v) <= 64) || v != std::floor(v))
        return L.fail(n, "axis " + std::to_string(v) + " is not a small whole number");
      axes.push_back(static_cast<int64_t>(v));
    }
  std::vector<int64_t> dims = x->c.dims;
  const int64_t rank = static_cast<int64_t>(dims.size() + axes.size());
  std::vector<int64_t> sorted;
  for (int64_t a : axes) {
    if (a < -rank || a >= rank) return L.fail(n, "axis " + std::to_string(a) + " is out of range");
    sorted.push_back(a < 0 ? a + rank : a);
  }
  std::sort(sorted.begin(), sorted.end());
  for (int64_t a : sorted) {
    if (a > static_cast<int64_t>(dims.size())) return L.fail(n, "the axes are not valid");
    dims.insert(dims.begin() + a, 1);
  }
  L.set_value(n.output(0), constant(std::move(dims), x->c.values, x->c.elem_type));
  return Status::Ok();
}

Status fold_arithmetic(Lowering& L, const onnx::NodeProto& n, bool* folded) {
  Val *a = L.in(n, 0), *b = L.in(n, 1);
  *folded = is_small_const(a) && is_small_const(b);
  if (!*folded) return Status::Ok();
  const size_t na = a->c.values.size(), nb = b->c.values.size();
  if (na != nb && na != 1 && nb != 1)
    return L.fail(n, "constants of " + std::to_string(na) + " and " + std::to_string(nb) +
                         " values: only equal sizes or a scalar broadcast are supported");
  const bool integer = integer_type(a->c.elem_type) && integer_type(b->c.elem_type);
  const std::string& op = n.op_type();
  std::vector<double> out(std::max(na, nb));
  for (size_t i = 0; i < out.size(); ++i) {
    const double x = a->c.values[na == 1 ? 0 : i], y = b->c.values[nb == 1 ? 0 : i];
    double r = op == "Add" ? x + y : op == "Sub" ? x - y : op == "Mul" ? x * y : 0;
    if (op == "Div") {
      if (integer && y == 0) return L.fail(n, "integer division by zero");
      r = integer ? std::trunc(x / y) : x / y;
    }
    out[i] = r;
  }
  L.set_value(n.output(0),
              constant(na >= nb ? a->c.dims : b->c.dims, std::move(out), a->c.elem_type));
  return Status::Ok();
}

Status lower_arithmetic(Lowering& L, const onnx::NodeProto& n) {
  bool folded = false;
  if (Status s = fold_arithmetic(L, n, &folded); !s.ok() || folded) return s;
  if (n.op_type() == "Mul") return lower_mul(L, n);
  return L.fail(
      n, n.op_type() + " of feature maps is not supported (only of constants: shape arithmetic)");
}

Status fold_concat(Lowering& L, const onnx::NodeProto& n, bool* folded) {
  *folded = n.input_size() > 0;
  for (int i = 0; i < n.input_size() && *folded; ++i) *folded = is_small_const(L.in(n, i));
  if (!*folded) return Status::Ok();
  std::vector<double> out;
  for (int i = 0; i < n.input_size(); ++i) {
    const Const& c = L.in(n, i)->c;
    if (c.dims.size() != 1) return L.fail(n, "only 1-D constants can be concatenated");
    out.insert(out.end(), c.values.begin(), c.values.end());
  }
  const int64_t size = static_cast<int64_t>(out.size());
  L.set_value(n.output(0), constant({size}, std::move(out), L.in(n, 0)->c.elem_type));
  return Status::Ok();
}

}  // namespace mpq::runtime
