// Conv: N-d convolution with groups, strides, dilations, explicit pads or auto_pad.
// Asymmetric pads (TF "SAME" with stride 2) are applied with constant_pad_nd first.
#include <ATen/core/grad_mode.h>

#include <memory>

#include "op_util.h"

namespace mpq::exec {
namespace {

// oneDNN runs channels-last activations with channels-last weights without reordering
// (about 3x faster on CPU than NCHW here); the converted weight is kept while the weight tensor
// and its version are unchanged. Under autograd the conversion is redone, so gradients flow.
class WeightCache {
 public:
  const at::Tensor& channels_last(const at::Tensor& w) {
    if (w.requires_grad() && at::GradMode::is_enabled()) {
      converted_ = w.contiguous(at::MemoryFormat::ChannelsLast);
      source_ = nullptr;
      return converted_;
    }
    // Tensors made under InferenceMode carry no version counter; they are keyed by identity.
    uint32_t version = w.is_inference() ? 0 : w._version();
    if (w.unsafeGetTensorImpl() != source_ || version != version_ || !converted_.defined()) {
      converted_ = w.contiguous(at::MemoryFormat::ChannelsLast);
      source_ = w.unsafeGetTensorImpl();
      version_ = version;
      keep_ = w;
    }
    return converted_;
  }

 private:
  at::Tensor converted_, keep_;  // keep_ holds the source so its address is not reused
  const c10::TensorImpl* source_ = nullptr;
  uint32_t version_ = 0;
};

class Conv : public OpDef {
 public:
  int required_inputs() const override { return 2; }
  void check(const ir::Node& node, const ir::Graph&) const override {
    check_auto_pad(node);
    MPQ_CHECK(node.attr_int("group", 1) >= 1, ErrorCode::kBadFile,
              "{}: attribute 'group' = {}: must be >= 1", node.where(), node.attr_int("group", 1));
    MPQ_CHECK(node.inputs.size() >= 2, ErrorCode::kBadFile, "{}: needs inputs X and W",
              node.where());
  }

  Kernel prepare(const PrepareContext& ctx) const override {
    const ir::Node& node = ctx.node;
    std::vector<int64_t> kernel = node.attr_ints("kernel_shape");
    if (kernel.empty()) {
      auto w = ctx.constant(1);
      MPQ_CHECK(w.has_value(), ErrorCode::kUnsupported,
                "{}: without 'kernel_shape' the weight must be an initializer", node.where());
      kernel = w->sizes().slice(2).vec();
    }
    Window win(node, static_cast<int64_t>(kernel.size()), kernel);
    int64_t groups = node.attr_int("group", 1);
    std::vector<int64_t> no_output_pad(kernel.size(), 0);
    auto cache = std::make_shared<WeightCache>();
    return [win, groups, no_output_pad, cache](const Tensors& in, Tensors& out) {
      std::vector<int64_t> padding;
      at::Tensor x = pad_to_symmetric(in[0], win.resolve(in[0].sizes().slice(2)), 0.0, padding);
      at::Tensor bias = in.size() > 2 ? in[2] : at::Tensor();
      const at::Tensor& w = x.is_contiguous(at::MemoryFormat::ChannelsLast) && x.dim() == 4
                                ? cache->channels_last(in[1])
                                : in[1];
      out[0] = at::convolution(x, w, bias, win.strides, padding, win.dilations, false,
                               no_output_pad, groups);
    };
  }
};

MPQ_REGISTER(OpDef, "Conv", Conv);

}  // namespace
}  // namespace mpq::exec
