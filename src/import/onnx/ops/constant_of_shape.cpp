// ConstantOfShape: a tensor of the shape given as input 0, filled with the one-element
// attribute `value` (float 0 by default).
#include "op_util.h"

namespace mpq::exec {
namespace {

class ConstantOfShape : public OpDef {
 public:
  Kernel prepare(const PrepareContext& ctx) const override {
    at::Tensor value = ctx.node.attr_tensor("value").value_or(at::zeros({1}, at::kFloat));
    return [value](const Tensors& in, Tensors& out) {
      out[0] = at::full(to_int_vector(in[0]), value.reshape({-1})[0].item(), value.options());
    };
  }
};

MPQ_REGISTER(OpDef, "ConstantOfShape", ConstantOfShape);

}  // namespace
}  // namespace mpq::exec
