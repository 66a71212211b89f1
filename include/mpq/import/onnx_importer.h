// ONNX -> Graph.
//
// 1. Parse the protobuf (clear errors for non-ONNX, truncated and missing files).
// 2. Initializers become at::Tensor (raw or typed fields; external data read relative to the
//    model's folder, with an error naming the tensor and the missing file).
// 3. Every node's op must be registered (src/import/onnx/ops/<op>.cpp) and pass its check().
// 4. Topological sort, constant folding (Constant nodes and shape-computing subgraphs such as
//    Shape/Gather/ConstantOfShape/Concat feeding Pad or Reshape), dead-code removal.
#pragma once

#include <string>

#include "mpq/ir/graph.h"

namespace mpq::import {

struct ImportOptions {
  bool fold_constants = true;
};

ir::Graph load_onnx(const std::string& path, const ImportOptions& options = {});

// Parses a serialised ModelProto; `source` names it in errors, external data is looked up in
// `base_dir`.
ir::Graph parse_onnx(const std::string& bytes, const std::string& source,
                     const std::string& base_dir, const ImportOptions& options = {});

}  // namespace mpq::import
