// mpq::FakeQuantize: quantize-dequantize in float with straight-through gradients, the node
// QuantSim inserts. Inputs: x, scale (float [C] or [1]), zero_point (int32, same shape).
// Attributes: qmin, qmax, axis (-1: per tensor), drop (QDrop, default 0). Scale and zero point
// are read at every run, so calibration and learned step sizes change them in the Graph without
// re-preparing.
//
// Under autograd, a per-tensor scale that requires grad is learned LSQ-style (Esser et al.
// 2020): ATen's learnable fake quantizer, gradient scale g = 1/sqrt(numel·qmax). With drop = p
// > 0 and autograd on, each element keeps its unquantized value with probability p (QDrop, Wei
// et al. 2022); inference never drops.
#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <cmath>

#include "mpq/exec/op.h"

namespace mpq::exec {
namespace {

class FakeQuantize : public OpDef {
 public:
  Kernel prepare(const PrepareContext& ctx) const override {
    int64_t qmin = ctx.node.attr_int("qmin", 0);
    int64_t qmax = ctx.node.attr_int("qmax", 255);
    int64_t axis = ctx.node.attr_int("axis", -1);
    double drop = ctx.node.attr_float("drop", 0.0);
    if (axis >= 0) {
      return [=](const Tensors& in, Tensors& out) {
        out[0] = at::fake_quantize_per_channel_affine(in[0], in[1], in[2], axis, qmin, qmax);
      };
    }
    return [=](const Tensors& in, Tensors& out) {
      bool grad = at::GradMode::is_enabled() && (in[0].requires_grad() || in[1].requires_grad());
      if (grad) {
        at::Tensor q;
        if (in[1].requires_grad()) {
          double g = 1.0 / std::sqrt(static_cast<double>(in[0].numel()) * std::max<int64_t>(qmax, 1));
          q = at::_fake_quantize_learnable_per_tensor_affine(in[0], in[1], in[2].to(at::kFloat),
                                                               qmin, qmax, g);
        } else {
          q = at::fake_quantize_per_tensor_affine(in[0], in[1], in[2], qmin, qmax);
        }
        out[0] = drop > 0 ? at::where(at::rand_like(in[0]) < drop, in[0], q) : q;
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
