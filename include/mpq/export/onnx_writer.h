// Graph -> ONNX file. Attributes keep their ONNX types, so an imported graph writes back as the
// same model. The file is written to a temporary name and renamed, so a failure never leaves a
// half-written model. The result passes onnx::checker (checked before writing).
#pragma once

#include <string>

#include "mpq/ir/graph.h"

namespace mpq::export_ {

// Serialised ModelProto for `graph` (opset graph.opset, metadata from graph.metadata).
std::string to_onnx_bytes(const ir::Graph& graph);
void save_onnx(const ir::Graph& graph, const std::string& path);

}  // namespace mpq::export_
