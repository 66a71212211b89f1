// Transpose: permute dims by `perm` (default: reverse them).
#include "op_util.h"

namespace mpq::exec {
namespace {

class Transpose : public OpDef {
 public:
  Kernel prepare(const PrepareContext& ctx) const override {
    std::vector<int64_t> perm = ctx.node.attr_ints("perm");
    return [perm](const Tensors& in, Tensors& out) {
      std::vector<int64_t> p = perm;
      if (p.empty())
        for (int64_t d = in[0].dim(); d-- > 0;) p.push_back(d);
      out[0] = in[0].permute(p).contiguous();
    };
  }
};

MPQ_REGISTER(OpDef, "Transpose", Transpose);

}  // namespace
}  // namespace mpq::exec
