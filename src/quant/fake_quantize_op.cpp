// mpq::FakeQuantize: quantize-dequantize in float with straight-through gradients, the node
// QuantSim inserts. Inputs: x, scale (float [C] or [1]), zero_point (int32, same shape).
// Attributes: qmin, qmax, axis (-1: per tensor). Scale and zero point are read at every run,
// so calibration and learned step sizes change them in the Graph without re-preparing.
#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include "mpq/exec/op.h"

namespace mpq::exec {
namespace {

class FakeQuantize : public OpDef {
 public:
  Kernel prepare(const PrepareContext& ctx) const override {
    int64_t qmin = ctx.node.attr_int("qmin", 0);
    int64_t qmax = ctx.node.attr_int("qmax", 255);
    int64_t axis = ctx.node.attr_int("axis", -1);
    if (axis >= 0) {
      return [=](const Tensors& in, Tensors& out) {
        out[0] = at::fake_quantize_per_channel_affine(in[0], in[1], in[2], axis, qmin, qmax);
      };
    }
    return [=](const Tensors& in, Tensors& out) {
      bool grad = at::GradMode::is_enabled() && (in[0].requires_grad() || in[1].requires_grad());
      if (grad) {
        out[0] = at::fake_quantize_per_tensor_affine(in[0], in[1], in[2], qmin, qmax);
        return;
      }
      // Inference: x / s (as ONNX Runtime divides; ATen multiplies by 1/s), round half to even,
      // + z, clamp, − z, ·s) in place, about twice as fast, keeping the memory format.
      float scale = in[1].item<float>();
      int64_t zero = in[2].item<int64_t>();
      at::Tensor y = reusable(in[0]) ? in[0] : in[0].clone();
      y.div_(scale).round_();
      if (zero != 0) y.add_(zero);
      y.clamp_(qmin, qmax);
      if (zero != 0) y.sub_(zero);
      out[0] = y.mul_(scale);
    };
  }
};

MPQ_REGISTER(OpDef, "mpq::FakeQuantize", FakeQuantize);

}  // namespace
}  // namespace mpq::exec
