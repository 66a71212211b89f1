// Pad: constant mode. Pads are [x1_begin, x2_begin, ..., x1_end, x2_end] from input 1
// (opset >= 11) or the attribute `pads`; the fill value from input 2 or `value`; optional
// `axes` (opset 18). Negative pads crop.
#include "op_util.h"

namespace mpq::exec {
namespace {

std::vector<int64_t> aten_pads(const std::vector<int64_t>& pads, std::vector<int64_t> axes,
                               int64_t rank) {
  const size_t n = pads.size() / 2;
  if (axes.empty())
    for (int64_t i = 0; i < rank; ++i) axes.push_back(i);
  std::vector<int64_t> full(2 * rank, 0);
  for (size_t i = 0; i < n; ++i) {
    int64_t a = axes[i] < 0 ? axes[i] + rank : axes[i];
    full[a] = pads[i];
    full[a + rank] = pads[i + n];
  }
  // constant_pad_nd takes (begin, end) pairs from the last dimension backwards, and may stop
  // at the last padded dimension.
  int64_t first = 0;
  while (first < rank && full[first] == 0 && full[first + rank] == 0) ++first;
  std::vector<int64_t> out;
  for (int64_t d = rank; d-- > first;) {
    out.push_back(full[d]);
    out.push_back(full[d + rank]);
  }
  return out;
}

class Pad : public OpDef {
 public:
  void check(const ir::Node& node, const ir::Graph&) const override {
    std::string mode = node.attr_string("mode", "constant");
    MPQ_CHECK(mode == "constant" || mode.empty(), ErrorCode::kUnsupported,
              "{}: mode '{}' is not supported; only 'constant'", node.where(), mode);
    MPQ_CHECK(node.has("pads") || (node.inputs.size() > 1 && node.inputs[1] >= 0),
              ErrorCode::kBadFile, "{}: no pads (an attribute before opset 11, input 1 from it)",
              node.where());
  }

  Kernel prepare(const PrepareContext& ctx) const override {
    const ir::Node& n = ctx.node;
    std::optional<std::vector<int64_t>> pads;
    if (n.has("pads"))
      pads = n.attr_ints("pads");
    else if (auto c = ctx.constant(1))
      pads = to_int_vector(*c);
    double value = n.attr_float("value", 0.0);
    bool dynamic_value = false;
    if (ctx.has_input(2)) {
      if (auto c = ctx.constant(2))
        value = c->numel() ? c->item<double>() : 0.0;
      else
        dynamic_value = true;
    }
    std::vector<int64_t> axes;
    if (ctx.has_input(3)) {
      auto c = ctx.constant(3);
      MPQ_CHECK(c.has_value(), ErrorCode::kUnsupported, "{}: axes must be constant", n.where());
      axes = to_int_vector(*c);
    }
    return [pads, value, dynamic_value, axes](const Tensors& in, Tensors& out) {
      std::vector<int64_t> p = pads ? *pads : to_int_vector(in[1]);
      double v = dynamic_value ? in[2].item<double>() : value;
      out[0] = pad_constant(in[0], aten_pads(p, axes, in[0].dim()), v);
    };
  }
};

MPQ_REGISTER(OpDef, "Pad", Pad);

}  // namespace
}  // namespace mpq::exec
