// Blocks for block-wise reconstruction (BRECQ, Li et al. 2021).
//
// The simulation graph is cut where exactly one activation is live (nothing else computed so
// far is read later), and a cut ends a block when that activation is a residual sum (an Add,
// possibly through ReLU/Clip) or a linear layer's output (an inverted-residual projection), or
// the model's output. ResNet basic blocks and MobileNetV2 inverted-residual blocks (with or
// without the skip) come out as blocks; the stem joins the first block. Where nothing else ends
// one, a block ends at a single live activation once it has 3 layers, so plain CNNs (MobileNetV1,
// VGG-style stacks) are cut into blocks too.
//
// A block (or a single layer: layer_units) becomes a Graph of its own with input "x" (build):
// float (the target), training (soft weights and learnable steps) or hard (as rounded).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "mpq/quant/quant_sim.h"

namespace mpq::ptq {

struct Block {
  int input = -1, output = -1;  // value ids (the simulation and float graphs share them)
  std::vector<size_t> nodes;    // indices into sim.graph().nodes, graph order
  std::vector<size_t> layers;   // indices into sim.layers()
  std::string name;             // "first layer .. last layer"
};

std::vector<Block> find_blocks(const quant::QuantSim& sim);

// One unit per layer that quantizes its weight: the layer node alone, its input the layer's
// (already quantized) input.
std::vector<Block> layer_units(const quant::QuantSim& sim);

//   kFloat: quantizers bypassed, float weights (the target).
//   kTrain: weights are values set before every step (soft-rounded); activation quantizers
//           read learnable step sizes and drop with probability `qdrop`.
//   kHard:  the simulation's nodes as they are (after rounding).
enum class BlockMode { kFloat, kTrain, kHard };

struct BlockGraph {
  ir::Graph graph;
  std::map<size_t, int> weight;       // layer -> value holding its (soft) weight   (kTrain)
  std::map<size_t, int> input_scale;  // layer -> value holding its step size       (kTrain)
};

BlockGraph build_block(const quant::QuantSim& sim, const Block& b, BlockMode mode, double qdrop);

}  // namespace mpq::ptq
