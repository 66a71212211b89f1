// Graph rewrites, one file each under src/ir/passes/.
#pragma once

#include "mpq/ir/graph.h"

namespace mpq::ir {

// Evaluates every node whose inputs are all constants (Constant nodes, shape arithmetic on
// constants, ...) and replaces it by initializers. Returns the number of nodes folded.
int fold_constants(Graph& graph);

// Folds each BatchNormalization that is the only reader of a Conv's output into that Conv:
// W' = W·γ/√(σ²+ε) per output channel, b' = (b − μ)·γ/√(σ²+ε) + β. Returns the number folded.
int fold_batch_norm(Graph& graph);

// Folds a constant zero Pad of the spatial dims whose only reader is a Conv into that Conv's
// `pads` (PyTorch's export of TF "SAME" padding, as in mobilenetv2.onnx). Returns the number.
int fold_pad_into_conv(Graph& graph);

}  // namespace mpq::ir
