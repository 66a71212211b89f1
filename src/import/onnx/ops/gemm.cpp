// Gemm: Y = alpha * A' * B' + beta * C, with A' = transA ? Aᵀ : A and likewise B'.
// The fully connected case (transB=1, alpha=beta=1) runs as one at::linear.
#include "op_util.h"

namespace mpq::exec {
namespace {

class Gemm : public OpDef {
 public:
  int required_inputs() const override { return 2; }
  Kernel prepare(const PrepareContext& ctx) const override {
    const ir::Node& n = ctx.node;
    bool ta = n.attr_int("transA", 0) != 0, tb = n.attr_int("transB", 0) != 0;
    double alpha = n.attr_float("alpha", 1.0), beta = n.attr_float("beta", 1.0);
    if (!ta && tb && alpha == 1.0 && beta == 1.0) {
      return [](const Tensors& in, Tensors& out) {
        out[0] = at::linear(in[0], in[1], in.size() > 2 ? in[2] : at::Tensor());
      };
    }
    return [ta, tb, alpha, beta](const Tensors& in, Tensors& out) {
      at::Tensor a = ta ? in[0].t() : in[0];
      at::Tensor b = tb ? in[1].t() : in[1];
      at::Tensor y = at::mm(a, b);
      if (alpha != 1.0) y = y * alpha;
      if (in.size() > 2 && in[2].defined()) y = y + (beta == 1.0 ? in[2] : in[2] * beta);
      out[0] = y;
    };
  }
};

MPQ_REGISTER(OpDef, "Gemm", Gemm);

}  // namespace
}  // namespace mpq::exec
