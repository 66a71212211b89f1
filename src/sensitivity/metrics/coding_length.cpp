// coding_length: the lossy coding length of each weight (Ma et al. 2007, as used by Attention
// Round). W_l reshaped to m×n (rows = output channels) and divided by its RMS, distortion ε:
//   L_l = (m + n)/2 · log2 det(I + m/(ε²n) · W Wᵀ)
// computed on the smaller Gram side (det(I + c·WWᵀ) = det(I + c·WᵀW)) in float64 via Cholesky.
// The information density r_l = L_l / n_l drives the proportional allocation; for the ILP,
// Ω_l(b) = r_l · ‖ΔW_l(b)‖². Data-free. ε defaults to 0.5 (--epsilon).
// Choice: ε is relative to the layer's RMS weight. BN folding rescales each layer arbitrarily,
// and with an absolute ε the length measured the weights' magnitude (resnet20's block-output
// convs, scaled up by BN, looked 8x "denser" and took all the bits: 17% top-1 at 3 bits);
// normalised, it measures the spread of the spectrum, i.e. how much structure must be kept.
#include <c10/core/InferenceMode.h>

#include <cmath>

#include "mpq/sensitivity/metric.h"

namespace mpq::sensitivity {
namespace {

class CodingLength : public Metric {
 public:
  Report compute(const Context& ctx) const override {
    c10::InferenceMode guard;
    LayerWeights w = folded_weights(ctx.model);
    double eps = ctx.options.epsilon;
    std::vector<double> density;
    nlohmann::json lengths = nlohmann::json::array();
    for (size_t l = 0; l < w.weights.size(); ++l) {
      at::Tensor mat = w.weights[l].to(at::kDouble).transpose(0, w.axis[l]).reshape(
          {w.weights[l].size(w.axis[l]), -1});
      mat = mat / mat.square().mean().sqrt().clamp_min(1e-30);  // ε relative to the RMS weight
      double m = static_cast<double>(mat.size(0)), n = static_cast<double>(mat.size(1));
      at::Tensor gram = m <= n ? mat.mm(mat.t()) : mat.t().mm(mat);
      at::Tensor a = at::eye(gram.size(0), gram.options()) + gram * (m / (eps * eps * n));
      at::Tensor chol = at::linalg_cholesky(a);
      double log2det = 2.0 * chol.diagonal().log().sum().item<double>() / std::log(2.0);
      double length = (m + n) / 2.0 * log2det;
      density.push_back(length / static_cast<double>(w.layers[l].params));
      lengths.push_back({{"layer", w.layers[l].name}, {"bits", length}});
    }
    Report r = importance_report(w, density, ctx.options);
    r.metric = "coding_length";
    r.details["epsilon"] = eps;
    r.details["coding_length"] = lengths;
    return r;
  }
};

MPQ_REGISTER(Metric, "coding_length", CodingLength);

}  // namespace
}  // namespace mpq::sensitivity
