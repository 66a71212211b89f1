// Exports of a calibrated, rounded QuantSim (DESIGN.md section 8).
//
// QCDQ ONNX: weights as int8 initializers `<weight>_quantized` read by a per-channel
// DequantizeLinear whose output keeps the weight's original name; each quantized activation
// goes QuantizeLinear (uint8) -> Clip to [0, 2^b - 1] (below 8 bits) -> DequantizeLinear, so
// any ONNX runtime simulates the sub-8-bit grid exactly. Layers that share an input tensor at
// the same width share one chain.
//
// Encodings JSON (the AIMET layout), keyed by tensor names of the QCDQ model:
//   {"version": "mpq-1",
//    "activation_encodings": {"<tensor>": [{"bitwidth", "dtype": "int", "is_symmetric",
//                                           "scale", "offset", "min", "max"}]},
//    "param_encodings": {"<weight>": [one entry per output channel]}}
// with real = scale · (q + offset), q the stored integer (unsigned for activations, signed for
// weights), so offset = −zero_point; min/max are the real values of the grid's ends.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "mpq/ir/graph.h"
#include "mpq/quant/quant_sim.h"

namespace mpq::export_ {

struct QuantizedModel {
  ir::Graph qcdq;
  nlohmann::json encodings;
};

QuantizedModel export_quantized(const quant::QuantSim& sim);

// Written via a temporary file and rename.
void save_qcdq(const QuantizedModel& model, const std::string& path);
void save_encodings(const QuantizedModel& model, const std::string& path);

}  // namespace mpq::export_
