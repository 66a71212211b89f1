// HardSigmoid: max(0, min(1, alpha * x + beta)), alpha 0.2 and beta 0.5 by default.
#include "op_util.h"

namespace mpq::exec {
namespace {

class HardSigmoid : public OpDef {
 public:
  Kernel prepare(const PrepareContext& ctx) const override {
    double alpha = ctx.node.attr_float("alpha", 0.2), beta = ctx.node.attr_float("beta", 0.5);
    return [alpha, beta](const Tensors& in, Tensors& out) {
      out[0] = at::clamp(in[0] * alpha + beta, 0.0, 1.0);
    };
  }
};

MPQ_REGISTER(OpDef, "HardSigmoid", HardSigmoid);

}  // namespace
}  // namespace mpq::exec
