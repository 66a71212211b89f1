// Loading a .mpq file into the integer runtime: the QCDQ graph is lowered to a list of integer
// steps.
//
//   QuantizeLinear [-> Clip] -> DequantizeLinear   a uint8 tensor (the Clip narrows its grid)
//   DequantizeLinear(packed int8 weight)            a weight, kept bit-packed
//   Conv / Gemm                                     conv, dwconv or fc on a uint8 input; the
//                                                   output is int32 ("real") unless the chain
//                                                   Conv [-> Relu | Clip] -> QuantizeLinear
//                                                   fuses into one uint8 requantize and clamp
//   Add, Relu, Clip, GlobalAveragePool, Slice, Pad  on int32 real tensors
//   Flatten, Reshape                                aliases (of a 1x1 spatial tensor)
//
// A real tensor holds round(value / S), S spreading the range of a quantizer that reads it
// (directly or through real steps) over 2^26 levels, so a residual stream keeps the precision
// the simulation gives it in float.
#include <onnx/onnx_pb.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "mpq/export/packed_format.h"
#include "program.h"

namespace mpq::runtime {
namespace {

Status error(StatusCode code, const std::string& message) { return Status{code, message}; }

// An initializer or Constant, as doubles (small tensors) or as int8 values (weights).
struct Const {
  std::vector<int64_t> dims;
  std::vector<double> values;
  int elem_type = 0;
};

// The number of elements of `dims`, or -1 when a dimension is negative or the product exceeds
// kMaxElements (no real layer or map comes near it; a crafted file must not make us allocate).
constexpr int64_t kMaxElements = int64_t{1} << 28;
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

struct PackedRef {
  int bits = 8;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;  // LSB-first, row-major
};

struct Weight {
  std::vector<int8_t> q;  // transient: repacked into the runtime layout, then released
  std::vector<int64_t> shape;
  std::vector<double> scale;  // per output channel
  int bits = 8;
};

// What an ONNX value is while lowering.
struct Val {
  enum Kind { kNone, kInput, kTensor, kConst, kWeight } kind = kNone;
  int tensor = -1;
  Const c;
  const PackedRef* packed = nullptr;  // a bit-packed weight of the weights section
  std::shared_ptr<Weight> w;
};

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

class Lowering {
 public:
  Lowering(Program* p, const std::string& path) : p_(p), path_(path) {}

  Status run(const onnx::ModelProto& model, const std::map<std::string, PackedRef>& packed);

 private:
  Status fail(const onnx::NodeProto& n, const std::string& what) {
    return error(StatusCode::kUnsupported,
                 path_ + ": node '" + n.name() + "' (" + n.op_type() + "): " + what);
  }
  Val* get(const std::string& name) {
    auto it = vals_.find(name);
    return it == vals_.end() ? nullptr : &it->second;
  }
  bool scalar(const std::string& name, double* v) {
    Val* x = get(name);
    if (!x || x->kind != Val::kConst || x->c.values.size() != 1) return false;
    *v = x->c.values[0];
    return true;
  }
  // `name` (a node's output) is the tensor `t`.
  void set_tensor(const std::string& name, int t) {
    p_->names[name] = t;
    Val v;
    v.kind = Val::kTensor;
    v.tensor = t;
    vals_[name] = v;
  }
  int add_tensor(TensorDesc d) {
    p_->tensors.push_back(std::move(d));
    return static_cast<int>(p_->tensors.size()) - 1;
  }
  Status node(const onnx::NodeProto& n);
  Status conv(const onnx::NodeProto& n, bool gemm);
  Status max_pool(const onnx::NodeProto& n);

