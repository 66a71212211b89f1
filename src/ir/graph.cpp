#include "mpq/ir/graph.h"

#include <algorithm>
#include <functional>
#include <queue>

#include "mpq/core/error.h"

namespace mpq::ir {

int64_t Node::attr_int(const std::string& key, int64_t fallback) const {
  auto it = attrs.find(key);
  if (it == attrs.end()) return fallback;
  if (auto* v = std::get_if<int64_t>(&it->second)) return *v;
  fail(ErrorCode::kBadFile, "{}: attribute '{}' must be an integer", where(), key);
}

double Node::attr_float(const std::string& key, double fallback) const {
  auto it = attrs.find(key);
  if (it == attrs.end()) return fallback;
  if (auto* v = std::get_if<double>(&it->second)) return *v;
  if (auto* v = std::get_if<int64_t>(&it->second)) return static_cast<double>(*v);
  fail(ErrorCode::kBadFile, "{}: attribute '{}' must be a float", where(), key);
}

std::string Node::attr_string(const std::string& key, const std::string& fallback) const {
  auto it = attrs.find(key);
  if (it == attrs.end()) return fallback;
  if (auto* v = std::get_if<std::string>(&it->second)) return *v;
  fail(ErrorCode::kBadFile, "{}: attribute '{}' must be a string", where(), key);
}

std::vector<int64_t> Node::attr_ints(const std::string& key, std::vector<int64_t> fallback) const {
  auto it = attrs.find(key);
  if (it == attrs.end()) return fallback;
  if (auto* v = std::get_if<std::vector<int64_t>>(&it->second)) return *v;
  if (auto* v = std::get_if<int64_t>(&it->second)) return {*v};
  fail(ErrorCode::kBadFile, "{}: attribute '{}' must be a list of integers", where(), key);
}

std::optional<at::Tensor> Node::attr_tensor(const std::string& key) const {
  auto it = attrs.find(key);
  if (it == attrs.end()) return std::nullopt;
  if (auto* v = std::get_if<at::Tensor>(&it->second)) return *v;
  fail(ErrorCode::kBadFile, "{}: attribute '{}' must be a tensor", where(), key);
}

std::string Node::where() const { return fmt::format("node '{}' ({})", name, op); }

int Graph::add_value(const std::string& name) {
  auto it = value_index_.find(name);
  if (it != value_index_.end()) return it->second;
  int id = static_cast<int>(values.size());
  values.push_back(Value{name, -1, {}});
  value_index_[name] = id;
  return id;
}

void Graph::rename_value(int id, const std::string& name) {
  MPQ_CHECK(find_value(name) < 0, ErrorCode::kInternal, "{}: tensor name '{}' is already used",
            source.empty() ? "graph" : source, name);
  value_index_.erase(values.at(static_cast<size_t>(id)).name);
  values[static_cast<size_t>(id)].name = name;
  value_index_[name] = id;
}

int Graph::find_value(const std::string& name) const {
  auto it = value_index_.find(name);
  return it == value_index_.end() ? -1 : it->second;
}

int Graph::value_id(const std::string& name) const {
  int id = find_value(name);
  MPQ_CHECK(id >= 0, ErrorCode::kInvalidArgument, "{}: no tensor named '{}' in the graph",
            source.empty() ? "graph" : source, name);
  return id;
}

Node& Graph::add_node(Node node) {
  int index = static_cast<int>(nodes.size());
  for (int out : node.outputs) values[out].producer = index;
  nodes.push_back(std::move(node));
  return nodes.back();
}

void Graph::set_initializer(int value, at::Tensor tensor) {
  initializers_[value] = std::move(tensor);
}

const at::Tensor& Graph::initializer(int value) const {
  auto it = initializers_.find(value);
  MPQ_CHECK(it != initializers_.end(), ErrorCode::kInternal, "'{}' is not an initializer",
            values.at(value).name);
  return it->second;
}

at::Tensor& Graph::initializer(int value) {
  auto it = initializers_.find(value);
  MPQ_CHECK(it != initializers_.end(), ErrorCode::kInternal, "'{}' is not an initializer",
            values.at(value).name);
  return it->second;
}

std::optional<at::Tensor> Graph::constant_input(const Node& node, size_t index) const {
  if (index >= node.inputs.size() || !is_initializer(node.inputs[index])) return std::nullopt;
  return initializer(node.inputs[index]);
}

std::vector<int> Graph::consumers(int value) const {
  std::vector<int> out;
  for (size_t i = 0; i < nodes.size(); ++i) {
    const auto& ins = nodes[i].inputs;
    if (std::find(ins.begin(), ins.end(), value) != ins.end()) out.push_back(static_cast<int>(i));
  }
  return out;
}

void Graph::topo_sort() {
  std::vector<int> producer(values.size(), -1);
  for (size_t i = 0; i < nodes.size(); ++i)
    for (int out : nodes[i].outputs) producer[out] = static_cast<int>(i);
  std::vector<bool> available(values.size(), false);
  for (int v : inputs) available[v] = true;
  for (const auto& [v, _] : initializers_) available[v] = true;

  std::vector<int> pending(nodes.size(), 0);
  std::vector<std::vector<int>> readers(values.size());
  for (size_t i = 0; i < nodes.size(); ++i) {
    for (int in : nodes[i].inputs) {
      if (in < 0 || available[in]) continue;
      MPQ_CHECK(producer[in] >= 0, ErrorCode::kBadFile,
                "{}: {} reads '{}', which is neither a graph input, an initializer nor a node "
                "output",
                source, nodes[i].where(), values[in].name);
      ++pending[i];
      readers[in].push_back(static_cast<int>(i));
    }
  }
  // Kahn's algorithm, stable with respect to the original order.
  std::priority_queue<int, std::vector<int>, std::greater<int>> ready;
  for (size_t i = 0; i < nodes.size(); ++i)
    if (pending[i] == 0) ready.push(static_cast<int>(i));
  std::vector<Node> sorted;
  sorted.reserve(nodes.size());
  while (!ready.empty()) {
    int i = ready.top();
    ready.pop();
    for (int out : nodes[i].outputs)
      for (int reader : readers[out])
        if (--pending[reader] == 0) ready.push(reader);
    sorted.push_back(std::move(nodes[i]));
  }
  MPQ_CHECK(sorted.size() == nodes.size(), ErrorCode::kBadFile, "{}: the graph has a cycle",
            source);
  nodes = std::move(sorted);
  for (auto& v : values) v.producer = -1;
  for (size_t i = 0; i < nodes.size(); ++i)
    for (int out : nodes[i].outputs) values[out].producer = static_cast<int>(i);
}

void Graph::remove_nodes(const std::vector<bool>& drop) {
  std::vector<Node> kept;
  for (size_t i = 0; i < nodes.size(); ++i)
    if (!drop.at(i)) kept.push_back(std::move(nodes[i]));
  nodes = std::move(kept);
  topo_sort();
  remove_dead();
}

void Graph::remove_dead() {
  std::vector<bool> live(values.size(), false);
  for (int v : outputs) live[v] = true;
  std::vector<bool> keep(nodes.size(), false);
  for (int i = static_cast<int>(nodes.size()) - 1; i >= 0; --i) {
    bool used = false;
    for (int out : nodes[i].outputs) used = used || live[out];
    if (!used) continue;
    keep[i] = true;
    for (int in : nodes[i].inputs)
      if (in >= 0) live[in] = true;
  }
  std::vector<Node> kept;
  for (size_t i = 0; i < nodes.size(); ++i)
    if (keep[i]) kept.push_back(std::move(nodes[i]));
  nodes = std::move(kept);
  for (auto it = initializers_.begin(); it != initializers_.end();) {
    it = live[it->first] ? std::next(it) : initializers_.erase(it);
  }
  for (auto& v : values) v.producer = -1;
  for (size_t i = 0; i < nodes.size(); ++i)
    for (int out : nodes[i].outputs) values[out].producer = static_cast<int>(i);
}

std::vector<LayerInfo> describe_layers(
    const Graph& graph, const std::unordered_map<int, std::vector<int64_t>>& shapes) {
  std::vector<LayerInfo> layers;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    const Node& node = graph.nodes[i];
    bool is_conv = node.op == "Conv";
    bool is_fc = node.op == "Gemm" || node.op == "MatMul";
    if (!is_conv && !is_fc) continue;
    if (node.inputs.size() < 2 || !graph.is_initializer(node.inputs[1])) continue;
    const at::Tensor& w = graph.initializer(node.inputs[1]);
    LayerInfo info;
    info.name = node.name;
    info.op = node.op;
    info.node = static_cast<int>(i);
    info.weight_shape = w.sizes().vec();
    info.params = w.numel();
    auto out_shape = shapes.find(node.outputs[0]);
    if (out_shape != shapes.end()) {
      int64_t out_numel = 1;
      for (int64_t d : out_shape->second) out_numel *= d;
      if (is_conv) {
        // Each output element costs (C_in / groups) * prod(kernel) MACs = w.numel() / C_out.
        info.macs = out_numel * (w.numel() / w.size(0));
      } else {
        // Each output element costs K MACs; K is the weight's reduction dimension.
        bool trans_b = node.op == "Gemm" && node.attr_int("transB", 0) != 0;
        int64_t k = trans_b ? w.size(1) : w.size(0);
        info.macs = out_numel * k;
      }
    }
    auto readers = graph.consumers(node.outputs[0]);
    if (readers.size() == 1 && graph.nodes[readers[0]].op == "BatchNormalization") {
      info.has_bn = true;
      info.bn_node = graph.nodes[readers[0]].name;
    }
    layers.push_back(std::move(info));
  }
  return layers;
}

}  // namespace mpq::ir
