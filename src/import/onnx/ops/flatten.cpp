// Flatten: to 2-d, [prod(dims before axis), prod(dims from axis)]; axis default 1.
#include "op_util.h"

namespace mpq::exec {
namespace {

class Flatten : public OpDef {
 public:
  Kernel prepare(const PrepareContext& ctx) const override {
    int64_t axis = ctx.node.attr_int("axis", 1);
    return [axis](const Tensors& in, Tensors& out) {
      const at::Tensor& x = in[0];
      int64_t a = axis < 0 ? axis + x.dim() : axis;
      int64_t outer = 1;
      for (int64_t i = 0; i < a; ++i) outer *= x.size(i);
      out[0] = x.reshape({outer, outer == 0 ? 0 : x.numel() / std::max<int64_t>(outer, 1)});
    };
  }
};

MPQ_REGISTER(OpDef, "Flatten", Flatten);

}  // namespace
}  // namespace mpq::exec
