// QuantizeLinear: y = saturate(round(x / scale) + zero_point), uint8 or int8 by the zero
// point's type (uint8 when absent). Per tensor, or per channel along `axis` (opset 13).
// Rounding is half to even, as ONNX specifies.
#include "op_util.h"

namespace mpq::exec {
namespace {

at::Tensor broadcast_along(const at::Tensor& p, int64_t axis, int64_t dim) {
  if (p.dim() == 0 || p.numel() == 1) return p.reshape({});
  std::vector<int64_t> shape(static_cast<size_t>(dim), 1);
  shape[static_cast<size_t>(axis < 0 ? axis + dim : axis)] = p.numel();
  return p.reshape(shape);
}

class QuantizeLinear : public OpDef {
 public:
  int required_inputs() const override { return 2; }
  Kernel prepare(const PrepareContext& ctx) const override {
    int64_t axis = ctx.node.attr_int("axis", 1);
    bool has_zp = ctx.has_input(2);
    return [axis, has_zp](const Tensors& in, Tensors& out) {
      int64_t dim = in[0].dim();
      at::Tensor scale = broadcast_along(in[1].to(at::kFloat), axis, dim);
      at::ScalarType type = has_zp ? in[2].scalar_type() : at::kByte;
      double lo = type == at::kChar ? -128 : 0, hi = type == at::kChar ? 127 : 255;
      at::Tensor q = at::round(in[0] / scale);
      if (has_zp) q = q + broadcast_along(in[2].to(at::kFloat), axis, dim);
      out[0] = q.clamp_(lo, hi).to(type);
    };
  }
};

class DequantizeLinear : public OpDef {
 public:
  int required_inputs() const override { return 2; }
  Kernel prepare(const PrepareContext& ctx) const override {
    int64_t axis = ctx.node.attr_int("axis", 1);
    bool has_zp = ctx.has_input(2);
    return [axis, has_zp](const Tensors& in, Tensors& out) {
      int64_t dim = in[0].dim();
      at::Tensor x = in[0].to(at::kFloat);
      if (has_zp) x = x - broadcast_along(in[2].to(at::kFloat), axis, dim);
      out[0] = x * broadcast_along(in[1].to(at::kFloat), axis, dim);
    };
  }
};

MPQ_REGISTER(OpDef, "QuantizeLinear", QuantizeLinear);
MPQ_REGISTER(OpDef, "DequantizeLinear", DequantizeLinear);

}  // namespace
}  // namespace mpq::exec
