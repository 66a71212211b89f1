// MatMul: numpy-style matrix product (batched, broadcasting).
#include "op_util.h"

namespace mpq::exec {
namespace {

class MatMul : public OpDef {
 public:
  int required_inputs() const override { return 2; }
  Kernel prepare(const PrepareContext&) const override {
    return [](const Tensors& in, Tensors& out) { out[0] = at::matmul(in[0], in[1]); };
  }
};

MPQ_REGISTER(OpDef, "MatMul", MatMul);

}  // namespace
}  // namespace mpq::exec
