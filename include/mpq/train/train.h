// Training a small ResNet in mpq's own IR, through the executor with autograd: how the
// embedded Fashion-MNIST default (models/fashion_resnet.onnx) is made (`mpq train`).
#pragma once

#include "mpq/data/dataset.h"
#include "mpq/ir/graph.h"

namespace mpq::train {

struct ResNetConfig {
  int64_t in_channels = 1;
  int64_t image_size = 28;
  std::vector<int64_t> widths{16, 32, 64};  // one stage per width; stride 2 from stage 2 on
  int64_t blocks_per_stage = 1;
  int64_t classes = 10;
  uint64_t seed = 0;
};

// conv3x3-BN-ReLU stem, residual stages (two conv3x3-BN per block, 1x1 conv + BN shortcut
// when the shape changes), global average pool, fully connected. BN nodes kept.
ir::Graph build_resnet(const ResNetConfig& config);

struct TrainOptions {
  int64_t epochs = 8;
  int64_t batch_size = 128;
  double lr = 0.1;  // SGD, momentum 0.9, cosine schedule
  double weight_decay = 5e-4;
  uint64_t seed = 0;
  bool augment = true;  // random 2-pixel shifts and horizontal flips
};

struct TrainResult {
  double test_top1 = 0;
  double seconds = 0;
};

TrainResult train(ir::Graph& graph, const data::Loader& train_data, const data::Loader& test_data,
                  const TrainOptions& options);

}  // namespace mpq::train
