// Add: elementwise with numpy broadcasting.
#include "op_util.h"

namespace mpq::exec {
namespace {

class Add : public OpDef {
 public:
  int required_inputs() const override { return 2; }
  Kernel prepare(const PrepareContext&) const override {
    return [](const Tensors& in, Tensors& out) {
      out[0] = reusable(in[0]) && in[0].sizes() == at::infer_size(in[0].sizes(), in[1].sizes()) &&
                       in[0].scalar_type() == in[1].scalar_type()
                   ? in[0].add_(in[1])
                   : at::add(in[0], in[1]);
    };
  }
};

MPQ_REGISTER(OpDef, "Add", Add);

}  // namespace
}  // namespace mpq::exec
