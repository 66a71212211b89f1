// mpq quantize MODEL (--plan P.json | --w-bits B --a-bits B) --calib SPEC -o OUT: calibrate,
// round, print the per-layer table and sizes, and write OUT.mpq (packed), OUT.qcdq.onnx,
// OUT.encodings.json and OUT.plan.json. With --data, also evaluates float and quantized.
#include <fmt/format.h>

#include <chrono>
#include <filesystem>

#include "common.h"
#include "mpq/core/error.h"
#include "mpq/core/memory.h"
#include "mpq/core/progress.h"
#include "mpq/eval/evaluate.h"
#include "mpq/export/packed.h"
#include "mpq/export/quantized.h"

namespace mpq::cli {
namespace {

std::string output_prefix(const std::string& out, const std::string& model_path) {
  std::string prefix = out;
  if (prefix.empty()) {
    std::string stem =
        model_path.empty() ? "fashion_resnet" : std::filesystem::path(model_path).stem().string();
    prefix = stem + "_quantized";
  }
  for (const char* ext : {".mpq", ".onnx"})
    if (prefix.size() > std::strlen(ext) &&
        prefix.compare(prefix.size() - std::strlen(ext), std::string::npos, ext) == 0)
      prefix.resize(prefix.size() - std::strlen(ext));
  check_output_dir(prefix);
  return prefix;
}

std::string range_text(double lo, double hi) { return fmt::format("{:.3g}..{:.3g}", lo, hi); }

}  // namespace

void add_quantize(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "quantize", "calibrate and quantize a model to a bit plan; write .mpq, QCDQ ONNX, encodings");
  struct Opts {
    std::string model, out;
    DataFlags data;
    QuantFlags quant;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("model", o->model, "ONNX model (default: the embedded Fashion-MNIST model)");
  o->quant.add(*cmd);
  o->data.add(*cmd, "evaluation data for float vs quantized top-1 (optional)");
  cmd->add_option("-o,--output", o->out,
                  "output prefix: writes PREFIX.mpq, PREFIX.qcdq.onnx, PREFIX.encodings.json, "
                  "PREFIX.plan.json (default: MODEL_quantized)");
  cmd->add_flag("--json", o->json, "print one JSON object with the results");
  cmd->callback([o] {
    set_quiet(o->json);
    std::string prefix = output_prefix(o->out, o->model);
    ir::Graph model = load_model(o->model);
    if (!o->quant.given() && o->model.empty()) {
      o->quant.w_bits = 4;  // the embedded default's demo: W4A8
      o->quant.a_bits = 8;
    }
    ptq::QuantizedModel quantized = o->quant.quantize(model, o->model, o->data, !o->json);
    const quant::QuantSim& sim = quantized.sim;
    export_::PackedInfo packed =
        pipeline::save_quantized(sim, pipeline::ExportPaths::with_prefix(prefix));
    allocation::save_bit_plan(sim.plan(), prefix + ".plan.json");

    int64_t float_bytes = o->model.empty() ? 0 : std::filesystem::file_size(o->model);
    int64_t payload = 0;
    for (const auto& t : packed.tensors) payload += t.bytes;
    std::vector<ir::LayerInfo> infos;
    for (const auto& l : sim.layers()) infos.push_back(l.info);
    nlohmann::json layers = nlohmann::json::array();
    for (size_t i = 0; i < sim.layers().size(); ++i) {
      const quant::QuantLayer& l = sim.layers()[i];
      nlohmann::json j{{"name", l.info.name},
                       {"w_bits", l.w_bits},
                       {"a_bits", l.a_bits},
                       {"params", l.info.params},
                       {"weight_mse", l.weight_mse}};
      if (l.quantizes_weight()) {
        at::Tensor s = sim.weight_scale(i);
        j["weight_scale"] = {s.min().item<double>(), s.max().item<double>()};
      }
      if (l.quantizes_input()) j["input_range"] = {l.encoding.min, l.encoding.max};
      layers.push_back(j);
    }
    nlohmann::json result{{"model", sim.plan().model},
                          {"outputs",
                           {{"mpq", prefix + ".mpq"},
                            {"qcdq", prefix + ".qcdq.onnx"},
                            {"encodings", prefix + ".encodings.json"},
                            {"plan", prefix + ".plan.json"}}},
                          {"layers", layers},
                          {"avg_w_bits", allocation::average_w_bits(sim.plan(), infos)},
                          {"mpq_bytes", packed.file_bytes},
                          {"weight_bytes", payload},
                          {"float_onnx_bytes", float_bytes},
                          {"seconds", quantized.seconds},
                          {"calibration_seconds", quantized.calibration_seconds},
                          {"rounding", ptq::to_json(quantized.rounding)},
                          {"peak_rss_mb", peak_rss_mb()}};
    if (!o->data.spec.empty() || o->model.empty()) {
      if (o->data.spec.empty()) o->data.spec = kFashionTest;
      Data d = open_data(o->data, model);
      log_line(fmt::format("evaluating float and quantized on {} ({} images)", d.spec.text,
                           d.loader->size()));
      eval::EvalResult f = eval::evaluate(sim.float_graph(), *d.loader, {!o->json, false});
      eval::EvalResult q = eval::evaluate(sim.frozen(), *d.loader, {!o->json, false});
      int64_t same = q.predictions.eq(f.predictions).sum().item<int64_t>();
      result["data"] = d.spec.text;
      result["float_top1"] = f.top1;
      result["top1"] = q.top1;
      result["agreement"] = 100.0 * same / static_cast<double>(f.images);
    }
    if (o->json) {
      print_json(result);
      return;
    }
    size_t width = 5;
    for (const auto& l : sim.layers()) width = std::max(width, l.info.name.size());
    fmt::print("{:<{}}  {:>2} {:>2}  {:>9}  {:>19}  {:>21}  {:>10}\n", "layer", width, "W", "A",
               "params", "weight scale", "input range", "weight MSE");
    for (size_t i = 0; i < sim.layers().size(); ++i) {
      const auto& j = layers[i];
      const quant::QuantLayer& l = sim.layers()[i];
      std::string ws = j.contains("weight_scale")
                           ? range_text(j["weight_scale"][0], j["weight_scale"][1])
                           : "float";
      std::string in = l.quantizes_input()
                           ? fmt::format("{}{}", l.encoding.is_unsigned ? "u " : "s ",
                                         range_text(l.encoding.min, l.encoding.max))
                           : "float";
      fmt::print("{:<{}}  {:>2} {:>2}  {:>9}  {:>19}  {:>21}  {:>10.3g}\n", l.info.name, width,
                 l.w_bits, l.a_bits, l.info.params, ws, in, l.weight_mse);
    }
    fmt::print("\naverage weight width {:.3f} bits\n", result["avg_w_bits"].get<double>());
    fmt::print("calibration and rounding {:.1f} s, peak memory {:.0f} MB\n", quantized.seconds,
               result["peak_rss_mb"].get<double>());
    fmt::print(
        "packed model {}: {} bytes = weights {} + overhead {} (header 64, graph {}, table {})\n",
        prefix + ".mpq", packed.file_bytes, payload, packed.file_bytes - payload,
        packed.header.graph_bytes, packed.header.table_bytes);
    if (float_bytes > 0)
      fmt::print("float ONNX {} bytes: {:.2f}x smaller\n", float_bytes,
                 static_cast<double>(float_bytes) / static_cast<double>(packed.file_bytes));
    if (result.contains("top1"))
      fmt::print("top-1 on {}: float {:.2f}%  quantized {:.2f}%  (same prediction on {:.2f}%)\n",
                 result["data"].get<std::string>(), result["float_top1"].get<double>(),
                 result["top1"].get<double>(), result["agreement"].get<double>());
    fmt::print("wrote {}.mpq, {}.qcdq.onnx, {}.encodings.json, {}.plan.json\n", prefix, prefix,
               prefix, prefix);
  });
}

}  // namespace mpq::cli
