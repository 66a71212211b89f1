// Lowering::run and the table of op lowerings (the lowerings themselves: src/runtime/lower/).
#include "lowering.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace mpq::runtime {
namespace {

Status error(StatusCode code, const std::string& message) { return Status{code, message}; }

}  // namespace

const std::map<std::string, OpLowering>& op_lowerings() {
  static const std::map<std::string, OpLowering> table = {
      {"Constant", {0, lower_constant}},
      {"Cast", {1, lower_cast}},
      {"DequantizeLinear", {2, lower_dequantize}},
      {"QuantizeLinear", {2, lower_quantize}},
      {"Clip", {1, lower_clip}},
      {"Relu", {1, lower_clip}},
      {"Conv", {2, lower_conv}},
      {"Gemm", {2, lower_gemm}},
      {"Add", {2, lower_add}},
      {"GlobalAveragePool", {1, lower_global_pool}},
      {"ReduceMean", {1, lower_global_pool}},
      {"MaxPool", {1, lower_max_pool}},
      {"AveragePool", {1, lower_average_pool}},
      {"BatchNormalization", {5, lower_batch_norm}},
      {"Flatten", {1, lower_flatten}},
      {"Reshape", {2, lower_reshape}},
      {"Squeeze", {1, lower_flatten}},
      {"Transpose", {1, lower_transpose}},
      {"Shape", {1, lower_shape}},
      {"Gather", {2, lower_gather}},
      {"Unsqueeze", {1, lower_unsqueeze}},
      {"Sub", {2, lower_arithmetic}},
      {"Mul", {2, lower_arithmetic}},
      {"Div", {2, lower_arithmetic}},
      {"Sigmoid", {1, lower_unary}},
      {"HardSigmoid", {1, lower_unary}},
      {"Slice", {3, lower_slice}},
      {"Pad", {1, lower_pad}},
      {"Concat", {1, lower_concat}},
  };
  return table;
}

int64_t element_count(const std::vector<int64_t>& dims) {
  int64_t n = 1, nonzero = 1;  // a zero dimension does not excuse a huge one beside it
  for (int64_t d : dims) {
    if (d < 0 || d > kMaxElements || (d > 0 && nonzero > kMaxElements / d)) return -1;
    n *= d;
    if (d > 0) nonzero *= d;
  }
  return n;
}

bool parse_tensor(const onnx::TensorProto& t, Const* out) {
  out->dims.assign(t.dims().begin(), t.dims().end());
  out->elem_type = t.data_type();
  const int64_t n = element_count(out->dims);
  if (n < 0) return false;
  const std::string& raw = t.raw_data();
  auto from_raw = [&](auto zero) {
    using T = decltype(zero);
    if (raw.size() != n * sizeof(T)) return false;
    out->values.resize(n);
    for (int64_t i = 0; i < n; ++i) {
      T v;
      std::memcpy(&v, raw.data() + i * sizeof(T), sizeof(T));
      out->values[i] = static_cast<double>(v);
    }
    return true;
  };
  bool has_raw = t.has_raw_data();
  switch (t.data_type()) {
    case onnx::TensorProto::FLOAT:
      if (has_raw) return from_raw(float{});
      if (t.float_data_size() != n) return false;
      out->values.resize(n);
      for (int64_t i = 0; i < n; ++i) out->values[i] = t.float_data(i);
      return true;
    case onnx::TensorProto::UINT8:
    case onnx::TensorProto::INT8:
    case onnx::TensorProto::INT32:
    case onnx::TensorProto::BOOL:
      if (has_raw) {
        if (t.data_type() == onnx::TensorProto::UINT8 || t.data_type() == onnx::TensorProto::BOOL)
          return from_raw(uint8_t{});
        if (t.data_type() == onnx::TensorProto::INT8) return from_raw(int8_t{});
        return from_raw(int32_t{});
      }
      if (t.int32_data_size() != n) return false;
      out->values.resize(n);
      for (int64_t i = 0; i < n; ++i) out->values[i] = t.int32_data(i);
      return true;
    case onnx::TensorProto::INT64:
      if (has_raw) return from_raw(int64_t{});
      if (t.int64_data_size() != n) return false;
      out->values.resize(n);
      for (int64_t i = 0; i < n; ++i) out->values[i] = static_cast<double>(t.int64_data(i));
      return true;
    case onnx::TensorProto::DOUBLE:
      if (has_raw) return from_raw(double{});
      if (t.double_data_size() != n) return false;
      out->values.resize(n);
      for (int64_t i = 0; i < n; ++i) out->values[i] = t.double_data(i);
      return true;
    default:
      return false;
  }
}

int64_t attr_int(const onnx::NodeProto& n, const std::string& name, int64_t fallback) {
  for (const auto& a : n.attribute())
    if (a.name() == name) return a.i();
  return fallback;
}
std::vector<int64_t> attr_ints(const onnx::NodeProto& n, const std::string& name) {
  for (const auto& a : n.attribute())
    if (a.name() == name) return {a.ints().begin(), a.ints().end()};
  return {};
}
const onnx::AttributeProto* attr(const onnx::NodeProto& n, const std::string& name) {
  for (const auto& a : n.attribute())
    if (a.name() == name) return &a;
  return nullptr;
}

int bits_of(int lo, int hi) {
  int b = 1;
  while ((1 << b) - 1 < hi - lo) ++b;
  return b;
}

Status Lowering::fail(const onnx::NodeProto& n, const std::string& what) const {
  return Status{StatusCode::kUnsupported,
                path_ + ": node '" + n.name() + "' (" + n.op_type() + "): " + what};
}

