// Reshape: to the shape given as input 1; 0 copies the input's dim (unless allowzero), -1 is
// inferred. A constant shape is decoded once.
#include "op_util.h"

namespace mpq::exec {
namespace {

at::Tensor reshape(const at::Tensor& x, std::vector<int64_t> shape, bool allow_zero) {
  if (!allow_zero)
    for (size_t i = 0; i < shape.size(); ++i)
      if (shape[i] == 0 && static_cast<int64_t>(i) < x.dim()) shape[i] = x.size(i);
  return x.reshape(shape);
}

class Reshape : public OpDef {
 public:
  int required_inputs() const override { return 2; }
  Kernel prepare(const PrepareContext& ctx) const override {
    bool allow_zero = ctx.node.attr_int("allowzero", 0) != 0;
    if (auto c = ctx.constant(1)) {
      std::vector<int64_t> shape = to_int_vector(*c);
      return [shape, allow_zero](const Tensors& in, Tensors& out) {
        out[0] = reshape(in[0], shape, allow_zero);
      };
    }
    return [allow_zero](const Tensors& in, Tensors& out) {
      out[0] = reshape(in[0], to_int_vector(in[1]), allow_zero);
    };
  }
};

MPQ_REGISTER(OpDef, "Reshape", Reshape);

}  // namespace
}  // namespace mpq::exec
