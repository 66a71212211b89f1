// BitPlan: the bit-width of every quantized layer, as JSON a person can read and edit.
//
//   {"model": "resnet20.onnx",
//    "layers": [{"name": "/conv1/Conv", "w_bits": 8, "a_bits": 8}, ...],
//    "budget": {...}, "predicted": {...}}
//
// Layer names are ONNX node names (exec::quantizable_layers). Widths are 2..8, or 16/32 for
// "left in float". A plan read from a file is checked against the model: every quantized
// layer appears exactly once and nothing else does.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mpq/ir/graph.h"

namespace mpq::allocation {

struct LayerBits {
  std::string name;
  int w_bits = 8;
  int a_bits = 8;
};

struct BitPlan {
  std::string model;
  std::vector<LayerBits> layers;
  nlohmann::json budget = nlohmann::json::object();
  nlohmann::json predicted = nlohmann::json::object();

  // The entry for `layer`, or nullptr.
  const LayerBits* find(const std::string& layer) const;
};

// 2..8 bits are quantized; 16 and 32 mean float.
bool valid_bits(int bits);
inline bool is_quantized(int bits) { return bits <= 8; }

// Every layer at w_bits/a_bits; the first and last at `first_last_bits` (0: no pinning).
BitPlan uniform_plan(const std::vector<ir::LayerInfo>& layers, int w_bits, int a_bits,
                     int first_last_bits = 8);

// Parses and validates the JSON text (syntax, fields, widths); `source` names it in errors.
BitPlan parse_bit_plan(const std::string& text, const std::string& source);
BitPlan load_bit_plan(const std::string& path);
// Checks that the plan covers exactly the model's quantized layers, each once.
void check_plan(const BitPlan& plan, const std::vector<ir::LayerInfo>& layers,
                const std::string& source);

nlohmann::json to_json(const BitPlan& plan);
// Written to a temporary file and renamed.
void save_bit_plan(const BitPlan& plan, const std::string& path);

// Σ params·w_bits over the layers (float layers count 32 bits), and the average width.
int64_t weight_bits(const BitPlan& plan, const std::vector<ir::LayerInfo>& layers);
double average_w_bits(const BitPlan& plan, const std::vector<ir::LayerInfo>& layers);

}  // namespace mpq::allocation
