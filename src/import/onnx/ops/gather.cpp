// Gather: pick entries of `data` along `axis` by `indices` (negative ones count from the end);
// the output shape is data[:axis] + indices.shape + data[axis+1:].
#include "op_util.h"

namespace mpq::exec {
namespace {

class Gather : public OpDef {
 public:
  int required_inputs() const override { return 2; }
  Kernel prepare(const PrepareContext& ctx) const override {
    int64_t axis = ctx.node.attr_int("axis", 0);
    return [axis](const Tensors& in, Tensors& out) {
      const at::Tensor& data = in[0];
      int64_t a = axis < 0 ? axis + data.dim() : axis;
      at::Tensor idx = in[1].to(at::kLong);
      idx = at::where(idx < 0, idx + data.size(a), idx);
      if (idx.dim() == 0) {
        out[0] = data.select(a, idx.item<int64_t>());
        return;
      }
      std::vector<int64_t> shape(data.sizes().begin(), data.sizes().begin() + a);
      for (int64_t d : idx.sizes()) shape.push_back(d);
      for (int64_t d = a + 1; d < data.dim(); ++d) shape.push_back(data.size(d));
      out[0] = at::index_select(data, a, idx.reshape({-1})).reshape(shape);
    };
  }
};

MPQ_REGISTER(OpDef, "Gather", Gather);

}  // namespace
}  // namespace mpq::exec
