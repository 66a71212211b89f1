// HardSwish: x * max(0, min(1, x / 6 + 0.5)).
#include "op_util.h"

namespace mpq::exec {
namespace {

class HardSwish : public OpDef {
 public:
  Kernel prepare(const PrepareContext&) const override {
    return [](const Tensors& in, Tensors& out) { out[0] = at::hardswish(in[0]); };
  }
};

MPQ_REGISTER(OpDef, "HardSwish", HardSwish);

}  // namespace
}  // namespace mpq::exec
