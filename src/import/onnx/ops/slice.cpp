// Slice: starts/ends/axes/steps as inputs (opset >= 10) or attributes (before). Out-of-range
// indices clamp, negative ones count from the end; negative steps walk backwards.
#include "op_util.h"

namespace mpq::exec {
namespace {

struct SliceSpec {
  std::vector<int64_t> starts, ends, axes, steps;
};

at::Tensor apply(at::Tensor x, const SliceSpec& s, const std::string& where) {
  MPQ_CHECK(s.ends.size() == s.starts.size() &&
                (s.axes.empty() || s.axes.size() == s.starts.size()) &&
                (s.steps.empty() || s.steps.size() == s.starts.size()),
            ErrorCode::kBadFile,
            "{}: starts, ends, axes and steps have {}, {}, {} and {} values; they must agree",
            where, s.starts.size(), s.ends.size(), s.axes.size(), s.steps.size());
  for (size_t i = 0; i < s.starts.size(); ++i) {
    int64_t axis = s.axes.empty() ? static_cast<int64_t>(i) : s.axes[i];
    if (axis < 0) axis += x.dim();
    MPQ_CHECK(axis >= 0 && axis < x.dim(), ErrorCode::kBadFile, "{}: axis {} of a {}-d tensor",
              where, s.axes.empty() ? int64_t(i) : s.axes[i], x.dim());
    int64_t step = s.steps.empty() ? 1 : s.steps[i];
    MPQ_CHECK(step != 0, ErrorCode::kBadFile, "{}: step 0 on axis {}", where, axis);
    int64_t size = x.size(axis);
    int64_t start = s.starts[i] < 0 ? s.starts[i] + size : s.starts[i];
    int64_t end = s.ends[i] < 0 ? s.ends[i] + size : s.ends[i];
    if (step > 0) {
      start = std::clamp<int64_t>(start, 0, size);
      end = std::clamp<int64_t>(end, 0, size);
      x = x.slice(axis, start, std::max(start, end), step);
    } else {
      // Negative steps walk from start down to (excluding) end; ONNX clamps start to
      // [0, size-1] and end to [-1, size-1].
      start = std::clamp<int64_t>(start, 0, size - 1);
      end = std::clamp<int64_t>(s.ends[i] < -size ? -1 : end, -1, size - 1);
      at::Tensor index =
          start > end ? at::arange(start, end, step, at::kLong) : at::empty({0}, at::kLong);
      x = at::index_select(x, axis, index);
    }
  }
  return x;
}

class Slice : public OpDef {
 public:
  Kernel prepare(const PrepareContext& ctx) const override {
    std::string where = ctx.node.where();
    if (ctx.node.has("starts")) {  // opset < 10
      SliceSpec s{
          ctx.node.attr_ints("starts"), ctx.node.attr_ints("ends"), ctx.node.attr_ints("axes"), {}};
      return [s, where](const Tensors& in, Tensors& out) { out[0] = apply(in[0], s, where); };
    }
    bool all_constant = true;
    for (size_t i = 1; i < ctx.node.inputs.size(); ++i)
      all_constant = all_constant && (!ctx.has_input(i) || ctx.constant(i));
    auto read = [](const Tensors& in, size_t i) {
      return i < in.size() && in[i].defined() ? to_int_vector(in[i]) : std::vector<int64_t>{};
    };
    if (all_constant) {
      Tensors consts(ctx.node.inputs.size());
      for (size_t i = 1; i < consts.size(); ++i)
        if (auto c = ctx.constant(i)) consts[i] = *c;
      SliceSpec s{read(consts, 1), read(consts, 2), read(consts, 3), read(consts, 4)};
      return [s, where](const Tensors& in, Tensors& out) { out[0] = apply(in[0], s, where); };
    }
    return [read, where](const Tensors& in, Tensors& out) {
      out[0] = apply(in[0], SliceSpec{read(in, 1), read(in, 2), read(in, 3), read(in, 4)}, where);
    };
  }
};

MPQ_REGISTER(OpDef, "Slice", Slice);

}  // namespace
}  // namespace mpq::exec
