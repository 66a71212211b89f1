// Relu: max(x, 0).
#include "op_util.h"

namespace mpq::exec {
namespace {

class Relu : public OpDef {
 public:
  Kernel prepare(const PrepareContext&) const override {
    return [](const Tensors& in, Tensors& out) {
      out[0] = reusable(in[0]) ? in[0].relu_() : at::relu(in[0]);
    };
  }
};

MPQ_REGISTER(OpDef, "Relu", Relu);

}  // namespace
}  // namespace mpq::exec