  Program* p_;
  std::string path_;
  std::map<std::string, Val> vals_;
  std::map<std::string, PackedRef> packed_;
};

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
  const std::string& op = n.op_type();
  auto in = [&](int i) -> Val* { return i < n.input_size() ? get(n.input(i)) : nullptr; };
  auto set_tensor = [&](int t) { this->set_tensor(n.output(0), t); };
  for (int i = 0; i < n.input_size(); ++i)
    if (!n.input(i).empty() && !get(n.input(i)))
      return fail(n, "input '" + n.input(i) + "' is not defined before this node");
  // The inputs each op needs, checked before anything reads them; every op has one output.
  static const std::map<std::string, int> kRequiredInputs = {{"Constant", 0},
                                                             {"Cast", 1},
                                                             {"DequantizeLinear", 2},
                                                             {"QuantizeLinear", 2},
                                                             {"Clip", 1},
                                                             {"Relu", 1},
                                                             {"Conv", 2},
                                                             {"Gemm", 2},
                                                             {"Add", 2},
                                                             {"Flatten", 1},
                                                             {"GlobalAveragePool", 1},
                                                             {"ReduceMean", 1},
                                                             {"Reshape", 1},
                                                             {"Squeeze", 1},
                                                             {"Slice", 3},
                                                             {"Pad", 1},
                                                             {"MaxPool", 1},
                                                             {"Concat", 1}};
  if (auto it = kRequiredInputs.find(op); it != kRequiredInputs.end()) {
    for (int i = 0; i < it->second; ++i)
      if (i >= n.input_size() || n.input(i).empty())
        return fail(n, "input " + std::to_string(i) + " is missing (" + op + " needs " +
                           std::to_string(it->second) + ")");
    if (n.output_size() < 1 || n.output(0).empty()) return fail(n, "the node has no output");
  }

