#include "mpq/ptq/block_reconstruction.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/autograd/autograd.h>

#include <chrono>
#include <map>
#include <set>

#include "mpq/core/error.h"
#include "mpq/core/memory.h"
#include "mpq/core/progress.h"
#include "mpq/exec/executor.h"

namespace mpq::ptq {
namespace {

using quant::QuantSim;

bool is_fake_quantize(const ir::Node& n) { return n.op == "mpq::FakeQuantize"; }
bool is_activation(const ir::Node& n) { return n.op == "Relu" || n.op == "Clip"; }

// Which layer a quantizer node belongs to, and which kind it is.
struct Quantizers {
  std::map<std::string, size_t> weight, input;  // node name -> layer index
  std::map<std::string, size_t> layer;          // layer node name -> layer index
};

Quantizers quantizers_of(const QuantSim& sim) {
  Quantizers q;
  for (size_t i = 0; i < sim.layers().size(); ++i) {
    const std::string& name = sim.layers()[i].info.name;
    q.weight[name + ".weight_quant"] = i;
    q.input[name + ".input_quant"] = i;
    q.layer[name] = i;
  }
  return q;
}

// Values computable from initializers alone (the weight quantizers' outputs).
std::vector<bool> constant_values(const ir::Graph& g) {
  std::vector<bool> c(g.values.size(), false);
  for (const auto& [v, t] : g.initializers()) c[static_cast<size_t>(v)] = true;
  for (const ir::Node& n : g.nodes) {
    bool all = true;
    for (int in : n.inputs)
      if (in >= 0 && !c[static_cast<size_t>(in)]) all = false;
    if (all)
      for (int out : n.outputs) c[static_cast<size_t>(out)] = true;
  }
  return c;
}

const ir::Node* producer(const ir::Graph& g, int v) {
  int p = g.values[static_cast<size_t>(v)].producer;
  return p < 0 ? nullptr : &g.nodes[static_cast<size_t>(p)];
}

// A cut at `v` ends a block: a residual sum (through activations), a linear layer's output
// (no activation reads it), or the model's output.
bool ends_block(const ir::Graph& g, int v, const Quantizers& q) {
  if (std::find(g.outputs.begin(), g.outputs.end(), v) != g.outputs.end()) return true;
  const ir::Node* p = producer(g, v);
  if (!p || is_fake_quantize(*p)) return false;
  if (q.layer.count(p->name)) {
    for (const ir::Node& n : g.nodes)
      if (is_activation(n) && n.inputs[0] == v) return false;
    return true;
  }
  while (p && is_activation(*p)) p = producer(g, p->inputs[0]);
  return p && p->op == "Add";
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}


// A block as a Graph of its own: input "x", output the block's output.
//   kFloat: quantizers bypassed, float weights (the target).
//   kTrain: weights are values set before every step (soft-rounded); activation quantizers
//           read learnable step sizes and drop with probability `qdrop`.
//   kHard:  the simulation's nodes as they are (after rounding).
enum class Mode { kFloat, kTrain, kHard };

struct BlockGraph {
  ir::Graph graph;
  std::map<size_t, int> weight;      // layer -> value holding its (soft) weight   (kTrain)
  std::map<size_t, int> input_scale;  // layer -> value holding its step size       (kTrain)
};

BlockGraph build(const QuantSim& sim, const Block& b, const Quantizers& q, Mode mode,
                 double qdrop) {
  const ir::Graph& src = sim.graph();
  BlockGraph bg;
  ir::Graph& g = bg.graph;
  g.source = "block " + b.name;
  std::map<int, int> map;
  map[b.input] = g.add_value("x");
  g.inputs = {map[b.input]};
  std::function<int(int)> value = [&](int v) -> int {
    if (v < 0) return v;
    auto it = map.find(v);
    if (it != map.end()) return it->second;
    const ir::Node* p = producer(src, v);
    if (p && q.weight.count(p->name)) {  // a weight quantizer's output
      size_t l = q.weight.at(p->name);
      int id = g.add_value(src.values[static_cast<size_t>(v)].name);
      if (mode == Mode::kFloat) {
        g.set_initializer(id, sim.float_weight(l));
      } else if (mode == Mode::kTrain) {
        g.set_initializer(id, sim.float_weight(l).clone());
        bg.weight[l] = id;
      } else {
        map[v] = id;  // kHard: keep the quantizer node (its inputs are initializers)
        ir::Node copy = *p;
        for (int& in : copy.inputs) in = value(in);
        copy.outputs = {id};
        g.add_node(copy);
        return id;
      }
      return map[v] = id;
    }
    MPQ_CHECK(src.is_initializer(v), ErrorCode::kInternal,
              "block {}: value '{}' comes from outside the block", b.name,
              src.values[static_cast<size_t>(v)].name);
    int id = g.add_value(src.values[static_cast<size_t>(v)].name);
    g.set_initializer(id, src.initializer(v));
    return map[v] = id;
  };
  for (size_t k : b.nodes) {
    const ir::Node& n = src.nodes[k];
    if (q.input.count(n.name) && mode == Mode::kFloat) {
      map[n.outputs[0]] = value(n.inputs[0]);  // bypass
      continue;
    }
    ir::Node copy = n;
    for (int& in : copy.inputs) in = value(in);
    if (q.input.count(n.name) && mode == Mode::kTrain) {
      size_t l = q.input.at(n.name);
      int s = g.add_value(n.name + ".scale");
      g.set_initializer(s, src.initializer(n.inputs[1]).clone());
      copy.inputs[1] = s;
      bg.input_scale[l] = s;
      if (qdrop > 0) copy.attrs["drop"] = qdrop;
    }
    for (int& out : copy.outputs) out = map[out] = g.add_value(src.values[static_cast<size_t>(out)].name);
    g.add_node(copy);
  }
  g.outputs = {map.at(b.output)};
  g.topo_sort();
  return bg;
}

// Runs `graph` over `x` in chunks without autograd; the result stays usable with autograd.
at::Tensor run_chunks(const ir::Graph& graph, const at::Tensor& x, int64_t chunk) {
  at::NoGradGuard no_grad;
  exec::ExecOptions eo;
  eo.channels_last = false;
  exec::Executor e(graph, eo);
  std::vector<at::Tensor> parts;
  for (int64_t i = 0; i < x.size(0); i += chunk)
    parts.push_back(e.forward(x.slice(0, i, std::min(i + chunk, x.size(0)))).contiguous());
  return at::cat(parts);
}

double block_loss(const at::Tensor& out, const at::Tensor& y) {
  return (out - y).square().flatten(1).sum(1).mean().item<double>();
}


}  // namespace

std::vector<Block> find_blocks(const QuantSim& sim) {
  const ir::Graph& g = sim.graph();
  Quantizers q = quantizers_of(sim);
  std::vector<bool> constant = constant_values(g);
  std::vector<int> last_use(g.values.size(), -1);
  for (size_t i = 0; i < g.nodes.size(); ++i)
    for (int in : g.nodes[i].inputs)
      if (in >= 0 && !constant[static_cast<size_t>(in)]) last_use[static_cast<size_t>(in)] = static_cast<int>(i);
  for (int out : g.outputs) last_use[static_cast<size_t>(out)] = static_cast<int>(g.nodes.size());
  MPQ_CHECK(g.inputs.size() == 1, ErrorCode::kInvalidArgument,
            "block reconstruction needs a model with one input, {} has {}", g.source,
            g.inputs.size());

  std::vector<Block> blocks;
  Block current;
  current.input = g.inputs[0];
  std::set<int> live = {g.inputs[0]};
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const ir::Node& n = g.nodes[i];
    bool is_const = true;
    for (int out : n.outputs) is_const = is_const && constant[static_cast<size_t>(out)];
    if (is_const) continue;  // weight quantizers: built with the layer that reads them
    current.nodes.push_back(i);
    if (q.layer.count(n.name)) current.layers.push_back(q.layer.at(n.name));
    for (int out : n.outputs)
      if (last_use[static_cast<size_t>(out)] > static_cast<int>(i)) live.insert(out);
    for (int in : n.inputs)
      if (in >= 0 && last_use[static_cast<size_t>(in)] == static_cast<int>(i)) live.erase(in);
    if (live.size() != 1 || !ends_block(g, *live.begin(), q)) continue;
    current.output = *live.begin();
    if (current.layers.empty() && !blocks.empty()) {  // no layer: fold into the previous block
      Block& prev = blocks.back();
      prev.nodes.insert(prev.nodes.end(), current.nodes.begin(), current.nodes.end());
      prev.output = current.output;
    } else {
      blocks.push_back(current);
    }
    current = Block{};
    current.input = *live.begin();
  }
  MPQ_CHECK(current.nodes.empty(), ErrorCode::kInternal,
            "{}: nodes after the model's last output", g.source);
  if (!blocks.empty() && blocks.back().layers.empty() && blocks.size() > 1) blocks.pop_back();
  for (Block& b : blocks) {
    if (b.layers.empty()) continue;
    const std::string& first = sim.layers()[b.layers.front()].info.name;
    const std::string& last = sim.layers()[b.layers.back()].info.name;
    b.name = b.layers.size() == 1 ? first : first + " .. " + last;
  }
  return blocks;
}

