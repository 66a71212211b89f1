// BatchNormalization: y = scale * (x - mean) / sqrt(var + epsilon) + B.
// Kept as a node in the IR (the bn_scale metric reads its scale, γ); ir/passes/fold_bn folds it.
// In training mode (mpq train) it uses batch statistics and updates the running ones in place;
// ONNX's momentum m weights the old statistic, so ATen's momentum is 1 - m.
#include "op_util.h"

namespace mpq::exec {
namespace {

class BatchNormalization : public OpDef {
 public:
  int required_inputs() const override { return 5; }
  void check(const ir::Node& node, const ir::Graph&) const override {
    MPQ_CHECK(node.inputs.size() == 5, ErrorCode::kBadFile,
              "{}: needs 5 inputs (X, scale, B, mean, var), got {}", node.where(),
              node.inputs.size());
    MPQ_CHECK(node.attr_int("training_mode", 0) == 0, ErrorCode::kUnsupported,
              "{}: training_mode=1 is not supported; export the model in eval mode", node.where());
  }

  Kernel prepare(const PrepareContext& ctx) const override {
    double eps = ctx.node.attr_float("epsilon", 1e-5);
    double momentum = 1.0 - ctx.node.attr_float("momentum", 0.9);
    bool training = ctx.training;
    return [eps, momentum, training](const Tensors& in, Tensors& out) {
      out[0] = at::batch_norm(in[0], in[1], in[2], in[3], in[4], training, momentum, eps, false);
    };
  }
};

MPQ_REGISTER(OpDef, "BatchNormalization", BatchNormalization);

}  // namespace
}  // namespace mpq::exec
