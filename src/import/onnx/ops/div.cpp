// Div: elementwise with numpy broadcasting. Integer inputs divide with truncation, as ONNX asks.
#include "op_util.h"

namespace mpq::exec {
namespace {

class Div : public OpDef {
 public:
  int required_inputs() const override { return 2; }
  Kernel prepare(const PrepareContext&) const override {
    return [](const Tensors& in, Tensors& out) {
      out[0] = at::isIntegralType(in[0].scalar_type(), false) &&
                       at::isIntegralType(in[1].scalar_type(), false)
                   ? at::div(in[0], in[1], "trunc")
                   : at::div(in[0], in[1]);
    };
  }
};

MPQ_REGISTER(OpDef, "Div", Div);

}  // namespace
}  // namespace mpq::exec
