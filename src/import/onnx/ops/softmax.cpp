// Softmax: along `axis` (opset >= 13, default -1). Before opset 13 the input is coerced to 2-d
// at `axis` (default 1) and normalised over the second dim, as those opsets define.
#include "op_util.h"

namespace mpq::exec {
namespace {

class Softmax : public OpDef {
 public:
  Kernel prepare(const PrepareContext& ctx) const override {
    bool legacy = ctx.graph.opset < 13;
    int64_t axis = ctx.node.attr_int("axis", legacy ? 1 : -1);
    return [legacy, axis](const Tensors& in, Tensors& out) {
      if (!legacy) {
        out[0] = at::softmax(in[0], axis);
        return;
      }
      int64_t a = axis < 0 ? axis + in[0].dim() : axis;
      int64_t outer = 1;
      for (int64_t d = 0; d < a; ++d) outer *= in[0].size(d);
      out[0] = at::softmax(in[0].reshape({outer, -1}), 1).reshape(in[0].sizes());
    };
  }
};

MPQ_REGISTER(OpDef, "Softmax", Softmax);

}  // namespace
}  // namespace mpq::exec
