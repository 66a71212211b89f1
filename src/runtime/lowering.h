// Lowering a QCDQ graph to the integer runtime's steps (internal). Lowering::run walks the
// nodes; each op type has one lowering function, listed once in the table of lowering.cpp
// (op type -> inputs it needs, function), and written in src/runtime/lower/: adding an op is one
// function there, one row in the table, and its StepOp where it needs a new kernel.
#pragma once

#include <onnx/onnx_pb.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "program.h"

namespace mpq::runtime {

// An initializer or Constant, as doubles (small tensors) or as int8 values (weights).
struct Const {
  std::vector<int64_t> dims;
  std::vector<double> values;
  int elem_type = 0;
};

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
  // kGrouped: `tensor` seen as [batch, groups, c / groups, h, w] (a Reshape); kShuffled: that
  // view with its two channel axes swapped (a Transpose), which a Reshape back to 4-D makes a
  // channel shuffle.
  enum Kind { kNone, kInput, kTensor, kConst, kWeight, kGrouped, kShuffled } kind = kNone;
  int tensor = -1;
  int groups = 0;
  Const c;
  const PackedRef* packed = nullptr;  // a bit-packed weight of the weights section
  std::shared_ptr<Weight> w;
};

// The number of elements of `dims`, or -1 when a dimension is negative or the product exceeds
// kMaxElements (no real layer or map comes near it; a crafted file must not make us allocate).
inline constexpr int64_t kMaxElements = int64_t{1} << 28;
int64_t element_count(const std::vector<int64_t>& dims);
bool parse_tensor(const onnx::TensorProto& t, Const* out);
int64_t attr_int(const onnx::NodeProto& n, const std::string& name, int64_t fallback);
std::vector<int64_t> attr_ints(const onnx::NodeProto& n, const std::string& name);
const onnx::AttributeProto* attr(const onnx::NodeProto& n, const std::string& name);
int bits_of(int lo, int hi);  // the width of the grid [lo, hi]

class Lowering {
 public:
  Lowering(Program* p, const std::string& path) : p_(p), path_(path) {}

  Status run(const onnx::ModelProto& model, const std::map<std::string, PackedRef>& packed);

  // For the op lowerings (src/runtime/lower/).
  Program& program() { return *p_; }
  // An unsupported-node error naming the file, the node and its op.
  Status fail(const onnx::NodeProto& n, const std::string& what) const;
  Val* get(const std::string& name);
  Val* in(const onnx::NodeProto& n, int i) {
    return i < n.input_size() ? get(n.input(i)) : nullptr;
  }
  // The one finite value of the constant `name`.
  bool scalar(const std::string& name, double* v);
  // Is `v` a tensor of `kind`?
  bool is_tensor(const Val* v, TensorKind kind) const {
    return v && v->kind == Val::kTensor && p_->tensors[v->tensor].kind == kind;
  }
  int add_tensor(TensorDesc d);
  // `name` (a node's output) is the tensor `t`.
  void set_tensor(const std::string& name, int t);
  void set_value(const std::string& name, Val v) { vals_[name] = std::move(v); }
  // Appends `st` writing a new tensor `out`, which becomes the node's output; returns Ok.
  Status add_step(const onnx::NodeProto& n, Step st, TensorDesc out);

 private:
  Status node(const onnx::NodeProto& n);

  Program* p_;
  std::string path_;
  std::map<std::string, Val> vals_;
  std::map<std::string, PackedRef> packed_;
};

// One op type's lowering: checks the node, then adds tensors and steps (or aliases a value).
using LowerFn = Status (*)(Lowering& L, const onnx::NodeProto& n);
struct OpLowering {
  int inputs;  // required inputs, checked before the function runs
  LowerFn lower;
};
// Every op the runtime lowers (lowering.cpp).
const std::map<std::string, OpLowering>& op_lowerings();

// The lowerings, one file each in src/runtime/lower/.
Status lower_constant(Lowering& L, const onnx::NodeProto& n);  // quantize.cpp
Status lower_cast(Lowering& L, const onnx::NodeProto& n);
Status lower_dequantize(Lowering& L, const onnx::NodeProto& n);
Status lower_quantize(Lowering& L, const onnx::NodeProto& n);
Status lower_clip(Lowering& L, const onnx::NodeProto& n);  // elementwise.cpp: Clip and Relu
Status lower_add(Lowering& L, const onnx::NodeProto& n);
Status lower_batch_norm(Lowering& L, const onnx::NodeProto& n);
Status lower_unary(Lowering& L, const onnx::NodeProto& n);  // Sigmoid, HardSigmoid
Status lower_mul(Lowering& L, const onnx::NodeProto& n);    // of feature maps
Status lower_conv(Lowering& L, const onnx::NodeProto& n);  // conv.cpp
Status lower_gemm(Lowering& L, const onnx::NodeProto& n);
Status lower_global_pool(Lowering& L, const onnx::NodeProto& n);  // pool.cpp
Status lower_max_pool(Lowering& L, const onnx::NodeProto& n);
Status lower_average_pool(Lowering& L, const onnx::NodeProto& n);
Status lower_flatten(Lowering& L, const onnx::NodeProto& n);  // layout.cpp: Flatten, Squeeze
Status lower_reshape(Lowering& L, const onnx::NodeProto& n);
Status lower_transpose(Lowering& L, const onnx::NodeProto& n);
Status lower_slice(Lowering& L, const onnx::NodeProto& n);
Status lower_pad(Lowering& L, const onnx::NodeProto& n);
Status lower_concat(Lowering& L, const onnx::NodeProto& n);
Status lower_shape(Lowering& L, const onnx::NodeProto& n);  // shape.cpp: constant shape arithmetic
Status lower_gather(Lowering& L, const onnx::NodeProto& n);
Status lower_unsqueeze(Lowering& L, const onnx::NodeProto& n);
Status lower_arithmetic(Lowering& L, const onnx::NodeProto& n);  // Sub, Mul, Div of constants
// Add, Mul, Sub or Div of two constants (the other element-wise lowerings call it first);
// *folded is false when an input is not a constant.
Status fold_arithmetic(Lowering& L, const onnx::NodeProto& n, bool* folded);
// Concat of constants along axis 0 (the same).
Status fold_concat(Lowering& L, const onnx::NodeProto& n, bool* folded);

}  // namespace mpq::runtime
