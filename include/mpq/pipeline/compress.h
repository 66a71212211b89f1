// The whole pipeline as one call: a float model and a budget in, a quantized model, its
// evaluation against uniform plans and a report out, every file in options.out.
//
//   stage        writes (in out)
//   sensitivity  sensitivity.json                       Ω_l(b) of the metric
//   allocation   plan.json                              widths under every budget
//   quantize     model.mpq, model.qcdq.onnx, encodings.json   calibrate, round, export
//   evaluate     evaluation.json, predictions/*.json    float model vs model.mpq on `data`
//   baselines    baselines.json, predictions/*.json     uniform W{w}A{a} the same way
//   report       report.md, report.html                 tables and plots (Vega-Lite, inlined)
//
//   pipeline::CompressOptions o;
//   o.model_name = "resnet20.onnx";  o.data.spec = "cifar10:test.bin";  o.calib.spec = ...;
//   o.budgets = {"avg-w-bits=3"};
//   nlohmann::json results = pipeline::compress(model, o);
//
// out/compress.json records the fingerprint of the options (every option that changes a
// result; fingerprint() below) and each finished stage. With `resume`, a stage is reused when
// its files are there and the fingerprint is the same; the first missing stage and everything
// after it run again. A different fingerprint is an error naming the first option that differs.
//
// The mixed plan is compared with the uniform plans on the same images: the best uniform plan
// that fits every budget and the cheapest one above it, each with the paired difference in top-1
// and its 95 % bootstrap interval (eval/paired.h), in the results and the reports.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mpq/ir/graph.h"
#include "mpq/pipeline/steps.h"

namespace mpq::pipeline {

struct CompressOptions {
  std::string model_name;        // in the reports and the fingerprint (a file: its absolute path)
  int64_t model_file_bytes = 0;  // the float model's file, for the size comparison
  std::string out = "mpq_out";   // the output folder, created if missing

  DataSource data;             // labelled evaluation images
  DataSource calib;            // calibration images; the sensitivity and SSPS read them too
  int64_t calib_count = 1024;  // calibration images when calib's spec has no @N

  std::vector<std::string> budgets = {"avg-w-bits=4"};  // KIND=VALUE (allocation::parse_budget)
  std::string method = "ilp";                           // ilp, proportional or ssps
  int a_bits = 8;                  // every layer's activation width, unless ...
  std::vector<int> a_candidates;   // ... the allocation chooses among these
  int first_last_bits = 8;         // first and last layer pinned at this width (0: not)
  std::string baselines = "auto";  // uniform plans to compare with (parse_baselines)

  SensitivitySetup sensitivity;  // its weight_grid, a_candidates and reconstruction follow quant
  SspsSetup ssps;                // with method "ssps"; candidates and budgets come from above
  ptq::QuantizeOptions quant;    // the PTQ of the mixed plan and of every baseline

  std::string stop_after;  // "", sensitivity, allocation or quantize
  bool resume = false;
  bool progress = true;       // stage lines and progress bars on stderr
  bool eval_progress = true;  // ... and bars for the (short) evaluations

  CompressOptions();  // quant: block-wise Attention Round with QDrop 0.5, output_mse fallback
  std::vector<int> activation_widths() const {
    return a_candidates.empty() ? std::vector<int>{a_bits} : a_candidates;
  }
};

// Every option that changes a result, as JSON: what compress.json keeps and --resume compares.
// Every field of every options struct it is made of is named there (fingerprint.cpp), so a
// field added to one of them fails to compile until it is serialized or left out on purpose.
nlohmann::json fingerprint(const CompressOptions& options);

// Runs (or with `resume`, goes on with) the pipeline; returns the results every report shows:
// model, outdir, config, float / quantized costs, evaluation, baselines, comparison, budgets,
// layers (widths and Ω), stages and peak memory. With `stop_after`, returns after that stage
// with what is known so far ({"stopped_after": stage, ...}).
nlohmann::json compress(const ir::Graph& model, const CompressOptions& options);

// --baselines: "auto", "none", or a comma list of weight widths (each at every activation
// width in `a_widths`) and W{w}A{a} names.
std::vector<allocation::UniformWidths> parse_baselines(const std::string& text,
                                                       const std::vector<int>& a_widths);

// The report from compress's results, in three renderings of the same rows: the terminal summary
// (report_text), and what compress writes: Markdown, and one self-contained HTML page with
// Vega-Lite plots (Vega, Vega-Lite and vega-embed are linked into the library and inlined, so
// the page opens offline). The page renders with renderer "svg"; when every plot has rendered
// it sets data-plots (how many) and data-errors (console errors seen) on <body> and in #status.
std::string report_text(const nlohmann::json& results);
std::string report_markdown(const nlohmann::json& results);
std::string report_html(const nlohmann::json& results);

}  // namespace mpq::pipeline
