// Identity: the input, unchanged.
#include "op_util.h"

namespace mpq::exec {
namespace {

class Identity : public OpDef {
 public:
  Kernel prepare(const PrepareContext&) const override {
    return [](const Tensors& in, Tensors& out) { out[0] = in[0]; };
  }
};

MPQ_REGISTER(OpDef, "Identity", Identity);

}  // namespace
}  // namespace mpq::exec
