// mpq::SuperQuantize: the quantizer of one layer in the SSPS supernet (src/search/ssps.cpp).
// It holds K candidate grids and runs only the one a gate selects (a single path).
//
// Inputs: x; gate float [K], a one-hot vector (under search, hard Gumbel-softmax samples with
// straight-through gradients); scale float [K, C] (per channel along `axis`) or [K, 1] (per
// tensor); zero_point float, same shape. Attributes: qmin, qmax (K integers each), axis (-1: per
// tensor).
//
// With c = argmax(gate), the output is x + gate[c]·(Q_c(x) − x): the value is exactly the
// candidate's fake quantization, and the gradient reaching gate[c] is <∂L/∂y, Q_c(x) − x>, the
// first-order change of the loss that candidate's quantization noise causes. A scale that
// requires grad is learned LSQ-style (ATen's learnable fake quantizers, gradient scale
// 1/sqrt(numel·qmax)).
#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <cmath>

#include "mpq/core/error.h"
#include "mpq/exec/op.h"

namespace mpq::exec {
namespace {

class SuperQuantize : public OpDef {
 public:
  Kernel prepare(const PrepareContext& ctx) const override {
    std::vector<int64_t> qmin = ctx.node.attr_ints("qmin"), qmax = ctx.node.attr_ints("qmax");
    int64_t axis = ctx.node.attr_int("axis", -1);
    MPQ_CHECK(!qmin.empty() && qmin.size() == qmax.size(), ErrorCode::kInternal,
              "{}: qmin and qmax need one entry per candidate", ctx.node.where());
    std::string where = ctx.node.where();
    return [=](const Tensors& in, Tensors& out) {
      const at::Tensor& x = in[0];
      const at::Tensor& gate = in[1];
      MPQ_CHECK(gate.numel() == static_cast<int64_t>(qmin.size()), ErrorCode::kInternal,
                "{}: gate has {} entries for {} candidates", where, gate.numel(), qmin.size());
      bool grad = at::GradMode::is_enabled();
      auto quantize = [&](int64_t c) {
        at::Tensor scale = in[2].select(0, c), zero = in[3].select(0, c);
        bool learn = grad && scale.requires_grad();
        double g = 1.0 / std::sqrt(static_cast<double>(x.numel()) *
                                   static_cast<double>(std::max<int64_t>(qmax[c], 1)));
        if (axis >= 0)
          return learn ? at::_fake_quantize_learnable_per_channel_affine(x, scale, zero, axis,
                                                                         qmin[c], qmax[c], g)
                       : at::fake_quantize_per_channel_affine(x, scale.detach(),
                                                              zero.detach().round().to(at::kInt),
                                                              axis, qmin[c], qmax[c]);
        return learn
                   ? at::_fake_quantize_learnable_per_tensor_affine(x, scale, zero, qmin[c],
                                                                    qmax[c], g)
                   : at::fake_quantize_per_tensor_affine(
                         x, scale.detach().item<double>(),
                         static_cast<int64_t>(std::lround(zero.item<double>())), qmin[c], qmax[c]);
      };
      int64_t c = gate.argmax().item<int64_t>();
      if (!grad || !gate.requires_grad()) {
        out[0] = quantize(c);
        return;
      }
      out[0] = x + gate.select(0, c) * (quantize(c) - x);
    };
  }
};

MPQ_REGISTER(OpDef, "mpq::SuperQuantize", SuperQuantize);

}  // namespace
}  // namespace mpq::exec
