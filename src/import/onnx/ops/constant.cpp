// Constant: a tensor from one of the attributes value, value_float(s), value_int(s).
// Folded into an initializer at import.
#include "op_util.h"

namespace mpq::exec {
namespace {

at::Tensor constant_value(const ir::Node& n) {
  if (auto t = n.attr_tensor("value")) return *t;
  if (n.has("value_float")) return at::scalar_tensor(n.attr_float("value_float", 0), at::kFloat);
  if (n.has("value_int")) return at::scalar_tensor(n.attr_int("value_int", 0), at::kLong);
  if (n.has("value_ints")) return at::tensor(n.attr_ints("value_ints"), at::kLong);
  if (n.has("value_floats")) {
    auto v = std::get<std::vector<double>>(n.attrs.at("value_floats"));
    return at::tensor(v, at::kDouble).to(at::kFloat);
  }
  fail(ErrorCode::kUnsupported,
       "{}: needs one of the attributes value, value_float(s), value_int(s)", n.where());
}

class Constant : public OpDef {
 public:
  int required_inputs() const override { return 0; }
  void check(const ir::Node& node, const ir::Graph&) const override { constant_value(node); }
  Kernel prepare(const PrepareContext& ctx) const override {
    at::Tensor value = constant_value(ctx.node);
    return [value](const Tensors&, Tensors& out) { out[0] = value; };
  }
};

MPQ_REGISTER(OpDef, "Constant", Constant);

}  // namespace
}  // namespace mpq::exec
