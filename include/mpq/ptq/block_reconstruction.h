// Block-wise reconstruction (BRECQ, Li et al. 2021) with learned activation steps (LSQ) and
// QDrop (Wei et al. 2022), for the learned rounding methods.
//
// Blocks. The simulation graph is cut where exactly one activation is live (nothing else
// computed so far is read later), and a cut ends a block when that activation is a residual
// sum (an Add, possibly through ReLU/Clip) or a linear layer's output (an inverted-residual
// projection), or the model's output. ResNet basic blocks and MobileNetV2 inverted-residual
// blocks (with or without the skip) come out as blocks; the stem joins the first block.
//
// Streaming. Blocks run in order on the calibration set while only the current block's inputs
// are held: its quantized-model input Xq (earlier blocks already rounded) and its float-model
// input Xf. The float block maps Xf to the target Yf; the block's rounding variables and the
// step sizes of its activation quantizers are optimised (Adam) so that the quantized block run
// on Xq reproduces Yf, with each activation kept in float with probability `qdrop`. Then the
// hard-rounded block maps Xq to the next block's Xq, and Yf becomes the next Xf. The cost is
// linear in the number of layers, and memory is bounded by one block's inputs and outputs on
// the calibration set (computed in chunks of `chunk` images).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mpq/quant/reconstruction.h"

namespace mpq::ptq {

struct Block {
  int input = -1, output = -1;  // value ids (the simulation and float graphs share them)
  std::vector<size_t> nodes;    // indices into sim.graph().nodes, graph order
  std::vector<size_t> layers;   // indices into sim.layers()
  std::string name;             // "first layer .. last layer"
};

std::vector<Block> find_blocks(const quant::QuantSim& sim);

// Rounds every quantized weight and learns the activation steps of `sim` block by block;
// returns per block {block, layers, nearest_loss, loss, seconds, peak_rss_mb}.
nlohmann::json reconstruct_blocks(quant::QuantSim& sim, const data::Loader& calib,
                                  const quant::ReconstructionOptions& options,
                                  const quant::SoftRoundingFactory& make,
                                  const std::string& label);

}  // namespace mpq::ptq
