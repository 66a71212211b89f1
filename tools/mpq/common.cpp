#include "common.h"

#include <fmt/format.h>

#include <filesystem>
#include <iostream>
#include <sstream>

#include "mpq/core/error.h"
#include "mpq/core/progress.h"
#include "mpq/eval/evaluate.h"
#include "mpq/exec/executor.h"
#include "mpq/export/packed.h"
#include "mpq/import/onnx_importer.h"
#include "mpq/ptq/quantize.h"

extern "C" const char mpq_embedded_model[];
extern "C" const char mpq_embedded_model_end[];

namespace mpq::cli {

ir::Graph load_model(const std::string& path) {
  if (!path.empty() && export_::is_packed_file(path)) return export_::load_packed(path);
  if (!path.empty()) return import::load_onnx(path);
  std::string bytes(mpq_embedded_model, mpq_embedded_model_end - mpq_embedded_model);
  return import::parse_onnx(bytes, kEmbeddedName, ".");
}

void DataFlags::add(CLI::App& app, const std::string& what) {
  app.add_option("--data", spec,
                 what +
                     " (cifar10:FILE, idx:IMAGES,LABELS, imagefolder:DIR; "
                     "suffix @N for the first N, @N:SEED for a random N)");
  app.add_option("--resize", resize, "resize the short side to N pixels (bilinear)")
      ->check(CLI::PositiveNumber);
  app.add_option("--crop", crop, "centre crop N x N")->check(CLI::PositiveNumber);
  app.add_option("--mean", mean, "per-channel mean of pixels in [0,1], e.g. 0.5,0.5,0.5")
      ->delimiter(',');
  app.add_option("--std", std, "per-channel std, e.g. 0.5,0.5,0.5")->delimiter(',');
  app.add_option("--batch", batch, "batch size")->check(CLI::PositiveNumber);
}

void add_weight_grid_flag(CLI::App& app, quant::WeightGrid* grid) {
  app.add_option_function<std::string>(
         "--weight-grid",
         [grid](const std::string& v) {
           *grid = v == "full" ? quant::WeightGrid::kFull : quant::WeightGrid::kRestricted;
         },
         "weight integers: 'full' [-2^(b-1), 2^(b-1)-1] (16 levels at 4 bits, as int4 "
         "hardware) or 'restricted' [-(2^(b-1)-1), 2^(b-1)-1] (symmetric, 15 levels)")
      ->check(CLI::IsMember({"full", "restricted"}))
      ->default_str(quant::name(*grid));
}

void QuantFlags::add(CLI::App& app) {
  add_weight_grid_flag(app, &weight_grid);
  auto* plan_opt = app.add_option("--plan", plan, "bit plan JSON (mpq search writes one)");
  auto* w = app.add_option("--w-bits", w_bits, "uniform weight width: 2..8, or 16/32 for float");
  auto* a = app.add_option("--a-bits", a_bits, "uniform activation width (with --w-bits)");
  w->excludes(plan_opt);
  a->excludes(plan_opt);
  app.add_option("--first-last-bits", first_last_bits,
                 "with --w-bits/--a-bits: width of the first and last layer (0: not pinned)")
      ->capture_default_str();
  app.add_option("--calib", calib,
                 "calibration data (same preprocessing as --data; default for the embedded "
                 "model: Fashion-MNIST train)");
  app.add_option("--calib-count", calib_count,
                 "calibration images when the spec has no @N: the first N")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--observer", observer, "activation ranges: minmax, percentile, mse")
      ->capture_default_str();
  app.add_option("--percentile", percentile, "kept percent for --observer percentile")
      ->capture_default_str();
  app.add_option("--weight-observer", weight_observer,
                 "weight scales per channel: mse (optimal clipping) or max")
      ->check(CLI::IsMember({"mse", "max"}))
      ->capture_default_str();
  app.add_option("--rounding", rounding, "weight rounding: " + Registry<ptq::Rounding>::list())
      ->capture_default_str();
  app.add_option("--iters", iters,
                 "adaround/attention: iterations per layer or block (default 1000)")
      ->check(CLI::PositiveNumber);
  app.add_option("--granularity", granularity,
                 "adaround/attention: reconstruct layer by layer, or block by block (residual "
                 "blocks, with learned activation steps)")
      ->check(CLI::IsMember({"layer", "block"}))
      ->capture_default_str();
  app.add_option("--qdrop", qdrop,
                 "with --granularity block: keep each activation in float with this "
                 "probability while reconstructing (QDrop; 0.5 is typical)")
      ->check(CLI::Range(0.0, 0.99))
      ->capture_default_str();
}

allocation::BitPlan QuantFlags::make_plan(const ir::Graph& model,
                                          const std::string& model_path) const {
  std::vector<ir::LayerInfo> layers = exec::quantizable_layers(model);
  allocation::BitPlan p;
  if (!plan.empty()) {
    p = allocation::load_bit_plan(plan);
    allocation::check_plan(p, layers, plan);
  } else {
    MPQ_CHECK(w_bits > 0 && a_bits > 0, ErrorCode::kInvalidArgument,
              "give a bit plan (--plan plan.json) or both --w-bits and --a-bits");
    p = allocation::uniform_plan(layers, w_bits, a_bits, first_last_bits);
  }
  p.model = model_path.empty() ? kEmbeddedName : model_path;
  return p;
}

ptq::QuantizeOptions QuantFlags::options(bool progress) const {
  ptq::QuantizeOptions o;
  o.weight_grid = weight_grid;
  o.calibration.observer = observer;
  o.calibration.observer_options.percentile = percentile;
  o.calibration.weight_mse = weight_observer == "mse";
  o.calibration.progress = progress;
  o.rounding = rounding;
  o.round.progress = progress;
  o.round.iters = iters;
  o.round.granularity = granularity;
  o.round.qdrop = qdrop;
  o.plan_source = plan.empty() ? "--w-bits/--a-bits" : plan;
  return o;
}

pipeline::DataSource QuantFlags::calib_source(const DataFlags& data,
                                              const std::string& model_path) const {
  pipeline::DataSource c = data;
  c.spec = calib;
  if (c.spec.empty() && model_path.empty()) c.spec = kFashionTrain;
  return c;
}

ptq::QuantizedModel QuantFlags::quantize(const ir::Graph& model, const std::string& model_path,
                                         const DataFlags& data, bool progress) const {
  allocation::BitPlan p = make_plan(model, model_path);
  return pipeline::quantize(model, p, calib_source(data, model_path), calib_count,
                            options(progress));
}

int64_t model_file_bytes(const std::string& path) {
  if (path.empty()) return mpq_embedded_model_end - mpq_embedded_model;
  return static_cast<int64_t>(std::filesystem::file_size(path));
}

void check_output_dir(const std::string& path) {
  if (path.empty()) return;
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  MPQ_CHECK(dir.empty() || std::filesystem::is_directory(dir), ErrorCode::kInvalidArgument,
            "-o {}: output directory '{}' does not exist", path, dir.string());
}

void print_json(const nlohmann::json& j) { std::cout << j.dump() << std::endl; }

}  // namespace mpq::cli