  if (op == "Constant") {
    const onnx::AttributeProto* a = attr(n, "value");
    Val v;
    v.kind = Val::kConst;
    if (!a || !parse_tensor(a->t(), &v.c)) return fail(n, "a Constant without a readable value");
    vals_[n.output(0)] = std::move(v);
    return Status::Ok();
  }
  if (op == "Cast") {
    if (in(0)->kind != Val::kConst) return fail(n, "only casts of constants are supported");
    vals_[n.output(0)] = *in(0);
    return Status::Ok();
  }
  if (op == "DequantizeLinear") {
    Val* x = in(0);
    Val *s = in(1), *z = in(2);
    if (!s || s->kind != Val::kConst) return fail(n, "the scale is not a constant");
    if (x->kind == Val::kConst) {  // a weight
      auto w = std::make_shared<Weight>();
      w->shape = x->c.dims;
      if (x->packed) {
        const PackedRef& ref = *x->packed;
        w->bits = ref.bits;
        const int64_t count = element_count(ref.shape);
        if (count < 1) return fail(n, "weight '" + n.input(0) + "' has no elements");
        w->q.resize(count);
        for (int64_t i = 0; i < count; ++i) w->q[i] = packed_value(ref.data, i, ref.bits);
      } else if (x->c.elem_type == onnx::TensorProto::INT8) {
        w->q.assign(x->c.values.begin(), x->c.values.end());
      } else {
        return fail(n, "weight '" + n.input(0) + "' is not int8");
      }
      if (z)
        for (double zp : z->c.values)
          if (zp != 0) return fail(n, "weight zero point " + std::to_string(zp) + ": must be 0");
      w->scale = s->c.values;
      for (int64_t d : w->shape)
        if (d < 1) return fail(n, "weight '" + n.input(0) + "' has an empty dimension");
      for (double v : w->scale)
        if (!(v > 0) || !std::isfinite(v))
          return fail(n, "weight scale " + std::to_string(v) + ": must be finite and positive");
      if (w->shape.empty() || (w->scale.size() != 1 && w->scale.size() != size_t(w->shape[0])))
        return fail(n, "weight scales must be per tensor or per output channel (axis 0)");
      if (w->scale.size() == 1) w->scale.assign(w->shape[0], w->scale[0]);
      Val v;
      v.kind = Val::kWeight;
      v.w = std::move(w);
      vals_[n.output(0)] = std::move(v);
      return Status::Ok();
    }
    if (x->kind != Val::kTensor || p_->tensors[x->tensor].kind != TensorKind::kU8)
      return fail(n, "dequantizes something that is neither a weight nor a quantized tensor");
    set_tensor(x->tensor);
    return Status::Ok();
  }
  if (op == "QuantizeLinear") {
    Val* x = in(0);
    double scale = 0, zp = 0;
    if (!scalar(n.input(1), &scale) || !(scale > 0) || !std::isfinite(scale))
      return fail(n, "the scale must be one finite positive constant");
    if (n.input_size() > 2 && !scalar(n.input(2), &zp))
      return fail(n, "the zero point must be a constant");
    if (n.input_size() > 2 && get(n.input(2))->c.elem_type != onnx::TensorProto::UINT8)
      return fail(n, "activations must quantize to uint8");
    TensorDesc d;
    d.kind = TensorKind::kU8;
    d.scale = scale;
    d.zp = static_cast<int32_t>(zp);
    Step st;
    st.name = n.name();
    if (x->kind == Val::kInput) {
      d.c = p_->in_c, d.h = p_->in_h, d.w = p_->in_w;
      st.op = StepOp::kQuantizeInput;
    } else if (x->kind == Val::kTensor && p_->tensors[x->tensor].kind == TensorKind::kI32) {
      const TensorDesc& src = p_->tensors[x->tensor];
      d.c = src.c, d.h = src.h, d.w = src.w;
      st.op = StepOp::kRequantize;
      st.in0 = x->tensor;
    } else {
      return fail(n, "quantizes a value that is not real-valued");
    }
    d.cp = (d.c + 3) / 4 * 4;
    st.out = add_tensor(d);
    p_->steps.push_back(st);
    set_tensor(st.out);
    return Status::Ok();
  }
  if (op == "Clip" || op == "Relu") {
    Val* x = in(0);
    double lo = op == "Relu" ? 0 : -INFINITY, hi = INFINITY;
    if (op == "Clip") {
      if (n.input_size() > 1 && !n.input(1).empty() && !scalar(n.input(1), &lo))
        return fail(n, "min must be a constant");
      if (n.input_size() > 2 && !n.input(2).empty() && !scalar(n.input(2), &hi))
        return fail(n, "max must be a constant");
      if (const auto* a = attr(n, "min")) lo = a->f();
      if (const auto* a = attr(n, "max")) hi = a->f();
      if (std::isnan(lo) || std::isnan(hi)) return fail(n, "min and max must be numbers");
    }
    if (x->kind != Val::kTensor) return fail(n, "clips something that is not a tensor");
    TensorDesc src = p_->tensors[x->tensor];
    if (src.kind == TensorKind::kU8) {  // narrows the grid of a QuantizeLinear
      TensorDesc& d = p_->tensors[x->tensor];
      // In doubles first: a bound like 1e30 must not be cast to int.
      const double new_lo = std::max<double>(d.lo, std::ceil(lo));
      const double new_hi = std::min<double>(d.hi, std::floor(hi));
      if (!(new_lo <= new_hi)) return fail(n, "clips the uint8 grid to nothing");
      d.lo = static_cast<int>(new_lo), d.hi = static_cast<int>(new_hi);
      set_tensor(x->tensor);
      return Status::Ok();
    }
    Step st;
    st.op = StepOp::kClip;
    st.name = n.name();
    st.in0 = x->tensor;
    st.lo = lo, st.hi = hi;
    st.out = add_tensor(src);
    p_->steps.push_back(st);
    set_tensor(st.out);
    return Status::Ok();
  }
  if (op == "Conv") return conv(n, false);
  if (op == "Gemm") return conv(n, true);
  if (op == "Add") {
    Val *a = in(0), *b = in(1);
    if (a->kind != Val::kTensor || b->kind != Val::kTensor ||
        p_->tensors[a->tensor].kind != TensorKind::kI32 ||
        p_->tensors[b->tensor].kind != TensorKind::kI32)
      return fail(n, "adds values that are not real-valued tensors");
    const TensorDesc &da = p_->tensors[a->tensor], &db = p_->tensors[b->tensor];
    if (da.c != db.c || da.h != db.h || da.w != db.w)
      return fail(n, "adds tensors of different shapes (" + std::to_string(da.c) + "x" +
                         std::to_string(da.h) + "x" + std::to_string(da.w) + " and " +
                         std::to_string(db.c) + "x" + std::to_string(db.h) + "x" +
                         std::to_string(db.w) + "); broadcasting is not supported");
    Step st;
    st.op = StepOp::kAdd;
    st.name = n.name();
    st.in0 = a->tensor, st.in1 = b->tensor;
    st.out = add_tensor(da);
    p_->steps.push_back(st);
    set_tensor(st.out);
    return Status::Ok();
  }
  if (op == "GlobalAveragePool" || op == "ReduceMean") {
    Val* x = in(0);
    if (x->kind != Val::kTensor || p_->tensors[x->tensor].kind != TensorKind::kI32)
      return fail(n, "pools a value that is not a real-valued tensor");
    if (op == "ReduceMean") {
      auto axes = attr_ints(n, "axes");
      if (axes != std::vector<int64_t>{2, 3} && axes != std::vector<int64_t>{-2, -1})
        return fail(n, "only ReduceMean over the spatial axes [2, 3] is supported");
    }
    TensorDesc d = p_->tensors[x->tensor];
    d.h = d.w = 1;
    Step st;
    st.op = StepOp::kGap;
    st.name = n.name();
    st.in0 = x->tensor;
    st.out = add_tensor(d);
    p_->steps.push_back(st);
    set_tensor(st.out);
    return Status::Ok();
  }
  if (op == "Flatten" || op == "Reshape" || op == "Squeeze") {
    Val* x = in(0);
    if (x->kind != Val::kTensor) return fail(n, "reshapes something that is not a tensor");
    const TensorDesc& d = p_->tensors[x->tensor];
    if (d.h != 1 || d.w != 1)
      return fail(n, "reshapes a " + std::to_string(d.h) + "x" + std::to_string(d.w) +
                         " feature map; only 1x1 maps (after global pooling) are supported");
    set_tensor(x->tensor);
    return Status::Ok();
  }
  if (op == "Slice") {
    Val* x = in(0);
    if (x->kind != Val::kTensor || p_->tensors[x->tensor].kind != TensorKind::kI32)
      return fail(n, "slices a value that is not a real-valued tensor");
    std::vector<double> starts, ends, axes, steps;
    for (int i = 1; i < n.input_size(); ++i) {
      Val* v = in(i);
      if (!n.input(i).empty() && (!v || v->kind != Val::kConst))
        return fail(n, "slice parameters must be constants");
    }
    starts = in(1)->c.values, ends = in(2)->c.values;
    if (in(3)) axes = in(3)->c.values;
    if (in(4)) steps = in(4)->c.values;
    if (ends.size() != starts.size() || (!axes.empty() && axes.size() != starts.size()) ||
        (!steps.empty() && steps.size() != starts.size()))
      return fail(n, "starts, ends, axes and steps must have the same length");
    TensorDesc d = p_->tensors[x->tensor];
    Step st;
    st.op = StepOp::kSlice;
    st.name = n.name();
    st.in0 = x->tensor;
    int* dims[4] = {nullptr, &d.c, &d.h, &d.w};
    for (size_t i = 0; i < starts.size(); ++i) {
      const double axis_value = axes.empty() ? static_cast<double>(i) : axes[i];
      const double step_value = steps.empty() ? 1.0 : steps[i];
      if (!(axis_value >= -4 && axis_value <= 3) || !(step_value >= 1 && step_value <= kMaxSide))
        return fail(n, "only forward slices of the channel or spatial axes are supported");
      int axis = static_cast<int>(axis_value);
      if (axis < 0) axis += 4;
      int64_t step = static_cast<int64_t>(step_value);
      if (axis < 1 || axis > 3)
        return fail(n, "only forward slices of the channel or spatial axes are supported");
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
    st.out = add_tensor(d);
    p_->steps.push_back(st);
    set_tensor(st.out);
    return Status::Ok();
  }
  if (op == "Pad") {
    Val* x = in(0);
    if (x->kind != Val::kTensor || p_->tensors[x->tensor].kind != TensorKind::kI32)
      return fail(n, "pads a value that is not a real-valued tensor");
    std::vector<double> pads;
    if (n.input_size() > 1 && in(1) && in(1)->kind == Val::kConst)
      pads = in(1)->c.values;
    else {
      auto a = attr_ints(n, "pads");
      pads.assign(a.begin(), a.end());
    }
    const onnx::AttributeProto* mode = attr(n, "mode");
    if (mode && mode->s() != "constant") return fail(n, "only constant padding is supported");
    double value = 0;
    if (n.input_size() > 2 && !n.input(2).empty() && (!scalar(n.input(2), &value) || value != 0))
      return fail(n, "only zero padding is supported");
    if (pads.size() != 8 || pads[0] != 0 || pads[4] != 0)
      return fail(n, "pads must have 8 values with none on the batch axis");
    for (double v : pads)
      if (!(v >= 0 && v <= kMaxSide) || v != std::floor(v))
        return fail(n, "pad " + std::to_string(v) + ": pads must be whole numbers in [0, " +
                           std::to_string(kMaxSide) + "]");
    TensorDesc d = p_->tensors[x->tensor];
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
    st.out = add_tensor(d);
    p_->steps.push_back(st);
    set_tensor(st.out);
    return Status::Ok();
  }
  if (op == "MaxPool") return max_pool(n);
  if (op == "Concat") {
    const int64_t axis = attr_int(n, "axis", 0);
    if (axis != 1 && axis != -3)
      return fail(
          n, "axis " + std::to_string(axis) + ": only channel concatenation (axis 1) is supported");
    Step st;
    st.op = StepOp::kConcat;
    st.name = n.name();
    TensorDesc d;
    for (int i = 0; i < n.input_size(); ++i) {
      Val* x = in(i);
      if (!x || x->kind != Val::kTensor || p_->tensors[x->tensor].kind != TensorKind::kI32)
        return fail(n, "input " + std::to_string(i) + " is not a real-valued tensor");
      const TensorDesc& t = p_->tensors[x->tensor];
      if (i == 0) {
        d = t;
        st.in0 = x->tensor;
        continue;
      }
      if (t.h != d.h || t.w != d.w)
        return fail(n, "input " + std::to_string(i) + " is " + std::to_string(t.h) + "x" +
                           std::to_string(t.w) + ", input 0 is " + std::to_string(d.h) + "x" +
                           std::to_string(d.w) + "; the maps must have the same size");
      if (d.c + t.c > kMaxSide)
        return fail(n, "more than " + std::to_string(kMaxSide) + " channels");
      d.c += t.c;
      st.more.push_back(x->tensor);
    }
    d.cp = d.c;
    st.out = add_tensor(d);
    p_->steps.push_back(st);
    set_tensor(st.out);
    return Status::Ok();
  }
  return fail(
      n,
      "the integer runtime does not implement this op (it runs Conv, Gemm, Add, "
      "Relu, Clip, GlobalAveragePool, MaxPool, Concat, Slice, Pad, Flatten/Reshape and Q/DQ)");
}

// MaxPool over the spatial axes of a real-valued map: the maximum commutes with the (positive)
// rescale, so the integers are exact. Pads never win (ONNX pads MaxPool with -inf).
Status Lowering::max_pool(const onnx::NodeProto& n) {
  Val* x = get(n.input(0));
  if (x->kind != Val::kTensor || p_->tensors[x->tensor].kind != TensorKind::kI32)
    return fail(n, "pools a value that is not a real-valued tensor");
  if (n.output_size() > 1 && !n.output(1).empty())
    return fail(n, "the Indices output is not supported");
  const onnx::AttributeProto* auto_pad = attr(n, "auto_pad");
  if (auto_pad && auto_pad->s() != "NOTSET" && auto_pad->s() != "VALID")
    return fail(n, "auto_pad " + auto_pad->s() + " is not supported; export with explicit pads");
  std::vector<int64_t> k = attr_ints(n, "kernel_shape"), s = attr_ints(n, "strides"),
                       pads = attr_ints(n, "pads"), d = attr_ints(n, "dilations");
  if (s.empty()) s = {1, 1};
  if (pads.empty()) pads = {0, 0, 0, 0};
  if (k.size() != 2 || s.size() != 2 || pads.size() != 4)
    return fail(n, "only 2-D pooling (kernel_shape, strides of 2 values, pads of 4) is supported");
  for (int64_t v : d)
    if (v != 1) return fail(n, "dilation " + std::to_string(v) + ": only 1 is supported");
  for (int a = 0; a < 2; ++a) {
    if (k[a] < 1 || k[a] > kMaxKernel || s[a] < 1 || s[a] > kMaxKernel)
      return fail(n, "kernel " + std::to_string(k[a]) + ", stride " + std::to_string(s[a]) +
                         ": each must be in [1, " + std::to_string(kMaxKernel) + "]");
    for (int64_t pad : {pads[a], pads[a + 2]})
      if (pad < 0 || pad >= k[a])
        return fail(n, "pad " + std::to_string(pad) + ": pads must be in [0, kernel)");
  }
  const bool ceil = attr_int(n, "ceil_mode", 0) != 0;
  TensorDesc d_out = p_->tensors[x->tensor];
  Step st;
  st.op = StepOp::kMaxPool;
  st.name = n.name();
  st.in0 = x->tensor;
  int* side[2] = {&d_out.h, &d_out.w};
  for (int a = 0; a < 2; ++a) {
    const int64_t in = *side[a], span = in + pads[a] + pads[a + 2] - k[a];
    if (span < 0) return fail(n, "the kernel is larger than the padded map");
    int64_t out = (ceil ? (span + s[a] - 1) / s[a] : span / s[a]) + 1;
    if (ceil && (out - 1) * s[a] >= in + pads[a]) --out;  // the last window starts in the map
    *side[a] = static_cast<int>(out);
    st.pool_kernel[a] = static_cast<int>(k[a]);
    st.pool_stride[a] = static_cast<int>(s[a]);
    st.pad_before[a + 1] = static_cast<int>(pads[a]);
  }
  d_out.cp = d_out.c;
  st.out = add_tensor(d_out);
  p_->steps.push_back(st);
  set_tensor(n.output(0), st.out);
  return Status::Ok();
}

Status Lowering::conv(const onnx::NodeProto& n, bool gemm) {
  Val* x = get(n.input(0));
  Val* wv = get(n.input(1));
  if (x->kind != Val::kTensor || p_->tensors[x->tensor].kind != TensorKind::kU8)
    return fail(n, "the input is not quantized (the runtime runs quantized layers only)");
  if (!wv || wv->kind != Val::kWeight)
    return fail(n, "the weight is not a quantized weight (DequantizeLinear of int8)");
  const Weight& w = *wv->w;
  TensorDesc& in = p_->tensors[x->tensor];
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
    if (attr_int(n, "transA", 0) != 0) return fail(n, "transA = 1 is not supported");
    const onnx::AttributeProto* alpha = attr(n, "alpha");
    const onnx::AttributeProto* beta = attr(n, "beta");
    if ((alpha && alpha->f() != 1.0f) || (beta && beta->f() != 1.0f))
      return fail(n, "alpha and beta must be 1");
    if (in.h != 1 || in.w != 1) return fail(n, "the input is not a vector");
    if (w.shape.size() != 2) return fail(n, "the weight is not a matrix");
    if (in.border != 0) return fail(n, "the input is also read by a padded convolution");
    if (attr_int(n, "transB", 0) == 0) {  // [ic][oc] -> [oc][ic]
      int rows = static_cast<int>(w.shape[0]), cols = static_cast<int>(w.shape[1]);
      for (int r = 0; r < rows; ++r)
        for (int c = 0; c < cols; ++c) q[c * rows + r] = w.q[r * cols + c];
      L.oc = cols;
      ic = rows;
      if (L.w_scale.size() != size_t(cols))
        return fail(n, "per-channel scales of an untransposed Gemm weight are not supported");
    } else {
      ic = static_cast<int>(w.shape[1]);
    }
    L.kh = L.kw = 1;
    L.kind = ConvKind::kFc;
  } else {
    if (w.shape.size() != 4) return fail(n, "the weight is not 4-D");
    ic = static_cast<int>(w.shape[1]);
    L.kh = static_cast<int>(w.shape[2]);
    L.kw = static_cast<int>(w.shape[3]);
    auto strides = attr_ints(n, "strides");
    auto pads = attr_ints(n, "pads");
    auto dil = attr_ints(n, "dilations");
    if (L.kh > kMaxKernel || L.kw > kMaxKernel)
      return fail(n, "kernel " + std::to_string(L.kh) + "x" + std::to_string(L.kw) +
                         ": kernels up to " + std::to_string(kMaxKernel) + "x" +
                         std::to_string(kMaxKernel) + " are supported");
    if ((!strides.empty() && strides.size() != 2) || (!pads.empty() && pads.size() != 4) ||
        (!dil.empty() && dil.size() != 2))
      return fail(n, "strides, dilations and pads must have 2, 2 and 4 values (2-D)");
    for (int64_t s : strides)
      if (s < 1 || s > kMaxKernel)
        return fail(n, "stride " + std::to_string(s) + ": must be in [1, " +
                           std::to_string(kMaxKernel) + "]");
    for (int i = 0; i < static_cast<int>(pads.size()); ++i)
      if (pads[i] < 0 || pads[i] >= (i % 2 ? L.kw : L.kh))
        return fail(n, "pad " + std::to_string(pads[i]) +
                           ": pads must be non-negative and smaller than the kernel");
    for (int64_t d : dil)
      if (d != 1) return fail(n, "dilation " + std::to_string(d) + " is not supported");
    if (!strides.empty() && strides[0] != strides.back())
      return fail(n, "different strides per axis are not supported");
    L.stride = strides.empty() ? 1 : static_cast<int>(strides[0]);
    if (pads.empty()) pads.assign(4, 0);
    if (const auto* ap = attr(n, "auto_pad"); ap && ap->s() != "NOTSET")
      return fail(n, "auto_pad " + ap->s() + " is not supported; export explicit pads");
    L.pad_top = static_cast<int>(pads[0]), L.pad_left = static_cast<int>(pads[1]);
    L.pad_bottom = static_cast<int>(pads[2]), L.pad_right = static_cast<int>(pads[3]);
    int64_t group = attr_int(n, "group", 1);
    if (group == 1) {
      L.kind = ConvKind::kConv;
    } else if (group == in.c && ic == 1 && L.oc == in.c) {
      L.kind = ConvKind::kDwconv;
      if (L.kh * L.kw > kMaxDwTaps)
        return fail(n, "depthwise kernel " + std::to_string(L.kh) + "x" + std::to_string(L.kw) +
                           ": at most " + std::to_string(kMaxDwTaps) + " taps are supported");
    } else {
      return fail(n, "group = " + std::to_string(group) +
                         ": only group 1 and depthwise convolutions are supported");
    }
  }
  if (L.kind != ConvKind::kDwconv && ic != in.c)
    return fail(n, "weight has " + std::to_string(ic) + " input channels, the input " +
                       std::to_string(in.c));
  L.ic = in.c;
  if (in.h + L.pad_top + L.pad_bottom < L.kh || in.w + L.pad_left + L.pad_right < L.kw)
    return fail(n, "the " + std::to_string(L.kh) + "x" + std::to_string(L.kw) +
                       " kernel is larger than the padded " + std::to_string(in.h) + "x" +
                       std::to_string(in.w) + " input");
  L.oh = (in.h + L.pad_top + L.pad_bottom - L.kh) / L.stride + 1;
  L.ow = (in.w + L.pad_left + L.pad_right - L.kw) / L.stride + 1;
  in.border = std::max({in.border, L.pad_top, L.pad_left, L.pad_bottom, L.pad_right});
  // Bias.
  L.bias.assign(L.oc, 0.0);
  if (n.input_size() > 2 && !n.input(2).empty()) {
    Val* b = get(n.input(2));
    if (b->kind != Val::kConst || b->c.values.size() != size_t(L.oc))
      return fail(n, "the bias must be a constant of one value per output channel");
    L.bias = b->c.values;
  }
  // Repack into the runtime layout at the weight's width.
  pack_layer(L, q);
  p_->weight_bytes += static_cast<int64_t>(L.packed.size());
  TensorDesc out;
  out.kind = TensorKind::kI32;
  out.c = out.cp = L.oc;
  out.h = L.oh, out.w = L.ow;
  Step st;
  st.op = StepOp::kConv;
  st.name = n.name();
  st.in0 = x->tensor;
  st.conv = layer;
  st.out = add_tensor(out);
  p_->steps.push_back(st);
  set_tensor(n.output(0), st.out);
  return Status::Ok();
}

}  // namespace

