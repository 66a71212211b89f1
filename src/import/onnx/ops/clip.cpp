// Clip: clamp to [min, max]. Bounds are attributes before opset 11 and optional inputs after;
// constant inputs are read once at prepare time (ReLU6 in MobileNetV2 costs one clamp).
#include <cmath>

#include "op_util.h"

namespace mpq::exec {
namespace {

std::optional<double> bound(const PrepareContext& ctx, size_t input, const char* attr) {
  if (ctx.node.has(attr)) return ctx.node.attr_float(attr, 0.0);
  if (!ctx.has_input(input)) return std::nullopt;
  if (auto c = ctx.constant(input)) return c->item<double>();
  return std::nullopt;
}

class Clip : public OpDef {
 public:
  Kernel prepare(const PrepareContext& ctx) const override {
    std::optional<double> lo = bound(ctx, 1, "min");
    std::optional<double> hi = bound(ctx, 2, "max");
    bool dynamic = (ctx.has_input(1) && !ctx.constant(1)) || (ctx.has_input(2) && !ctx.constant(2));
    if (dynamic) {
      return [](const Tensors& in, Tensors& out) {
        c10::optional<at::Scalar> l, h;
        if (in.size() > 1 && in[1].defined()) l = in[1].item();
        if (in.size() > 2 && in[2].defined()) h = in[2].item();
        out[0] = at::clamp(in[0], l, h);
      };
    }
    c10::optional<at::Scalar> l, h, li, hi_int;  // integer bounds for integer tensors (QCDQ)
    if (lo) l = *lo, li = static_cast<int64_t>(std::llround(*lo));
    if (hi) h = *hi, hi_int = static_cast<int64_t>(std::llround(*hi));
    return [l, h, li, hi_int](const Tensors& in, Tensors& out) {
      bool integral = at::isIntegralType(in[0].scalar_type(), /*includeBool=*/false);
      const auto& a = integral ? li : l;
      const auto& b = integral ? hi_int : h;
      out[0] = reusable(in[0]) ? in[0].clamp_(a, b) : at::clamp(in[0], a, b);
    };
  }
};

MPQ_REGISTER(OpDef, "Clip", Clip);

}  // namespace
}  // namespace mpq::exec
