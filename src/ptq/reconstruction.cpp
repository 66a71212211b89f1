#include "mpq/ptq/reconstruction.h"

#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/InferenceMode.h>
#include <torch/optim/adam.h>

#include <chrono>

#include "mpq/core/error.h"
#include "mpq/core/memory.h"
#include "mpq/core/progress.h"
#include "mpq/exec/executor.h"
#include "mpq/ptq/blocks.h"

namespace mpq::ptq {
namespace {

using quant::QuantSim;

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// Runs `graph` over `x` in chunks without autograd; the result stays usable with autograd.
// Images stay channels-last (oneDNN's fast layout, forward and backward), as cached.
at::Tensor run_chunks(const ir::Graph& graph, const at::Tensor& x, int64_t chunk) {
  at::NoGradGuard no_grad;
  exec::Executor e(graph);
  std::vector<at::Tensor> parts;
  for (int64_t i = 0; i < x.size(0); i += chunk)
    parts.push_back(e.forward(x.slice(0, i, std::min(i + chunk, x.size(0)))));
  return at::cat(parts);
}

// The images `idx` of a cached tensor, in its layout (a channels-last cache gives a
// channels-last batch without a second copy).
at::Tensor rows(const at::Tensor& x, const at::Tensor& idx) {
  if (x.dim() == 4 && !x.is_contiguous() && x.is_contiguous(at::MemoryFormat::ChannelsLast))
    return x.permute({0, 2, 3, 1}).index_select(0, idx).permute({0, 3, 1, 2});
  return x.index_select(0, idx);
}

// Squared output error per image, averaged (any layout: no flattening copy).
at::Tensor squared_error(const at::Tensor& out, const at::Tensor& y) {
  std::vector<int64_t> dims;
  for (int64_t d = 1; d < out.dim(); ++d) dims.push_back(d);
  at::Tensor e = (out - y).square();
  return (dims.empty() ? e : e.sum(dims)).mean();
}

double unit_loss(const at::Tensor& out, const at::Tensor& y) {
  return squared_error(out, y).item<double>();
}

// What one unit's reconstruction needs and gives back.
struct UnitRun {
  const Block& unit;
  const at::Tensor& xq;  // the unit's input in the quantized model (calibration set)
  const at::Tensor& yf;  // its output in the float model
  at::Tensor next;       // out: the rounded unit's output on xq
};

class Engine {
 public:
  Engine(QuantSim& sim, const ReconstructionOptions& options, const SoftRoundingFactory& make,
         const std::string& method)
      : sim_(sim),
        options_(options),
        make_(make),
        method_(method),
        gen_(at::make_generator<at::CPUGeneratorImpl>(0)) {}

  // Optimises the unit's rounding (and steps), keeps nearest if that ends worse.
  UnitReport run(UnitRun& u, const std::string& position) {
    auto start = std::chrono::steady_clock::now();
    UnitReport report;
    report.name = u.unit.name;
    for (size_t l : u.unit.layers) report.layers.push_back(sim_.layers()[l].info.name);
    std::vector<size_t> learned;
    for (size_t l : u.unit.layers)
      if (sim_.layers()[l].quantizes_weight()) learned.push_back(l);
    if (!u.next.defined()) u.next = hard_output(u);
    report.nearest_loss = report.loss = unit_loss(u.next, u.yf);
    if (!learned.empty() && options_.iters > 0) {
      u.next = at::Tensor();  // recomputed after training; memory for the training meanwhile
      // What the unit is now (nearest rounding, calibrated steps), to go back to.
      std::vector<at::Tensor> nearest_ints;
      for (size_t l : learned) nearest_ints.push_back(sim_.weight_integers(l));
      std::map<size_t, std::pair<at::Tensor, quant::Encoding>> calibrated;
      for (size_t l : u.unit.layers)
        if (sim_.layers()[l].quantizes_input())
          calibrated[l] = {sim_.graph().initializer(sim_.layers()[l].input_scale).clone(),
                           sim_.layers()[l].encoding};
      train(u, learned, position, report.nearest_loss);
      report.iters = options_.iters;
      u.next = hard_output(u);
      report.loss = unit_loss(u.next, u.yf);
      if (report.loss > report.nearest_loss) {
        if (options_.progress)
          log_line(
              fmt::format("{} {}: worse than nearest rounding on the calibration set; "
                          "keeping nearest",
                          method_, u.unit.name));
        for (size_t j = 0; j < learned.size(); ++j)
          sim_.set_weight_integers(learned[j], nearest_ints[j]);
        for (auto& [l, saved] : calibrated) {
          sim_.graph().initializer(sim_.layers()[l].input_scale) = saved.first;
          sim_.layers()[l].encoding = saved.second;
        }
        u.next = hard_output(u);
        report.loss = unit_loss(u.next, u.yf);
        report.kept_nearest = true;
      }
    }
    report.seconds = seconds_since(start);
    report.peak_rss_mb = peak_rss_mb();
    if (options_.progress)
      log_line(fmt::format("{} {} {}: loss {:.4g} -> {:.4g}, {:.1f} s, peak RSS {:.0f} MB", method_,
                           position, u.unit.name, report.nearest_loss, report.loss, report.seconds,
                           report.peak_rss_mb));
    return report;
  }

