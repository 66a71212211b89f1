// Sub: elementwise with numpy broadcasting.
#include "op_util.h"

namespace mpq::exec {
namespace {

class Sub : public OpDef {
 public:
  int required_inputs() const override { return 2; }
  Kernel prepare(const PrepareContext&) const override {
    return [](const Tensors& in, Tensors& out) { out[0] = at::sub(in[0], in[1]); };
  }
};

MPQ_REGISTER(OpDef, "Sub", Sub);

}  // namespace
}  // namespace mpq::exec