Status load_program(const std::string& path, Program* p) {
  std::error_code ec;
  if (std::filesystem::exists(path, ec) && !std::filesystem::is_regular_file(path, ec))
    return error(StatusCode::kBadFile, path + ": is not a regular file, expected a .mpq model");
  std::ifstream f(path, std::ios::binary);
  if (!f) return error(StatusCode::kBadFile, path + ": cannot open the .mpq model");
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string bytes = ss.str();
  export_::PackedLayout layout;
  export_::PackedProblem problem = export_::parse_packed(bytes, path, &layout);
  std::string raw;
  if (problem.message.empty()) problem = export_::inflate_graph(bytes, layout.header, path, &raw);
  if (!problem.message.empty())
    return error(problem.unsupported ? StatusCode::kUnsupported : StatusCode::kBadFile,
                 problem.message);
  onnx::ModelProto model;
  if (!model.ParseFromString(raw))
    return error(StatusCode::kBadFile, path + ": the graph section is not a valid ONNX model");
  // The weights section stays in memory, packed, while the layers repack from it.
  const export_::PackedHeader& h = layout.header;
  p->file = bytes.substr(h.weights_offset, h.weights_bytes);
  p->file.append(8, '\0');
  std::map<std::string, PackedRef> packed;
  for (const export_::PackedLayout::Tensor& t : layout.tensors) {
    PackedRef ref;
    ref.bits = t.bits;
    ref.shape = t.shape;
    ref.data = reinterpret_cast<const uint8_t*>(p->file.data()) + t.offset;
    packed[t.name] = ref;
  }
  Lowering lowering(p, path);
  Status s = lowering.run(model, packed);
  // Every layer now holds its own packed copy in the runtime layout.
  p->file.clear();
  p->file.shrink_to_fit();
  if (!s.ok()) return s;
  return finish_program(p, path);
}

}  // namespace mpq::runtime
