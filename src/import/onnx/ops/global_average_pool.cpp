// GlobalAveragePool: mean over all spatial dimensions, kept as size 1.
#include "op_util.h"

namespace mpq::exec {
namespace {

std::vector<int64_t> spatial_dims(const at::Tensor& x) {
  std::vector<int64_t> dims;
  for (int64_t d = 2; d < x.dim(); ++d) dims.push_back(d);
  return dims;
}

class GlobalAveragePool : public OpDef {
 public:
  Kernel prepare(const PrepareContext&) const override {
    return [](const Tensors& in, Tensors& out) {
      out[0] = in[0].dim() == 4 ? at::adaptive_avg_pool2d(in[0], {1, 1})
                                : in[0].mean(spatial_dims(in[0]), true);
    };
  }
};

MPQ_REGISTER(OpDef, "GlobalAveragePool", GlobalAveragePool);

}  // namespace
}  // namespace mpq::exec