 private:
  // The unit as the simulation now has it, run on its quantized-model input.
  at::Tensor hard_output(const UnitRun& u) const {
    return run_chunks(build_block(sim_, u.unit, BlockMode::kHard, 0).graph, u.xq, options_.chunk);
  }

  // Adam on the soft rounding of `learned` and the unit's activation steps; the hard integers
  // and the learned steps go into the simulation.
  void train(const UnitRun& u, const std::vector<size_t>& learned, const std::string& position,
             double nearest_loss) {
    BlockGraph g = build_block(sim_, u.unit, BlockMode::kTrain, options_.qdrop);
    std::vector<at::Tensor> v, scale;
    std::vector<std::unique_ptr<SoftRounding>> rounding;
    for (size_t l : learned) {
      const quant::QuantLayer& layer = sim_.layers()[l];
      at::Tensor s =
          quant::along(sim_.weight_scale(l).clone(), layer.axis, sim_.float_weight(l).dim());
      rounding.push_back(make_());
      v.push_back(rounding.back()
                      ->init(sim_.float_weight(l) / s, layer.weight_range())
                      .detach()
                      .requires_grad_(true));
      scale.push_back(s);
    }
    std::vector<size_t> stepped;  // layers whose input step is learned
    std::vector<at::Tensor> steps;
    if (options_.act_lr > 0) {
      for (auto& [l, id] : g.input_scale) {
        stepped.push_back(l);
        steps.push_back(g.graph.initializer(id).requires_grad_(true));
      }
    }
    std::vector<torch::optim::OptimizerParamGroup> groups;
    groups.emplace_back(v, std::make_unique<torch::optim::AdamOptions>(options_.lr));
    if (!steps.empty())
      groups.emplace_back(steps, std::make_unique<torch::optim::AdamOptions>(options_.act_lr));
    torch::optim::Adam adam(groups);

    exec::Executor e(g.graph);
    Progress bar(fmt::format("{} {} {}", method_, position, u.unit.name), options_.iters,
                 options_.progress);
    const int64_t n = u.xq.size(0), batch = std::min(options_.batch, n);
    for (int64_t it = 0; it < options_.iters; ++it) {
      double t = static_cast<double>(it) / static_cast<double>(options_.iters);
      at::Tensor idx = at::randint(n, {batch}, gen_, at::kLong);
      for (size_t j = 0; j < learned.size(); ++j)
        g.graph.initializer(g.weight.at(learned[j])) = rounding[j]->soft(v[j], t) * scale[j];
      at::Tensor out = e.forward(rows(u.xq, idx));
      at::Tensor rec = squared_error(out, rows(u.yf, idx));
      at::Tensor loss = rec;
      for (size_t j = 0; j < learned.size(); ++j) loss = loss + rounding[j]->regularizer(v[j], t);
      adam.zero_grad();
      loss.backward();
      adam.step();
      {
        at::NoGradGuard no_grad;
        for (at::Tensor& s : steps) s.clamp_min_(1e-8);
      }
      bar.advance(1, fmt::format("loss {:.4g} (nearest {:.4g})", rec.item<double>(), nearest_loss));
    }
    bar.finish();
    at::NoGradGuard no_grad;
    for (size_t j = 0; j < learned.size(); ++j)
      sim_.set_weight_integers(learned[j], rounding[j]->hard(v[j].detach()));
    for (size_t j = 0; j < stepped.size(); ++j) {
      quant::QuantLayer& layer = sim_.layers()[stepped[j]];
      at::Tensor s = steps[j].detach().clone();
      sim_.graph().initializer(layer.input_scale) = s;
      quant::IntRange r = quant::activation_range(layer.a_bits);
      layer.encoding.scale = s.item<double>();
      layer.encoding.min =
          layer.encoding.scale * static_cast<double>(r.qmin - layer.encoding.zero_point);
      layer.encoding.max =
          layer.encoding.scale * static_cast<double>(r.qmax - layer.encoding.zero_point);
    }
  }

