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
#include "mpq/pipeline/steps.h"
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

// --data, --resize, --crop, --mean, --std and --batch: a pipeline::DataSource.
struct DataFlags : pipeline::DataSource {
  void add(CLI::App& app, const std::string& what);
};

using Data = pipeline::OpenedData;
using pipeline::open_data;

// The quantization flags `quantize` and `eval --plan` share: the plan (a file or uniform
// widths), calibration data (with the --data preprocessing flags), observer and rounding.
// --weight-grid full|restricted into `grid`.
void add_weight_grid_flag(CLI::App& app, quant::WeightGrid* grid);

struct QuantFlags {
  std::string plan;
  quant::WeightGrid weight_grid = quant::kDefaultWeightGrid;
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
  // The calibration data: --calib with the --data preprocessing flags (default for the embedded
  // model, `model_path` empty: Fashion-MNIST train).
  pipeline::DataSource calib_source(const DataFlags& data, const std::string& model_path) const;
  // Runs pipeline::quantize on the plan and the calibration data.
  ptq::QuantizedModel quantize(const ir::Graph& model, const std::string& model_path,
                               const DataFlags& data, bool progress) const;
};

// The flags `sensitivity`, `search` and `compress` share to run a metric.
struct SensitivityFlags {
  std::string metric = "bn_scale";
  sensitivity::Options options;
  std::string labels = "data";
  int64_t data_count = 0;  // 0: the metric's default

  // `weight_grid_flag` false: the command takes --weight-grid from its QuantFlags.
  void add(CLI::App& app, bool weight_grid_flag = true);
  pipeline::SensitivitySetup setup(bool progress) const;
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

using pipeline::make_problem;

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
