// MaxPool: 1-, 2- or 3-d max pooling with pads/auto_pad, dilations and ceil_mode.
// Asymmetric pads are applied with -inf padding first.
#include <limits>

#include "op_util.h"

namespace mpq::exec {
namespace {

class MaxPool : public OpDef {
 public:
  void check(const ir::Node& node, const ir::Graph&) const override {
    check_auto_pad(node);
    kernel_shape(node);
    MPQ_CHECK(node.outputs.size() == 1, ErrorCode::kUnsupported,
              "{}: the Indices output is not supported", node.where());
    MPQ_CHECK(node.attr_int("storage_order", 0) == 0, ErrorCode::kUnsupported,
              "{}: storage_order=1 is not supported", node.where());
  }

  Kernel prepare(const PrepareContext& ctx) const override {
    auto k = kernel_shape(ctx.node);
    Window win(ctx.node, static_cast<int64_t>(k.size()), k);
    bool ceil = ctx.node.attr_int("ceil_mode", 0) != 0;
    return [win, ceil](const Tensors& in, Tensors& out) {
      std::vector<int64_t> p;
      at::Tensor x = pad_to_symmetric(in[0], win.resolve(in[0].sizes().slice(2)),
                                      -std::numeric_limits<double>::infinity(), p);
      switch (win.kernel.size()) {
        case 1:
          out[0] = at::max_pool1d(x, win.kernel, win.strides, p, win.dilations, ceil);
          break;
        case 2:
          out[0] = at::max_pool2d(x, win.kernel, win.strides, p, win.dilations, ceil);
          break;
        case 3:
          out[0] = at::max_pool3d(x, win.kernel, win.strides, p, win.dilations, ceil);
          break;
        default:
          fail(ErrorCode::kUnsupported, "MaxPool over {} dims", win.kernel.size());
      }
    };
  }
};

MPQ_REGISTER(OpDef, "MaxPool", MaxPool);

}  // namespace
}  // namespace mpq::exec
