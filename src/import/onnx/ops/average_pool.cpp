// AveragePool: 1-, 2- or 3-d average pooling with pads/auto_pad, ceil_mode, count_include_pad.
#include "op_util.h"

namespace mpq::exec {
namespace {

class AveragePool : public OpDef {
 public:
  void check(const ir::Node& node, const ir::Graph&) const override {
    check_auto_pad(node);
    kernel_shape(node);
    for (int64_t d : node.attr_ints("dilations"))
      MPQ_CHECK(d == 1, ErrorCode::kUnsupported, "{}: dilations other than 1 are not supported",
                node.where());
  }

  Kernel prepare(const PrepareContext& ctx) const override {
    auto k = kernel_shape(ctx.node);
    Window win(ctx.node, static_cast<int64_t>(k.size()), k);
    bool ceil = ctx.node.attr_int("ceil_mode", 0) != 0;
    bool include_pad = ctx.node.attr_int("count_include_pad", 0) != 0;
    std::string where = ctx.node.where();
    return [win, ceil, include_pad, where](const Tensors& in, Tensors& out) {
      std::vector<int64_t> pads = win.resolve(in[0].sizes().slice(2)), p;
      at::Tensor x = pad_to_symmetric(in[0], pads, 0.0, p);
      MPQ_CHECK(x.is_same(in[0]) || include_pad, ErrorCode::kUnsupported,
                "{}: asymmetric pads need count_include_pad=1", where);
      switch (win.kernel.size()) {
        case 1:
          out[0] = at::avg_pool1d(x, win.kernel, win.strides, p, ceil, include_pad);
          break;
        case 2:
          out[0] = at::avg_pool2d(x, win.kernel, win.strides, p, ceil, include_pad);
          break;
        case 3:
          out[0] = at::avg_pool3d(x, win.kernel, win.strides, p, ceil, include_pad);
          break;
        default:
          fail(ErrorCode::kUnsupported, "AveragePool over {} dims", win.kernel.size());
      }
    };
  }
};

MPQ_REGISTER(OpDef, "AveragePool", AveragePool);

}  // namespace
}  // namespace mpq::exec
