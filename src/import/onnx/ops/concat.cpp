// Concat: join along `axis` (negative counts from the end).
#include "op_util.h"

namespace mpq::exec {
namespace {

class Concat : public OpDef {
 public:
  void check(const ir::Node& node, const ir::Graph&) const override {
    MPQ_CHECK(node.has("axis"), ErrorCode::kBadFile, "{}: attribute 'axis' is required",
              node.where());
  }
  Kernel prepare(const PrepareContext& ctx) const override {
    int64_t axis = ctx.node.attr_int("axis", 0);
    return [axis](const Tensors& in, Tensors& out) { out[0] = at::cat(in, axis); };
  }
};

MPQ_REGISTER(OpDef, "Concat", Concat);

}  // namespace
}  // namespace mpq::exec
