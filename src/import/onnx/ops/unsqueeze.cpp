// Unsqueeze: insert size-1 dims at `axes` (attribute before opset 13, input after), where axes
// index the output.
#include "op_util.h"

namespace mpq::exec {
namespace {

class Unsqueeze : public OpDef {
 public:
  void check(const ir::Node& node, const ir::Graph&) const override {
    MPQ_CHECK(node.has("axes") || (node.inputs.size() > 1 && node.inputs[1] >= 0),
              ErrorCode::kBadFile, "{}: no axes (an attribute before opset 13, input 1 from it)",
              node.where());
  }
  Kernel prepare(const PrepareContext& ctx) const override {
    std::optional<std::vector<int64_t>> axes;
    if (ctx.node.has("axes"))
      axes = ctx.node.attr_ints("axes");
    else if (auto c = ctx.constant(1))
      axes = to_int_vector(*c);
    return [axes](const Tensors& in, Tensors& out) {
      std::vector<int64_t> a = axes ? *axes : to_int_vector(in[1]);
      int64_t rank = in[0].dim() + static_cast<int64_t>(a.size());
      for (auto& x : a) x = x < 0 ? x + rank : x;
      std::sort(a.begin(), a.end());
      at::Tensor y = in[0];
      for (int64_t x : a) y = y.unsqueeze(x);
      out[0] = y;
    };
  }
};

MPQ_REGISTER(OpDef, "Unsqueeze", Unsqueeze);

}  // namespace
}  // namespace mpq::exec
