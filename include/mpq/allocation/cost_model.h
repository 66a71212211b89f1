// What a bit plan costs (DESIGN.md section 3), per layer l at widths (b_w, b_a):
//   size     bytes of the packed weights: params_l·b_w/8, plus 4 bytes per output channel for
//            its scale (float layers: params_l·4, no scale)
//   bops     MACs_l·b_w·b_a per image (float counts as 32 bits)
//   latency  milliseconds from a measured lookup table (JSON, below)
//   energy   picojoules per image: MACs_l·e_mac(b_w, b_a) + bytes moved·e_mem, with
//            e_mac = 0.2 pJ·(b_w·b_a/64) + 0.1 pJ (an 8×8-bit multiply scaled by operand bits,
//            plus a 32-bit add; float32: 3.7 + 0.9 pJ) and e_mem = 160 pJ per byte of weights
//            and input activations read from DRAM (Horowitz, ISSCC 2014, 45 nm)
//   avg-w-bits  Σ params_l·b_w / Σ params_l over all quantized layers, pinned ones included
//
// Latency table JSON: {"unit": "ms", "layers": {"<layer>": {"w4a8": 0.12, "w8a8": 0.2, ...}}}
// with an entry for every layer and every (w, a) pair the search may choose.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mpq/allocation/bit_plan.h"
#include "mpq/ir/graph.h"

namespace mpq::allocation {

enum class CostKind { kSize, kBops, kLatency, kEnergy, kAvgWBits };
const char* cost_name(CostKind kind);

// "size=60KB", "bops=1.2G", "latency=5ms", "energy=40uJ", "avg-w-bits=3".
struct Budget {
  CostKind kind = CostKind::kSize;
  double limit = 0;  // bytes, BOPs, ms, pJ, bits
  std::string text;
};
Budget parse_budget(const std::string& text);
// A cost in the budget's units, for messages: "58.6 KB", "1.21 GBOPs", ...
std::string format_cost(CostKind kind, double value);

struct LayerCost {
  std::string name;
  int64_t params = 0, macs = 0, channels = 0, input_elements = 0;  // per image
};

struct LatencyTable {
  std::map<std::string, std::map<std::string, double>> ms;  // layer -> "w4a8" -> ms
  std::string source;
};
LatencyTable load_latency_table(const std::string& path);

class CostModel {
 public:
  explicit CostModel(const ir::Graph& model, const LatencyTable* latency = nullptr);

  const std::vector<LayerCost>& layers() const { return layers_; }
  bool has_latency() const { return latency_ != nullptr; }
  // Cost of one layer; kAvgWBits gives params·b_w (the plan's average is the sum / Σ params).
  double cost(CostKind kind, size_t layer, int w_bits, int a_bits) const;
  double total(CostKind kind, const BitPlan& plan) const;
  // The budget's right-hand side in the units of cost() sums.
  double limit(const Budget& budget) const;
  // All the costs of a plan (size bytes, BOPs, energy, avg bits, latency when known).
  nlohmann::json predicted(const BitPlan& plan) const;

 private:
  std::vector<LayerCost> layers_;
  int64_t total_params_ = 0;
  const LatencyTable* latency_;
};

}  // namespace mpq::allocation
