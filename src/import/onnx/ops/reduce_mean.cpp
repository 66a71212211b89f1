// ReduceMean: mean over `axes` (attribute before opset 18, input after); keepdims default 1;
// no axes means all axes unless noop_with_empty_axes.
#include "op_util.h"

namespace mpq::exec {
namespace {

class ReduceMean : public OpDef {
 public:
  Kernel prepare(const PrepareContext& ctx) const override {
    std::vector<int64_t> axes = ctx.node.attr_ints("axes");
    if (ctx.has_input(1)) {
      auto c = ctx.constant(1);
      MPQ_CHECK(c.has_value(), ErrorCode::kUnsupported, "{}: axes must be a constant",
                ctx.node.where());
      axes = to_int_vector(*c);
    }
    bool keep = ctx.node.attr_int("keepdims", 1) != 0;
    bool noop = ctx.node.attr_int("noop_with_empty_axes", 0) != 0;
    return [axes, keep, noop](const Tensors& in, Tensors& out) {
      if (axes.empty()) {
        if (noop) {
          out[0] = in[0];
          return;
        }
        std::vector<int64_t> all(in[0].dim());
        for (int64_t i = 0; i < in[0].dim(); ++i) all[i] = i;
        out[0] = in[0].mean(all, keep);
        return;
      }
      out[0] = in[0].mean(axes, keep);
    };
  }
};

MPQ_REGISTER(OpDef, "ReduceMean", ReduceMean);

}  // namespace
}  // namespace mpq::exec
