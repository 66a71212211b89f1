#include "mpq/export/quantized.h"

#include <c10/core/InferenceMode.h>

#include <map>

#include "mpq/core/error.h"
#include "mpq/core/file.h"
#include "mpq/export/onnx_writer.h"

namespace mpq::export_ {
namespace {

using nlohmann::json;

json encoding_entry(int bits, double scale, int64_t offset, int64_t qmin, int64_t qmax,
                    bool symmetric) {
  return {{"bitwidth", bits},
          {"dtype", "int"},
          {"is_symmetric", symmetric},
          {"scale", scale},
          {"offset", offset},
          {"min", scale * static_cast<double>(qmin + offset)},
          {"max", scale * static_cast<double>(qmax + offset)}};
}

ir::Node make_node(const std::string& name, const std::string& op, std::vector<int> inputs,
                   std::vector<int> outputs) {
  ir::Node n;
  n.name = name;
  n.op = op;
  n.inputs = std::move(inputs);
  n.outputs = std::move(outputs);
  return n;
}

}  // namespace

QuantizedModel export_quantized(const quant::QuantSim& sim) {
  c10::InferenceMode inference;
  QuantizedModel out;
  ir::Graph& g = out.qcdq;
  g = sim.graph();
  g.opset = std::max<int64_t>(g.opset, 13);  // per-channel DequantizeLinear
  g.metadata["mpq.export"] = "qcdq";
  json activations = json::object(), params = json::object();

  // Which FakeQuantize node is which layer's weight or input quantizer.
  std::map<std::string, size_t> weight_node, input_node;
  for (size_t i = 0; i < sim.layers().size(); ++i) {
    weight_node[sim.layers()[i].info.name + ".weight_quant"] = i;
    input_node[sim.layers()[i].info.name + ".input_quant"] = i;
  }
  std::vector<bool> drop(g.nodes.size(), false);
  std::vector<ir::Node> added;
  std::map<std::pair<int, int>, int> chains;  // (input value, bits) -> dequantized value
  std::vector<std::pair<int, int>> rewire;    // (fq output, replacement) for shared chains
  for (size_t n = 0; n < g.nodes.size(); ++n) {
    const ir::Node& node = g.nodes[n];
    if (node.op != "mpq::FakeQuantize") continue;
    drop[n] = true;
    int fq_out = node.outputs[0];
    if (auto it = weight_node.find(node.name); it != weight_node.end()) {
      size_t i = it->second;
      const quant::QuantLayer& l = sim.layers()[i];
      std::string name = g.values[l.weight].name;
      at::Tensor q = sim.weight_integers(i);
      at::Tensor scale = sim.weight_scale(i);
      g.rename_value(l.weight, name + "_float");
      g.rename_value(fq_out, name);
      int q_value = g.add_value(name + "_quantized");
      int s_value = g.add_value(name + "_scale");
      int z_value = g.add_value(name + "_zero_point");
      g.set_initializer(q_value, q);
      g.set_initializer(s_value, scale);
      g.set_initializer(z_value, at::zeros({scale.numel()}, at::kChar));
      ir::Node dq = make_node(l.info.name + ".weight_quant/DequantizeLinear", "DequantizeLinear",
                              {q_value, s_value, z_value}, {fq_out});
      dq.attrs["axis"] = static_cast<int64_t>(l.axis);
      added.push_back(std::move(dq));
      quant::IntRange r = l.weight_range();
      json channels = json::array();
      auto s = scale.accessor<float, 1>();
      for (int64_t c = 0; c < scale.numel(); ++c)
        channels.push_back(encoding_entry(l.w_bits, s[c], 0, r.qmin, r.qmax, true));
      params[name] = channels;
      continue;
    }
    auto it = input_node.find(node.name);
    MPQ_CHECK(it != input_node.end(), ErrorCode::kInternal, "unknown quantizer node '{}'",
              node.name);
    const quant::QuantLayer& l = sim.layers()[it->second];
    const quant::Encoding& e = l.encoding;
    auto key = std::make_pair(l.input, l.a_bits);
    if (auto c = chains.find(key); c != chains.end()) {
      rewire.emplace_back(fq_out, c->second);
      continue;
    }
    chains[key] = fq_out;
    std::string base = l.info.name + ".input_quant";
    int s_value = g.add_value(base + ".scale");
    int z_value = g.add_value(base + ".zero_point");
    g.set_initializer(s_value, at::scalar_tensor(static_cast<float>(e.scale), at::kFloat));
    g.set_initializer(z_value, at::scalar_tensor(e.zero_point, at::kByte));
    int q_value = g.add_value(base + ".quantized");
    added.push_back(make_node(base + "/QuantizeLinear", "QuantizeLinear",
                              {l.input, s_value, z_value}, {q_value}));
    quant::IntRange r = quant::activation_range(l.a_bits);
    if (l.a_bits < 8) {
      int lo = g.add_value(base + ".clip_min"), hi = g.add_value(base + ".clip_max");
      g.set_initializer(lo, at::scalar_tensor(r.qmin, at::kByte));
      g.set_initializer(hi, at::scalar_tensor(r.qmax, at::kByte));
      int clipped = g.add_value(base + ".clipped");
      added.push_back(make_node(base + "/Clip", "Clip", {q_value, lo, hi}, {clipped}));
      q_value = clipped;
    }
    added.push_back(make_node(base + "/DequantizeLinear", "DequantizeLinear",
                              {q_value, s_value, z_value}, {fq_out}));
    std::string tensor = g.values[l.input].name;
    json entry = encoding_entry(l.a_bits, e.scale, -e.zero_point, r.qmin, r.qmax, false);
    if (activations.contains(tensor) && activations[tensor][0] != entry)
      tensor += "@" + l.info.name;  // the same tensor at another width for another layer
    activations[tensor] = json::array({entry});
  }
  for (ir::Node& n : g.nodes)
    for (int& in : n.inputs)
      for (auto [from, to] : rewire)
        if (in == from) in = to;
  for (ir::Node& n : added) {
    g.add_node(std::move(n));
    drop.push_back(false);
  }
  g.remove_nodes(drop);
  out.encodings = {{"version", "mpq-1"},
                   {"activation_encodings", activations},
                   {"param_encodings", params}};
  return out;
}

void save_qcdq(const QuantizedModel& model, const std::string& path) {
  save_onnx(model.qcdq, path);
}

void save_encodings(const QuantizedModel& model, const std::string& path) {
  write_file_atomic(path, model.encodings.dump(2) + "\n");
}

}  // namespace mpq::export_