  QuantSim& sim_;
  const ReconstructionOptions& options_;
  const SoftRoundingFactory& make_;
  std::string method_;
  at::Generator gen_;
};

at::Tensor calibration_images(const data::Loader& calib) {
  std::vector<at::Tensor> images;
  for (int64_t b = 0; b < calib.batches(); ++b) images.push_back(calib.batch(b).images);
  at::Tensor x = at::cat(images);
  return x.dim() == 4 ? x.contiguous(at::MemoryFormat::ChannelsLast) : x;
}

// Blocks in order, streaming their inputs.
void run_blocks(Engine& engine, QuantSim& sim, const data::Loader& calib,
                const ReconstructionOptions& options, RoundingReport& report) {
  std::vector<Block> blocks = find_blocks(sim);
  at::Tensor xq = calibration_images(calib), xf = xq;
  // Blocks after the last one with weights to round change nothing in `sim`: stop there.
  size_t end = 0;
  for (size_t k = 0; k < blocks.size(); ++k)
    for (size_t l : blocks[k].layers)
      if (sim.layers()[l].quantizes_weight()) end = k + 1;
  for (size_t k = 0; k < end; ++k) {
    const Block& b = blocks[k];
    at::Tensor yf = run_chunks(build_block(sim, b, BlockMode::kFloat, 0).graph, xf, options.chunk);
    UnitRun u{b, xq, yf, {}};
    // A float block on a still-float input: its output is the float output (the sensitivity
    // probes, with one layer quantized, start with a float prefix).
    bool quantized = false;
    for (size_t l : b.layers)
      quantized |= sim.layers()[l].quantizes_weight() || sim.layers()[l].quantizes_input();
    if (!quantized && xq.is_same(xf)) u.next = yf;
    report.units.push_back(engine.run(u, fmt::format("block {}/{}", k + 1, blocks.size())));
    xq = u.next;
    xf = yf;
  }
}

// Layers in graph order, each one's inputs from the model run up to it.
void run_layers(Engine& engine, QuantSim& sim, const data::Loader& calib, RoundingReport& report) {
  std::vector<Block> units = layer_units(sim);
  for (size_t k = 0; k < units.size(); ++k) {
    const Block& unit = units[k];
    int f_out = sim.float_graph()
                    .nodes[static_cast<size_t>(sim.layers()[unit.layers[0]].info.node)]
                    .outputs[0];
    std::vector<at::Tensor> xs, ys;
    {
      c10::InferenceMode guard;
      ir::Graph frozen = sim.frozen();
      exec::Executor qe(frozen), fe(sim.float_graph());
      qe.set_hook({unit.input},
                  [&](int, const at::Tensor& t) { xs.push_back(t.contiguous().clone()); });
      fe.set_hook({f_out}, [&](int, const at::Tensor& t) { ys.push_back(t.contiguous().clone()); });
      for (int64_t b = 0; b < calib.batches(); ++b) {
        data::Batch batch = calib.batch(b);
        qe.forward(batch.images);
        fe.forward(batch.images);
      }
    }
    at::Tensor xq, yf;  // copied out of inference mode for autograd
    {
      c10::InferenceMode guard(false);
      xq = at::cat(xs).clone();
      yf = at::cat(ys).clone();
    }
    UnitRun u{unit, xq, yf, {}};
    report.units.push_back(engine.run(u, fmt::format("layer {}/{}", k + 1, units.size())));
  }
}

}  // namespace

RoundingReport reconstruct(QuantSim& sim, const data::Loader& calib,
                           const ReconstructionOptions& options, const SoftRoundingFactory& make,
                           const std::string& method) {
  MPQ_CHECK(calib.size() > 0, ErrorCode::kInvalidArgument,
            "{} needs calibration images: the calibration set is empty", method);
  MPQ_CHECK(options.granularity == "layer" || options.granularity == "block",
            ErrorCode::kInvalidArgument, "--granularity {}: use layer or block",
            options.granularity);
  MPQ_CHECK(options.qdrop >= 0 && options.qdrop < 1, ErrorCode::kInvalidArgument,
            "--qdrop {}: a probability in [0, 1)", options.qdrop);
  MPQ_CHECK(options.qdrop == 0 || options.granularity == "block", ErrorCode::kInvalidArgument,
            "--qdrop {} needs --granularity block (layer-wise reconstruction has no activations "
            "to drop)",
            options.qdrop);
  auto start = std::chrono::steady_clock::now();
  at::manual_seed(0);  // QDrop's masks
  RoundingReport report;
  report.method = method;
  report.granularity = options.granularity;
  Engine engine(sim, options, make, method);
  if (options.granularity == "block")
    run_blocks(engine, sim, calib, options, report);
  else
    run_layers(engine, sim, calib, report);
  report.seconds = seconds_since(start);
  return report;
}

RoundingReport reconstruct(QuantSim& sim, const data::Loader& calib, const RoundingOptions& options,
                           ReconstructionOptions r, const SoftRoundingFactory& make,
                           const std::string& method) {
  if (options.iters > 0) r.iters = options.iters;
  r.progress = options.progress;
  r.granularity = options.granularity;
  r.qdrop = options.qdrop;
  return reconstruct(sim, calib, r, make, method);
}

}  // namespace mpq::ptq
