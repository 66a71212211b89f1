// Shape: the input's dims as an int64 tensor, optionally sliced by start/end (opset 15).
// Shape of a constant is folded at import; of a run-time tensor it runs every time (cheap).
#include "op_util.h"

namespace mpq::exec {
namespace {

class Shape : public OpDef {
 public:
  Kernel prepare(const PrepareContext& ctx) const override {
    int64_t start = ctx.node.attr_int("start", 0);
    std::optional<int64_t> end;
    if (ctx.node.has("end")) end = ctx.node.attr_int("end", 0);
    return [start, end](const Tensors& in, Tensors& out) {
      int64_t rank = in[0].dim();
      int64_t s = std::clamp<int64_t>(start < 0 ? start + rank : start, 0, rank);
      int64_t e = end ? std::clamp<int64_t>(*end < 0 ? *end + rank : *end, 0, rank) : rank;
      std::vector<int64_t> dims(in[0].sizes().begin() + s, in[0].sizes().begin() + std::max(s, e));
      out[0] = at::tensor(dims, at::kLong);
    };
  }
};

MPQ_REGISTER(OpDef, "Shape", Shape);

}  // namespace
}  // namespace mpq::exec
