// Dropout: the identity at inference; the optional mask output is all true.
#include "op_util.h"

namespace mpq::exec {
namespace {

class Dropout : public OpDef {
 public:
  Kernel prepare(const PrepareContext&) const override {
    return [](const Tensors& in, Tensors& out) {
      out[0] = in[0];
      if (out.size() > 1) out[1] = at::ones(in[0].sizes(), at::kBool);
    };
  }
};

MPQ_REGISTER(OpDef, "Dropout", Dropout);

}  // namespace
}  // namespace mpq::exec
