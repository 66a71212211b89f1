// The pipeline's steps with their data, as mpq's commands and pipeline::compress run them: open
// a data set the way the user named it, measure sensitivity, search with SSPS, quantize.
//
//   pipeline::DataSource calib{"cifar10:calib_train_5085.bin"};
//   ptq::QuantizedModel q = pipeline::quantize(model, plan, calib, 1024, options);
//
// Each step opens only the images it needs (the first N of the spec unless it has its own @N)
// and checks that they fit the model before any long work.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "mpq/allocation/allocator.h"
#include "mpq/data/dataset.h"
#include "mpq/export/packed.h"
#include "mpq/ir/graph.h"
#include "mpq/ptq/quantize.h"
#include "mpq/search/ssps.h"
#include "mpq/sensitivity/metric.h"

namespace mpq::pipeline {

// A data set as the user names it: a spec (cifar10:FILE, idx:IMAGES,LABELS, imagefolder:DIR,
// with @N or @N:SEED) and the preprocessing asked for.
struct DataSource {
  std::string spec;
  int64_t resize = -1, crop = -1;  // -1: the model's metadata, else the data kind's default
  std::vector<double> mean, std;   // empty: likewise
  int64_t batch = 128;
};

struct OpenedData {
  data::DataSpec spec;
  std::unique_ptr<data::Dataset> dataset;
  std::unique_ptr<data::Loader> loader;
};

// The preprocessing of `source` for `model`: what the source asks for, else the model's
// metadata (mpq.mean / mpq.std), else the defaults of the data's kind.
data::Preprocess preprocess_for(const DataSource& source, const ir::Graph& model,
                                const std::string& kind);

// Opens `source` for `model` and checks its first image fits. `first` > 0: when the spec has no
// @N, only its first `first` images.
OpenedData open_data(const DataSource& source, const ir::Graph& model, int64_t first = 0);

// A sensitivity metric with its options and how many images it reads.
struct SensitivitySetup {
  std::string metric = "bn_scale";
  sensitivity::Options options;
  int64_t count = 0;  // images when the spec has no @N; 0: the metric's default (imprint 1024,
                      // the others 256)
};

// Runs the metric, opening `data` only when it (or its fallback) needs images.
sensitivity::Report measure_sensitivity(const ir::Graph& model, const SensitivitySetup& setup,
                                        const DataSource& data);

// SSPS with how many images it searches on.
struct SspsSetup {
  search::SspsOptions options;
  int64_t count = 1024;  // search images when the spec has no @N
};

// Checks the options against the budgets (before reading data), then searches on `data`.
search::SspsResult search_ssps(const ir::Graph& model, const SspsSetup& setup,
                               const DataSource& data, const allocation::CostModel& costs,
                               const std::vector<allocation::Budget>& budgets);

// Post-training quantization of `model` to `plan` on the first `calib_count` images of `calib`.
ptq::QuantizedModel quantize(const ir::Graph& model, const allocation::BitPlan& plan,
                             const DataSource& calib, int64_t calib_count,
                             const ptq::QuantizeOptions& options);

// The files a quantized model is deployed from: the packed model (mpq run, mpq eval), the QCDQ
// ONNX model (ONNX Runtime and other ONNX toolchains) and the AIMET-style encodings.
struct ExportPaths {
  std::string mpq, qcdq, encodings;
  static ExportPaths with_prefix(const std::string& prefix) {  // PREFIX.mpq, PREFIX.qcdq.onnx, ...
    return {prefix + ".mpq", prefix + ".qcdq.onnx", prefix + ".encodings.json"};
  }
};
export_::PackedInfo save_quantized(const quant::QuantSim& sim, const ExportPaths& paths);

// The allocation problem: the report's widths for weights, `a_candidates` for activations,
// every budget, first and last layer pinned at `first_last_bits` (0: not pinned).
allocation::Problem make_problem(const sensitivity::Report& report,
                                 const allocation::CostModel& costs,
                                 const std::vector<allocation::Budget>& budgets,
                                 const std::vector<int>& a_candidates, int first_last_bits);

}  // namespace mpq::pipeline
