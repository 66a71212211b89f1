// mpq compress [MODEL] --data SPEC --calib SPEC --budget ... -o OUTDIR: the whole pipeline,
// pipeline::compress (include/mpq/pipeline/compress.h says what each stage writes). This file
// declares its flags and prints the summary.
#include "mpq/pipeline/compress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <filesystem>

#include "common.h"
#include "mpq/allocation/allocator.h"
#include "mpq/core/progress.h"

namespace mpq::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct Options {
  std::string model;
  pipeline::CompressOptions pipeline;  // what the flags below do not cover
  std::vector<std::string> budgets;    // empty: the pipeline's default
  DataFlags data;
  QuantFlags quant;
  SensitivityFlags sens;
  SspsFlags ssps;
  bool json = false;
};

// The flags as pipeline options; the embedded model's data when no model is given.
pipeline::CompressOptions compress_options(const Options& o) {
  pipeline::CompressOptions c = o.pipeline;
  c.model_name = o.model.empty() ? kEmbeddedName : fs::absolute(o.model).string();
  c.model_file_bytes = model_file_bytes(o.model);
  if (!o.budgets.empty()) c.budgets = o.budgets;
  c.data = o.data;
  if (c.data.spec.empty() && o.model.empty()) c.data.spec = kFashionTest;
  c.calib = o.quant.calib_source(o.data, o.model);
  c.calib_count = o.quant.calib_count;
  c.first_last_bits = o.quant.first_last_bits;
  c.quant = o.quant.options(!o.json);
  c.sensitivity = o.sens.setup(!o.json);
  c.ssps.options = o.ssps.options;
  c.ssps.count = o.ssps.count;
  c.progress = !o.json;
  c.eval_progress = !o.json && isatty(STDERR_FILENO);  // bars on a terminal, not in a log
  return c;
}

void run(const Options& o) {
  set_quiet(o.json);
  ir::Graph model = load_model(o.model);  // a missing or bad file fails first
  nlohmann::json r = pipeline::compress(model, compress_options(o));
  r["model"] = o.model.empty() ? kEmbeddedName : o.model;  // as the user named it
  if (o.json) return print_json(r);
  if (!r.contains("stopped_after")) fmt::print("{}", pipeline::report_text(r));
}

}  // namespace

void add_compress(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "compress",
      "the whole pipeline: sensitivity, allocation, quantization, evaluation, export, report");
  auto o = std::make_shared<Options>();
  pipeline::CompressOptions& p = o->pipeline;  // its defaults are the flags' defaults
  o->quant.rounding = p.quant.rounding;
  o->quant.granularity = p.quant.round.granularity;
  o->quant.qdrop = p.quant.round.qdrop;
  o->sens.options.fallback = p.sensitivity.options.fallback;
  cmd->add_option("model", o->model, "ONNX model (default: the embedded Fashion-MNIST model)");
  o->data.add(*cmd,
              "labelled evaluation data (default for the embedded model: Fashion-MNIST test)");
  o->sens.add(*cmd, /*weight_grid_flag=*/false);  // QuantFlags has it
  o->quant.add(*cmd);
  // compress makes its own plans: the uniform-width and plan flags belong to `quantize`.
  for (const char* name : {"--plan", "--w-bits", "--a-bits"})
    cmd->remove_option(cmd->get_option(name));
  cmd->add_option("--budget", o->budgets,
                  "KIND=VALUE, repeatable: size=60KB, bops=1.2G, energy=40uJ, avg-w-bits=3 "
                  "(default avg-w-bits=4)");
  auto* a_bits = cmd->add_option("--a-bits", p.a_bits, "activation width of every layer")
                     ->capture_default_str();
  cmd->add_option("--a-candidates", p.a_candidates,
                  "let the allocation choose activation widths too, e.g. 2,3,4,8")
      ->delimiter(',')
      ->excludes(a_bits);
  cmd->add_option("--method", p.method,
                  "bit allocation: ilp or proportional (on the sensitivity), or ssps "
                  "(differentiable search on --calib)")
      ->capture_default_str();
  o->ssps.add(*cmd);
  // A fine-tuned model is a different model: `mpq search --method ssps --finetune` writes it.
  for (const char* name : {"--finetune", "--weight-lr"}) cmd->remove_option(cmd->get_option(name));
  cmd->add_option("--baselines", p.baselines,
                  "uniform plans to compare against, same calibration and rounding (nearest at "
                  "8): 'auto' (the widest that fit the budgets and the cheapest above), weight "
                  "widths (at each activation width), W{w}A{a} names, or 'none'")
      ->capture_default_str();
  cmd->add_option("-o,--output", p.out, "output directory (created if missing)")
      ->capture_default_str();
  cmd->add_flag("--resume", p.resume,
                "reuse the stages an earlier run with the same options finished in OUTDIR");
  cmd->add_option("--stop-after", p.stop_after,
                  "stop after this stage (sensitivity, allocation, quantize); --resume goes on");
  cmd->add_flag("--json", o->json, "print one JSON object with the results");
  cmd->callback([o] { run(*o); });
}

}  // namespace mpq::cli
