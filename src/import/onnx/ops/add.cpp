// Add: elementwise with numpy broadcasting. 
#include "op_util.h"

namespace mpq::exec {
namespace {

class Add : public OpDef {
 public:
  Kernel prepare(const PrepareContext&) const override {
    return [](const Tensors& in, Tensors& out) { out[0] = at::add(in[0], in[1]); };
  }
};

MPQ_REGISTER(OpDef, "Add", Add);

}  // namespace
}  // namespace mpq::exec
