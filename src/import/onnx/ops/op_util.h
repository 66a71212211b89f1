// Helpers shared by the op files: spatial padding (explicit pads and auto_pad) and checks.
#pragma once

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

#include <string>
#include <vector>

#include "mpq/core/error.h"
#include "mpq/exec/op.h"

namespace mpq::exec {

// Checks auto_pad against the values ONNX allows.
inline void check_auto_pad(const ir::Node& node) {
  std::string mode = node.attr_string("auto_pad", "NOTSET");
  MPQ_CHECK(mode == "NOTSET" || mode == "SAME_UPPER" || mode == "SAME_LOWER" || mode == "VALID",
            ErrorCode::kBadFile,
            "{}: attribute 'auto_pad' = '{}': must be NOTSET, SAME_UPPER, SAME_LOWER or VALID",
            node.where(), mode);
}

// Spatial attributes of Conv and the pools, with ONNX defaults filled in for `dims` spatial dims.
struct Window {
  std::string auto_pad;
  std::vector<int64_t> kernel, strides, dilations, pads;  // pads: begins then ends

  Window(const ir::Node& node, int64_t dims, std::vector<int64_t> kernel_shape)
      : auto_pad(node.attr_string("auto_pad", "NOTSET")),
        kernel(std::move(kernel_shape)),
        strides(node.attr_ints("strides", std::vector<int64_t>(dims, 1))),
        dilations(node.attr_ints("dilations", std::vector<int64_t>(dims, 1))),
        pads(node.attr_ints("pads", std::vector<int64_t>(2 * dims, 0))) {}

  // Pads (begins then ends) for an input of spatial size `in`, resolving auto_pad.
  std::vector<int64_t> resolve(at::IntArrayRef in) const {
    const size_t d = kernel.size();
    if (auto_pad == "NOTSET") return pads;
    std::vector<int64_t> out(2 * d, 0);
    if (auto_pad == "VALID") return out;
    for (size_t i = 0; i < d; ++i) {
      int64_t out_size = (in[i] + strides[i] - 1) / strides[i];
      int64_t total = std::max<int64_t>(
          0, (out_size - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - in[i]);
      int64_t small = total / 2;
      out[i] = auto_pad == "SAME_UPPER" ? small : total - small;
      out[i + d] = total - out[i];
    }
    return out;
  }
};

// at::constant_pad_nd (pads as (begin, end) pairs from the last dim backwards), except that
// growing-only pads keep the input's memory format: channels-last activations stay so, and the
// Conv that follows needs no reorder.
// Non-negative constant padding into a new tensor in x's memory format.
inline at::Tensor pad_into(const at::Tensor& x, const std::vector<int64_t>& pads, double value) {
  std::vector<int64_t> sizes = x.sizes().vec();
  for (size_t i = 0; i < pads.size() / 2; ++i)
    sizes[x.dim() - 1 - i] += pads[2 * i] + pads[2 * i + 1];
  at::Tensor out = at::empty(sizes, x.options().memory_format(x.suggest_memory_format()));
  out.fill_(value);
  at::Tensor inner = out;
  for (size_t i = 0; i < pads.size() / 2; ++i)
    inner = inner.narrow(x.dim() - 1 - i, pads[2 * i], x.size(x.dim() - 1 - i));
  inner.copy_(x);
  return out;
}

// The same under autograd: the gradient is the inner slice, in the gradient's memory format
// (ATen's constant_pad_nd backward pads the gradient again, zero-filled and in NCHW, which
// costs a channels-last network more than the convolutions around it).
class PadConstant : public torch::autograd::Function<PadConstant> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                            std::vector<int64_t> pads, double value) {
    ctx->saved_data["pads"] = pads;
    ctx->saved_data["sizes"] = x.sizes().vec();
    return pad_into(x, pads, value);
  }
  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    std::vector<int64_t> pads = ctx->saved_data["pads"].toIntVector();
    std::vector<int64_t> sizes = ctx->saved_data["sizes"].toIntVector();
    at::Tensor g = grads[0];
    const int64_t rank = static_cast<int64_t>(sizes.size());
    for (size_t i = 0; i < pads.size() / 2; ++i)
      g = g.narrow(rank - 1 - static_cast<int64_t>(i), pads[2 * i],
                   sizes[static_cast<size_t>(rank - 1) - i]);
    return {g.contiguous(grads[0].suggest_memory_format()), at::Tensor(), at::Tensor()};
  }
};

// Constant padding ((begin, end) pairs from the last dimension backwards, as
// at::constant_pad_nd takes them) in x's memory format; negative pads crop.
inline at::Tensor pad_constant(const at::Tensor& x, const std::vector<int64_t>& pads,
                               double value) {
  for (int64_t p : pads)
    if (p < 0) return at::constant_pad_nd(x, pads, value);
  if (at::GradMode::is_enabled() && x.requires_grad()) return PadConstant::apply(x, pads, value);
  return pad_into(x, pads, value);
}

// Applies pads (begins then ends over the trailing spatial dims) so that what is left is
// symmetric: returns the padded input and sets `symmetric` to the per-dim padding ATen takes.
inline at::Tensor pad_to_symmetric(const at::Tensor& x, const std::vector<int64_t>& pads,
                                   double value, std::vector<int64_t>& symmetric) {
  const size_t d = pads.size() / 2;
  symmetric.assign(d, 0);
  bool is_symmetric = true;
  for (size_t i = 0; i < d; ++i) is_symmetric = is_symmetric && pads[i] == pads[i + d];
  if (is_symmetric) {
    for (size_t i = 0; i < d; ++i) symmetric[i] = pads[i];
    return x;
  }
  // constant_pad_nd takes (begin, end) pairs starting from the last dimension.
  std::vector<int64_t> aten_pads;
  for (size_t i = d; i-- > 0;) {
    aten_pads.push_back(pads[i]);
    aten_pads.push_back(pads[i + d]);
  }
  return pad_constant(x, aten_pads, value);
}

// Kernel shape from the attribute, or from the weight when the attribute is absent.
inline std::vector<int64_t> kernel_shape(const ir::Node& node) {
  auto k = node.attr_ints("kernel_shape");
  MPQ_CHECK(!k.empty(), ErrorCode::kBadFile, "{}: attribute 'kernel_shape' is required",
            node.where());
  return k;
}

}  // namespace mpq::exec

namespace mpq::exec {

// ATen scalar type for an ONNX TensorProto.DataType number; nullopt when ATen has none.
inline std::optional<at::ScalarType> scalar_type_from_onnx(int64_t type) {
  switch (type) {
    case 1:
      return at::kFloat;
    case 2:
      return at::kByte;
    case 3:
      return at::kChar;
    case 5:
      return at::kShort;
    case 6:
      return at::kInt;
    case 7:
      return at::kLong;
    case 9:
      return at::kBool;
    case 10:
      return at::kHalf;
    case 11:
      return at::kDouble;
    case 16:
      return at::kBFloat16;
    default:
      return std::nullopt;
  }
}

}  // namespace mpq::exec