nlohmann::json reconstruct_blocks(QuantSim& sim, const data::Loader& calib,
                                  const quant::ReconstructionOptions& options,
                                  const quant::SoftRoundingFactory& make,
                                  const std::string& label) {
  MPQ_CHECK(calib.size() > 0, ErrorCode::kInvalidArgument,
            "{} needs calibration images: the calibration set is empty", label);
  Quantizers q = quantizers_of(sim);
  std::vector<Block> blocks = find_blocks(sim);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(0);
  at::manual_seed(0);  // QDrop's masks

  at::Tensor xq, xf;  // the current block's inputs on the calibration set
  {
    std::vector<at::Tensor> images;
    for (int64_t b = 0; b < calib.batches(); ++b) images.push_back(calib.batch(b).images);
    xq = at::cat(images);
    xf = xq;
  }
  nlohmann::json report = nlohmann::json::array();
  // Blocks after the last one with weights to round change nothing in `sim`: stop there.
  size_t end = 0;
  for (size_t k = 0; k < blocks.size(); ++k)
    for (size_t l : blocks[k].layers)
      if (sim.layers()[l].quantizes_weight()) end = k + 1;
  for (size_t k = 0; k < end; ++k) {
    const Block& b = blocks[k];
    auto start = std::chrono::steady_clock::now();
    at::Tensor yf = run_chunks(build(sim, b, q, Mode::kFloat, 0).graph, xf, options.chunk);
    std::vector<size_t> learned;
    bool quantized = false;
    for (size_t l : b.layers) {
      if (sim.layers()[l].quantizes_weight()) learned.push_back(l);
      quantized |= sim.layers()[l].quantizes_weight() || sim.layers()[l].quantizes_input();
    }
    BlockGraph hard = build(sim, b, q, Mode::kHard, 0);
    // The next block's input. A float block on a still-float input is its float output (the
    // sensitivity probes, with one layer quantized, start with a float prefix).
    at::Tensor next = !quantized && xq.is_same(xf) ? yf : run_chunks(hard.graph, xq, options.chunk);
    double before = block_loss(next, yf), after = before;

    if (!learned.empty() && options.iters > 0) {
      next = at::Tensor();  // recomputed after training; memory for the training meanwhile
      // What the block is now (nearest rounding, calibrated steps), to go back to if the
      // reconstruction ends worse on the calibration set.
      std::vector<at::Tensor> nearest_ints;
      for (size_t l : learned) nearest_ints.push_back(sim.weight_integers(l));
      std::map<size_t, std::pair<at::Tensor, quant::Encoding>> calibrated;
      for (size_t l : b.layers)
        if (sim.layers()[l].quantizes_input())
          calibrated[l] = {sim.graph().initializer(sim.layers()[l].input_scale).clone(),
                           sim.layers()[l].encoding};
      BlockGraph train = build(sim, b, q, Mode::kTrain, options.qdrop);
      std::vector<at::Tensor> v, scale;
      std::vector<std::unique_ptr<quant::SoftRounding>> rounding;
      std::vector<quant::Adam> v_adam;
      for (size_t l : learned) {
        const quant::QuantLayer& layer = sim.layers()[l];
        at::Tensor s =
            quant::along(sim.weight_scale(l).clone(), layer.axis, sim.float_weight(l).dim());
        rounding.push_back(make());
        v.push_back(rounding.back()
                        ->init(sim.float_weight(l) / s, quant::weight_range(layer.w_bits))
                        .detach()
                        .requires_grad_(true));
        scale.push_back(s);
        v_adam.emplace_back(v.back(), options.lr);
      }
      std::vector<size_t> steps;  // layers whose input step is learned
      std::vector<quant::Adam> s_adam;
      if (options.act_lr > 0) {
        for (auto& [l, id] : train.input_scale) {
          train.graph.initializer(id).requires_grad_(true);
          steps.push_back(l);
          s_adam.emplace_back(train.graph.initializer(id), options.act_lr);
        }
      }
      exec::ExecOptions eo;
      eo.channels_last = false;
      exec::Executor e(train.graph, eo);
      Progress bar(fmt::format("{} block {}/{} {}", label, k + 1, blocks.size(), b.name),
                   options.iters, options.progress);
      for (int64_t it = 0; it < options.iters; ++it) {
        double t = static_cast<double>(it) / static_cast<double>(options.iters);
        at::Tensor idx =
            at::randint(xq.size(0), {std::min(options.batch, xq.size(0))}, gen, at::kLong);
        at::Tensor loss;
        for (size_t j = 0; j < learned.size(); ++j) {
          train.graph.initializer(train.weight.at(learned[j])) =
              rounding[j]->soft(v[j], t) * scale[j];
        }
        at::Tensor out = e.forward(xq.index_select(0, idx));
        at::Tensor rec = (out - yf.index_select(0, idx)).square().flatten(1).sum(1).mean();
        loss = rec;
        for (size_t j = 0; j < learned.size(); ++j)
          loss = loss + rounding[j]->regularizer(v[j], t);
        std::vector<at::Tensor> params = v;
        for (size_t l : steps) params.push_back(train.graph.initializer(train.input_scale.at(l)));
        std::vector<at::Tensor> grads = torch::autograd::grad({loss}, params);
        {
          at::NoGradGuard no_grad;
          for (size_t j = 0; j < v.size(); ++j) v_adam[j].step(v[j], grads[j]);
          for (size_t j = 0; j < steps.size(); ++j) {
            at::Tensor& s = train.graph.initializer(train.input_scale.at(steps[j]));
            s_adam[j].step(s, grads[v.size() + j]);
            s.clamp_min_(1e-8);
          }
        }
        bar.advance(1, fmt::format("loss {:.4g} (nearest {:.4g})", rec.item<double>(), before));
      }
      bar.finish();
      // Hard rounding and the learned steps go back into the simulation.
      at::NoGradGuard no_grad;
      for (size_t j = 0; j < learned.size(); ++j)
        sim.set_weight_integers(learned[j], rounding[j]->hard(v[j].detach()));
      for (size_t l : steps) {
        quant::QuantLayer& layer = sim.layers()[l];
        at::Tensor s = train.graph.initializer(train.input_scale.at(l)).detach().clone();
        sim.graph().initializer(layer.input_scale) = s;
        quant::IntRange r = quant::activation_range(layer.a_bits);
        layer.encoding.scale = s.item<double>();
        layer.encoding.min = layer.encoding.scale * static_cast<double>(r.qmin - layer.encoding.zero_point);
        layer.encoding.max = layer.encoding.scale * static_cast<double>(r.qmax - layer.encoding.zero_point);
      }
      hard = build(sim, b, q, Mode::kHard, 0);
      next = run_chunks(hard.graph, xq, options.chunk);
      after = block_loss(next, yf);
      if (after > before) {
        if (options.progress)
          log_line(
              fmt::format("{} block {}: worse than nearest rounding on the calibration set; "
                          "keeping nearest",
                          label, b.name));
        for (size_t j = 0; j < learned.size(); ++j)
          sim.set_weight_integers(learned[j], nearest_ints[j]);
        for (auto& [l, saved] : calibrated) {
          sim.graph().initializer(sim.layers()[l].input_scale) = saved.first;
          sim.layers()[l].encoding = saved.second;
        }
        hard = build(sim, b, q, Mode::kHard, 0);
        next = run_chunks(hard.graph, xq, options.chunk);
        after = block_loss(next, yf);
      }
    }
    xq = next;
    xf = yf;
    double rss = peak_rss_mb();
    std::vector<std::string> names;
    for (size_t l : b.layers) names.push_back(sim.layers()[l].info.name);
    report.push_back({{"block", b.name},
                      {"layers", names},
                      {"nearest_loss", before},
                      {"loss", after},
                      {"seconds", seconds_since(start)},
                      {"peak_rss_mb", rss}});
    if (options.progress)
      log_line(fmt::format("{} block {}/{} {}: loss {:.4g} -> {:.4g}, {:.1f} s, peak RSS {:.0f} MB",
                           label, k + 1, blocks.size(), b.name, before, after, seconds_since(start),
                           rss));
  }
  return report;
}

}  // namespace mpq::ptq
