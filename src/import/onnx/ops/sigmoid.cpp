// Sigmoid: 1 / (1 + exp(-x)).
#include "op_util.h"

namespace mpq::exec {
namespace {

class Sigmoid : public OpDef {
 public:
  Kernel prepare(const PrepareContext&) const override {
    return [](const Tensors& in, Tensors& out) { out[0] = at::sigmoid(in[0]); };
  }
};

MPQ_REGISTER(OpDef, "Sigmoid", Sigmoid);

}  // namespace
}  // namespace mpq::exec
