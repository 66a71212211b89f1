#include "mpq/ptq/blocks.h"

#include <functional>
#include <limits>
#include <optional>
#include <set>

#include "mpq/core/error.h"

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

// A network without residuals (MobileNetV1, VGG-style stacks, long stems) would be one block:
// a cut where one activation is live also ends a block that has kMaxBlockLayers layers, at a
// layer's activated output (not between a layer and its ReLU, nor after a quantizer).
constexpr size_t kMaxBlockLayers = 3;

bool activated_output(const ir::Graph& g, int v) {
  const ir::Node* p = producer(g, v);
  if (!p || is_fake_quantize(*p)) return false;
  for (const ir::Node& n : g.nodes)
    if (is_activation(n) && n.inputs[0] == v) return false;
  return true;
}

// The constant bounds of a Relu or Clip node (nullopt if a bound is computed).
std::optional<std::pair<double, double>> clip_bounds(const ir::Graph& g, const ir::Node& n) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  if (n.op == "Relu") return std::pair{0.0, kInf};
  if (n.op != "Clip") return std::nullopt;
  std::pair<double, double> r{-kInf, kInf};
  for (size_t i : {size_t{1}, size_t{2}}) {
    const char* attr = i == 1 ? "min" : "max";
    double& bound = i == 1 ? r.first : r.second;
    if (n.has(attr)) {
      bound = n.attr_float(attr, 0.0);
    } else if (n.inputs.size() > i && n.inputs[i] >= 0) {
      if (!g.is_initializer(n.inputs[i])) return std::nullopt;
      bound = g.initializer(n.inputs[i]).item<double>();
    }
  }
  return r;
}

// Training graphs fold a ReLU/Clip whose only reader is an activation quantizer into that
// quantizer (attributes clip_min/clip_max): one fused pass forward and backward instead of a
// clamp, its mask, and a where. Returns activation node index -> its bounds.
std::map<size_t, std::pair<double, double>> foldable_clips(const ir::Graph& g, const Block& b,
                                                           const Quantizers& q) {
  std::map<size_t, std::pair<double, double>> out;
  for (size_t k : b.nodes) {
    const ir::Node& n = g.nodes[k];
    auto bounds = clip_bounds(g, n);
    if (!bounds || n.outputs[0] == b.output) continue;
    std::vector<const ir::Node*> readers;
    for (const ir::Node& m : g.nodes)
      for (int in : m.inputs)
        if (in == n.outputs[0]) readers.push_back(&m);
    if (readers.size() == 1 && q.input.count(readers[0]->name) &&
        readers[0]->inputs[0] == n.outputs[0])
      out[k] = *bounds;
  }
  return out;
}

BlockGraph build(const QuantSim& sim, const Block& b, const Quantizers& q, BlockMode mode,
                 double qdrop) {
  const ir::Graph& src = sim.graph();
  std::map<size_t, std::pair<double, double>> folded;
  std::map<int, std::pair<double, double>> clip_of;  // activation output -> bounds
  if (mode == BlockMode::kTrain) {
    folded = foldable_clips(src, b, q);
    for (const auto& [k, bounds] : folded) clip_of[src.nodes[k].outputs[0]] = bounds;
  }
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
      if (mode == BlockMode::kFloat) {
        g.set_initializer(id, sim.float_weight(l));
      } else if (mode == BlockMode::kTrain) {
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
    if (folded.count(k)) {  // the quantizer reading it clamps
      map[n.outputs[0]] = value(n.inputs[0]);
      continue;
    }
    if (q.input.count(n.name) && mode == BlockMode::kFloat) {
      map[n.outputs[0]] = value(n.inputs[0]);  // bypass
      continue;
    }
    ir::Node copy = n;
    for (int& in : copy.inputs) in = value(in);
    if (q.input.count(n.name) && mode == BlockMode::kTrain) {
      size_t l = q.input.at(n.name);
      int s = g.add_value(n.name + ".scale");
      g.set_initializer(s, src.initializer(n.inputs[1]).clone());
      copy.inputs[1] = s;
      bg.input_scale[l] = s;
      if (qdrop > 0) copy.attrs["drop"] = qdrop;
      auto clip = clip_of.find(n.inputs[0]);
      if (clip != clip_of.end()) {
        copy.attrs["clip_min"] = clip->second.first;
        copy.attrs["clip_max"] = clip->second.second;
      }
    }
    for (int& out : copy.outputs)
      out = map[out] = g.add_value(src.values[static_cast<size_t>(out)].name);
    g.add_node(copy);
  }
  g.outputs = {map.at(b.output)};
  g.topo_sort();
  return bg;
}

}  // namespace

std::vector<Block> find_blocks(const QuantSim& sim) {
  const ir::Graph& g = sim.graph();
  Quantizers q = quantizers_of(sim);
  std::vector<bool> constant = constant_values(g);
  std::vector<int> last_use(g.values.size(), -1);
  for (size_t i = 0; i < g.nodes.size(); ++i)
    for (int in : g.nodes[i].inputs)
      if (in >= 0 && !constant[static_cast<size_t>(in)])
        last_use[static_cast<size_t>(in)] = static_cast<int>(i);
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
    if (live.size() != 1) continue;
    bool full = current.layers.size() >= kMaxBlockLayers && activated_output(g, *live.begin());
    if (!full && !ends_block(g, *live.begin(), q)) continue;
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
  MPQ_CHECK(current.nodes.empty(), ErrorCode::kInternal, "{}: nodes after the model's last output",
            g.source);
  if (!blocks.empty() && blocks.back().layers.empty() && blocks.size() > 1) blocks.pop_back();
  for (Block& b : blocks) {
    if (b.layers.empty()) continue;
    const std::string& first = sim.layers()[b.layers.front()].info.name;
    const std::string& last = sim.layers()[b.layers.back()].info.name;
    b.name = b.layers.size() == 1 ? first : first + " .. " + last;
  }
  return blocks;
}

std::vector<Block> layer_units(const QuantSim& sim) {
  const ir::Graph& g = sim.graph();
  std::vector<Block> units;
  for (size_t l = 0; l < sim.layers().size(); ++l) {
    if (!sim.layers()[l].quantizes_weight()) continue;
    const std::string& name = sim.layers()[l].info.name;
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      if (g.nodes[i].name != name) continue;
      Block b;
      b.input = g.nodes[i].inputs[0];
      b.output = g.nodes[i].outputs[0];
      b.nodes = {i};
      b.layers = {l};
      b.name = name;
      units.push_back(b);
    }
    MPQ_CHECK(!units.empty() && units.back().layers[0] == l, ErrorCode::kInternal,
              "layer '{}' not in the simulation graph", name);
  }
  return units;
}

BlockGraph build_block(const QuantSim& sim, const Block& b, BlockMode mode, double qdrop) {
  return build(sim, b, quantizers_of(sim), mode, qdrop);
}

}  // namespace mpq::ptq
