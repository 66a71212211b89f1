// Cast: convert to the ONNX element type `to`.
#include "op_util.h"

namespace mpq::exec {
namespace {

class Cast : public OpDef {
 public:
  void check(const ir::Node& node, const ir::Graph&) const override {
    int64_t to = node.attr_int("to", 0);
    MPQ_CHECK(scalar_type_from_onnx(to).has_value(), ErrorCode::kUnsupported,
              "{}: attribute 'to' = {}: element type not supported", node.where(), to);
  }
  Kernel prepare(const PrepareContext& ctx) const override {
    at::ScalarType to = *scalar_type_from_onnx(ctx.node.attr_int("to", 1));
    return [to](const Tensors& in, Tensors& out) { out[0] = in[0].to(to); };
  }
};

MPQ_REGISTER(OpDef, "Cast", Cast);

}  // namespace
}  // namespace mpq::exec