Val* Lowering::get(const std::string& name) {
  auto it = vals_.find(name);
  return it == vals_.end() ? nullptr : &it->second;
}

bool Lowering::scalar(const std::string& name, double* v) {
  Val* x = get(name);
  if (!x || x->kind != Val::kConst || x->c.values.size() != 1) return false;
  *v = x->c.values[0];
  return true;
}

int Lowering::add_tensor(TensorDesc d) {
  p_->tensors.push_back(std::move(d));
  return static_cast<int>(p_->tensors.size()) - 1;
}

void Lowering::set_tensor(const std::string& name, int t) {
  p_->names[name] = t;
  Val v;
  v.kind = Val::kTensor;
  v.tensor = t;
  vals_[name] = v;
}

Status Lowering::add_step(const onnx::NodeProto& n, Step st, TensorDesc out) {
  st.name = n.name();
  st.out = add_tensor(std::move(out));
  p_->steps.push_back(st);
  set_tensor(n.output(0), st.out);
  return Status::Ok();
}

Status Lowering::run(const onnx::ModelProto& model,
                     const std::map<std::string, PackedRef>& packed) {
  packed_ = packed;
  const onnx::GraphProto& g = model.graph();
  for (const auto& init : g.initializer()) {
    Val v;
    v.kind = Val::kConst;
    if (!parse_tensor(init, &v.c))
      return error(StatusCode::kBadFile, path_ + ": initializer '" + init.name() +
                                             "' has a data type or size the runtime cannot read");
    vals_[init.name()] = std::move(v);
  }
  for (auto& [name, ref] : packed_) {
    Val v;
    v.kind = Val::kConst;
    v.c.dims = ref.shape;
    v.packed = &ref;
    vals_[name] = std::move(v);
  }
  int inputs = 0;
  for (const auto& in : g.input()) {
    if (vals_.count(in.name())) continue;  // an initializer listed as input (old exporters)
    if (++inputs > 1)
      return error(StatusCode::kUnsupported, path_ + ": more than one graph input ('" + in.name() +
                                                 "'); the runtime takes one image");
    const auto& shape = in.type().tensor_type().shape();
    if (shape.dim_size() != 4)
      return error(StatusCode::kUnsupported, path_ + ": input '" + in.name() + "' has " +
                                                 std::to_string(shape.dim_size()) +
                                                 " dimensions; the runtime takes NCHW images");
    for (int d = 1; d < 4; ++d)
      if (shape.dim(d).dim_value() < 1 || shape.dim(d).dim_value() > kMaxSide)
        return error(StatusCode::kBadFile,
                     path_ + ": input '" + in.name() + "' dimension " + std::to_string(d) + " is " +
                         std::to_string(shape.dim(d).dim_value()) + "; it must be in [1, " +
                         std::to_string(kMaxSide) + "]");
    p_->in_c = static_cast<int>(shape.dim(1).dim_value());
    p_->in_h = static_cast<int>(shape.dim(2).dim_value());
    p_->in_w = static_cast<int>(shape.dim(3).dim_value());
    Val v;
    v.kind = Val::kInput;
    vals_[in.name()] = v;
  }
  if (inputs == 0) return error(StatusCode::kBadFile, path_ + ": the graph has no input");
  for (const auto& n : g.node())
    if (Status s = node(n); !s.ok()) return s;
  // Every tensor is a map of real size: a crafted file must not make the runtime allocate
  // without bound.
  for (const TensorDesc& d : p_->tensors)
    if (d.c < 1 || d.h < 1 || d.w < 1 || d.c > kMaxSide || d.h > kMaxSide || d.w > kMaxSide ||
        static_cast<int64_t>(d.c) * d.h * d.w > kMaxElements)
      return error(StatusCode::kBadFile, path_ + ": a tensor of " + std::to_string(d.c) + "x" +
                                             std::to_string(d.h) + "x" + std::to_string(d.w) +
                                             " values; every map must be non-empty, at most " +
                                             std::to_string(kMaxSide) +
                                             " per side and 2^28 values");
  if (g.output_size() != 1)
    return error(StatusCode::kUnsupported, path_ + ": the runtime needs exactly one output");
  Val* out = get(g.output(0).name());
  if (!out || out->kind != Val::kTensor || p_->tensors[out->tensor].kind != TensorKind::kI32)
    return error(StatusCode::kUnsupported,
                 path_ + ": output '" + g.output(0).name() + "' is not computed by the graph");
  p_->output = out->tensor;
  return Status::Ok();
}

Status Lowering::node(const onnx::NodeProto& n) {
  for (int i = 0; i < n.input_size(); ++i)
    if (!n.input(i).empty() && !get(n.input(i)))
      return fail(n, "input '" + n.input(i) + "' is not defined before this node");
  const auto& table = op_lowerings();
  auto it = table.find(n.op_type());
  if (it == table.end()) {
    std::string ops;
    for (const auto& [op, lowering] : table) ops += (ops.empty() ? "" : ", ") + op;
    return fail(n, "the integer runtime does not implement this op (it runs " + ops + ")");
  }
  // The inputs each op needs, checked before anything reads them; every op has one output.
  const int required = it->second.inputs;
  for (int i = 0; i < required; ++i)
    if (i >= n.input_size() || n.input(i).empty())
      return fail(n, "input " + std::to_string(i) + " is missing (" + n.op_type() + " needs " +
                         std::to_string(required) + ")");
  if (n.output_size() < 1 || n.output(0).empty()) return fail(n, "the node has no output");
  return it->second.lower(*this, n);
}

}  // namespace mpq::runtime
