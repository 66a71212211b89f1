// ilp: the HAWQ-V3 integer program, solved with GLPK's branch-and-cut (glp_intopt):
//   minimise Σ_l Σ_o x_lo·Ω_l(o)   subject to   Σ_o x_lo = 1 for every layer,
//            Σ_l Σ_o x_lo·cost_k(l, o) ≤ budget_k for every budget k,   x binary,
// over the options o = (w, a) of each layer (pinned layers have one). Rows are scaled by their
// budget and Ω by its largest value, so GLPK works with numbers near 1; dominated options are
// dropped first; the caller checks the result exactly and repairs the rare tolerance overshoot.
#include <glpk.h>

#include <algorithm>
#include <memory>

#include "mpq/allocation/allocator.h"
#include "mpq/core/error.h"

namespace mpq::allocation {
namespace {

// Options no better in Ω and no cheaper in any budget than another option of the same layer
// can never be in an optimal plan; dropping them keeps the program small (with a size budget
// and several activation widths, only the widest activation survives).
std::vector<std::pair<int, int>> undominated(const Problem& p, size_t l) {
  auto options = p.options(l);
  std::vector<std::pair<int, int>> kept;
  for (size_t i = 0; i < options.size(); ++i) {
    bool dominated = false;
    for (size_t j = 0; j < options.size() && !dominated; ++j) {
      if (i == j) continue;
      auto [wi, ai] = options[i];
      auto [wj, aj] = options[j];
      double oi = p.omega(l, wi, ai), oj = p.omega(l, wj, aj);
      bool no_worse = oj <= oi, strictly = oj < oi;
      for (const Budget& b : p.budgets) {
        double ci = p.costs->cost(b.kind, l, wi, ai), cj = p.costs->cost(b.kind, l, wj, aj);
        no_worse = no_worse && cj <= ci;
        strictly = strictly || cj < ci;
      }
      // Equal options: keep the first only.
      dominated = no_worse && (strictly || j < i);
    }
    if (!dominated) kept.push_back(options[i]);
  }
  return kept;
}

class Ilp : public Allocator {
 public:
  BitPlan allocate(const Problem& p) const override {
    const auto& layers = p.costs->layers();
    std::unique_ptr<glp_prob, decltype(&glp_delete_prob)> lp(glp_create_prob(), glp_delete_prob);
    glp_set_obj_dir(lp.get(), GLP_MIN);
    int rows = static_cast<int>(layers.size() + p.budgets.size());
    glp_add_rows(lp.get(), rows);
    for (size_t l = 0; l < layers.size(); ++l)
      glp_set_row_bnds(lp.get(), static_cast<int>(l) + 1, GLP_FX, 1.0, 1.0);
    for (size_t k = 0; k < p.budgets.size(); ++k)
      glp_set_row_bnds(lp.get(), static_cast<int>(layers.size() + k) + 1, GLP_UP, 0.0, 1.0);

    double omega_scale = 0;
    for (size_t l = 0; l < layers.size(); ++l)
      for (auto [w, a] : p.options(l)) omega_scale = std::max(omega_scale, p.omega(l, w, a));
    if (omega_scale <= 0) omega_scale = 1;

    std::vector<int> ia{0}, ja{0};
    std::vector<double> ar{0};
    std::vector<std::pair<size_t, std::pair<int, int>>> columns;
    for (size_t l = 0; l < layers.size(); ++l)
      for (auto option : undominated(p, l)) {
        int col = glp_add_cols(lp.get(), 1);
        glp_set_col_kind(lp.get(), col, GLP_BV);
        glp_set_obj_coef(lp.get(), col, p.omega(l, option.first, option.second) / omega_scale);
        columns.emplace_back(l, option);
        ia.push_back(static_cast<int>(l) + 1);
        ja.push_back(col);
        ar.push_back(1.0);
        for (size_t k = 0; k < p.budgets.size(); ++k) {
          ia.push_back(static_cast<int>(layers.size() + k) + 1);
          ja.push_back(col);
          ar.push_back(p.costs->cost(p.budgets[k].kind, l, option.first, option.second) /
                       p.costs->limit(p.budgets[k]));
        }
      }
    glp_load_matrix(lp.get(), static_cast<int>(ia.size()) - 1, ia.data(), ja.data(), ar.data());
    glp_iocp parm;
    glp_init_iocp(&parm);
    parm.presolve = GLP_ON;
    parm.msg_lev = GLP_MSG_OFF;
    parm.tm_lim = 10000;   // ms; then the best plan found (noted in the plan)
    parm.mip_gap = 1e-4;   // relative: optimal for any practical purpose
    parm.mir_cuts = GLP_ON;  // knapsack-like budget rows: MIR and cover cuts close the gap fast
    parm.cov_cuts = GLP_ON;
    int terminal = glp_term_out(GLP_OFF);  // the cut generators print even at GLP_MSG_OFF
    int rc = glp_intopt(lp.get(), &parm);
    glp_term_out(terminal);
    int status = glp_mip_status(lp.get());
    MPQ_CHECK(status != GLP_NOFEAS && rc != GLP_ENOPFS && rc != GLP_ENODFS,
              ErrorCode::kInvalidArgument,
              "the budgets cannot all be met together with these candidates (each alone is "
              "feasible; loosen one of them)");
    MPQ_CHECK(status == GLP_OPT || status == GLP_FEAS, ErrorCode::kInternal,
              "GLPK did not solve the allocation (glp_intopt {}, status {})", rc, status);

    BitPlan plan;
    plan.predicted["ilp"] = rc == GLP_ETMLIM ? "best plan found in 10 s (not proven optimal)"
                                             : "optimal (gap <= 1e-4)";
    for (size_t l = 0; l < layers.size(); ++l) plan.layers.push_back({layers[l].name, 8, 8});
    for (size_t c = 0; c < columns.size(); ++c)
      if (glp_mip_col_val(lp.get(), static_cast<int>(c) + 1) > 0.5) {
        auto [l, option] = columns[c];
        plan.layers[l].w_bits = option.first;
        plan.layers[l].a_bits = option.second;
      }
    return plan;
  }
};

MPQ_REGISTER(Allocator, "ilp", Ilp);

}  // namespace
}  // namespace mpq::allocation
