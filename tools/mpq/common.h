// What the subcommands share: loading a model (a path, or the embedded default), the data
// flags (--data, --resize, --crop, --mean, --std, --batch), and printing results.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "mpq/allocation/allocator.h"
#include "mpq/data/dataset.h"
#include "mpq/ir/graph.h"
#include "mpq/ptq/quantize.h"
#include "mpq/quant/quant_sim.h"
#include "mpq/search/ssps.h"
#include "mpq/sensitivity/metric.h"

namespace mpq::cli {

// Fashion-MNIST from the Debian package dataset-fashion-mnist: the embedded default's data.
inline constexpr const char* kFashionTest =
    "idx:/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz,"
    "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz";
inline constexpr const char* kFashionTrain =
    "idx:/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz,"
    "/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz";
inline constexpr const char* kEmbeddedName = "embedded:fashion_resnet.onnx";

// MODEL may be empty: the embedded Fashion-MNIST model. A packed .mpq file loads as its
// QCDQ graph.
ir::Graph load_model(const std::string& path);

struct DataFlags {
  std::string spec;
  int64_t resize = -1, crop = -1;  // -1: default
  std::vector<double> mean, std;
  int64_t batch = 128;

  void add(CLI::App& app, const std::string& what);
  // Preprocessing: these flags, else the model's metadata (mpq.mean / mpq.std), else the
  // defaults of the data's kind.
  data::Preprocess preprocess(const ir::Graph& model, const std::string& kind) const;
};

struct Data {
  data::DataSpec spec;
  std::unique_ptr<data::Dataset> dataset;
  std::unique_ptr<data::Loader> loader;
};
// `first`: when the spec has no @N, use only its first `first` images (0: all of them).
Data open_data(const DataFlags& flags, const ir::Graph& model, int64_t first = 0);

// The quantization flags `quantize` and `eval --plan` share: the plan (a file or uniform
// widths), calibration data (with the --data preprocessing flags), observer and rounding.
struct QuantFlags {
  std::string plan;
  int w_bits = 0, a_bits = 0;  // 0: not given
  int first_last_bits = 8;
  std::string calib;
  int64_t calib_count = 1024;
  std::string observer = "mse";
  double percentile = 99.99;
  std::string weight_observer = "mse";
  std::string rounding = "nearest";
  int64_t iters = 0;  // learned rounding: iterations per layer (0: the method's default)
  std::string granularity = "layer";
  double qdrop = 0;

  void add(CLI::App& app);
  bool given() const { return !plan.empty() || w_bits > 0 || a_bits > 0; }
  // The plan for `model` from --plan or --w-bits/--a-bits.
  allocation::BitPlan make_plan(const ir::Graph& model, const std::string& model_path) const;
  ptq::QuantizeOptions options(bool progress) const;
  // Opens the calibration set and runs ptq::quantize; `model_path` empty = the embedded model.
  ptq::QuantizedModel quantize(const ir::Graph& model, const std::string& model_path,
                               const DataFlags& data, bool progress) const;
};

// The flags `sensitivity`, `search` and `compress` share to run a metric.
struct SensitivityFlags {
  std::string metric = "bn_scale";
  sensitivity::Options options;
  std::string labels = "data";
  int64_t data_count = 0;  // 0: the metric's default

  void add(CLI::App& app);
  // Opens the data when the metric needs it (the first --data-count images) and runs it.
  sensitivity::Report run(const ir::Graph& model, const std::string& model_path, DataFlags data,
                          bool progress) const;
};
void print_report(const sensitivity::Report& report);

// The SSPS options `search --method ssps` and `compress --method ssps` share.
struct SspsFlags {
  search::SspsOptions options;
  int64_t count = 1024;  // search images when the spec has no @N

  void add(CLI::App& app);
  // Runs the search on `data` (default for the embedded model: Fashion-MNIST train).
  search::SspsResult run(const ir::Graph& model, const std::string& model_path, DataFlags data,
                         const allocation::CostModel& costs,
                         const std::vector<allocation::Budget>& budgets, int first_last_bits,
                         const std::vector<int>& w_candidates, const std::vector<int>& a_candidates,
                         bool labels_from_model, bool progress) const;
};

// The allocation problem `search` and `compress` solve: the report's widths for weights,
// `a_candidates` for activations, every budget, first and last layer pinned (0: not).
allocation::Problem make_problem(const sensitivity::Report& report,
                                 const allocation::CostModel& costs,
                                 const std::vector<allocation::Budget>& budgets,
                                 const std::vector<int>& a_candidates, int first_last_bits);

// Bytes of the model file (the embedded model's when `path` is empty).
int64_t model_file_bytes(const std::string& path);

// Fails (before any long work) when PATH's directory does not exist.
void check_output_dir(const std::string& path);

// Prints `j` on stdout as one line.
void print_json(const nlohmann::json& j);

// Subcommands, one file each.
void add_inspect(CLI::App& app);
void add_eval(CLI::App& app);
void add_compare(CLI::App& app);
void add_train(CLI::App& app);
void add_quantize(CLI::App& app);
void add_sensitivity(CLI::App& app);
void add_search(CLI::App& app);
void add_compress(CLI::App& app);

}  // namespace mpq::cli
