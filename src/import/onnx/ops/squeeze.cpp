// Squeeze: drop size-1 dims at `axes` (attribute before opset 13, optional input after);
// without axes, every size-1 dim.
#include "op_util.h"

namespace mpq::exec {
namespace {

class Squeeze : public OpDef {
 public:
  Kernel prepare(const PrepareContext& ctx) const override {
    std::optional<std::vector<int64_t>> axes;
    bool dynamic = false;
    if (ctx.node.has("axes"))
      axes = ctx.node.attr_ints("axes");
    else if (auto c = ctx.constant(1))
      axes = to_int_vector(*c);
    else
      dynamic = ctx.has_input(1);
    return [axes, dynamic](const Tensors& in, Tensors& out) {
      std::optional<std::vector<int64_t>> a = dynamic ? to_int_vector(in[1]) : axes;
      if (!a) {
        out[0] = in[0].squeeze();
        return;
      }
      std::vector<int64_t> dims = *a;
      for (auto& x : dims) x = x < 0 ? x + in[0].dim() : x;
      std::sort(dims.rbegin(), dims.rend());
      at::Tensor y = in[0];
      for (int64_t x : dims) y = y.squeeze(x);
      out[0] = y;
    };
  }
};

MPQ_REGISTER(OpDef, "Squeeze", Squeeze);

}  // namespace
}  // namespace mpq::exec
