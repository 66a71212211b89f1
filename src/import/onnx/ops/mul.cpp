// Mul: elementwise with numpy broadcasting.
#include "op_util.h"

namespace mpq::exec {
namespace {

class Mul : public OpDef {
 public:
  int required_inputs() const override { return 2; }
  Kernel prepare(const PrepareContext&) const override {
    return [](const Tensors& in, Tensors& out) { out[0] = at::mul(in[0], in[1]); };
  }
};

MPQ_REGISTER(OpDef, "Mul", Mul);

}  // namespace
}  // namespace mpq::exec
