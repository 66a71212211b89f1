// Top-1 / top-5 of a Graph over a data set, batch by batch, with a progress bar.
#pragma once

#include <ATen/ATen.h>

#include "mpq/data/dataset.h"
#include "mpq/ir/graph.h"

namespace mpq::eval {

struct EvalOptions {
  bool progress = true;
  bool keep_logits = false;
};

struct EvalResult {
  double top1 = 0, top5 = 0;  // percent
  int64_t images = 0;
  double seconds = 0;            // wall time, data loading included
  double model_seconds = 0;      // time in the executor only
  double images_per_second = 0;  // images / model_seconds
  at::Tensor predictions;        // int64 [images], argmax per image in loader order
  at::Tensor labels;             // int64 [images], the data's labels in the same order
  at::Tensor logits;             // [images, classes] when keep_logits
};

// Checks that images of `image_shape` ([C, H, W]) fit the model's declared input; the message
// names the model input, both shapes, and what to pass instead.
void check_image_shape(const ir::Graph& graph, at::IntArrayRef image_shape,
                       const std::string& data_where);
// Checks the first image of `loader` (resized and cropped, before normalisation).
void check_data_fits(const ir::Graph& graph, const data::Dataset& dataset,
                     const data::Loader& loader, const data::Preprocess& preprocess,
                     const std::string& data_where);
// Checks that `batch` fits the model's input and its labels the model's output classes.
void check_batch(const ir::Graph& graph, const data::Batch& batch, int64_t classes,
                 const std::string& data_where);

EvalResult evaluate(const ir::Graph& graph, const data::Loader& loader, const EvalOptions& options);

}  // namespace mpq::eval
