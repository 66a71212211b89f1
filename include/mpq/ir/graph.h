// The graph IR: ONNX's data model trimmed to what mpq needs.
//
// Values are named edges, identified by index; a Node reads and writes values; initializers
// (weights and other constants) are at::Tensor keyed by value index. Op types are ONNX op
// names ("Conv", "BatchNormalization", ...) and attributes keep their ONNX types, so a Graph
// writes back to ONNX unchanged. Nodes are kept in topological order (topo_sort()).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

namespace mpq::ir {

using AttrValue = std::variant<int64_t, double, std::string, std::vector<int64_t>,
                               std::vector<double>, at::Tensor>;

struct Value {
  std::string name;
  int producer = -1;           // index of the producing node, -1 for inputs and initializers
  std::vector<int64_t> shape;  // declared shape (graph inputs/outputs); -1 = dynamic dim
};

struct Node {
  std::string name;          // ONNX node name, or its first output's name when unnamed
  std::string op;            // ONNX op type
  std::vector<int> inputs;   // value indices; -1 marks an omitted optional input
  std::vector<int> outputs;  // value indices
  std::map<std::string, AttrValue> attrs;

  bool has(const std::string& key) const { return attrs.count(key) > 0; }
  int64_t attr_int(const std::string& key, int64_t fallback) const;
  double attr_float(const std::string& key, double fallback) const;
  std::string attr_string(const std::string& key, const std::string& fallback) const;
  std::vector<int64_t> attr_ints(const std::string& key, std::vector<int64_t> fallback = {}) const;
  std::optional<at::Tensor> attr_tensor(const std::string& key) const;
  // "node 'conv1' (Conv)": the way error messages name a node.
  std::string where() const;
};

class Graph {
 public:
  int add_value(const std::string& name);
  // The value with this name, or -1.
  int find_value(const std::string& name) const;
  int value_id(const std::string& name) const;  // throws when absent
  // Gives value `id` a new name (which must be unused).
  void rename_value(int id, const std::string& name);
  Node& add_node(Node node);

  void set_initializer(int value, at::Tensor tensor);
  bool is_initializer(int value) const { return value >= 0 && initializers_.count(value) > 0; }
  const at::Tensor& initializer(int value) const;
  at::Tensor& initializer(int value);
  void erase_initializer(int value) { initializers_.erase(value); }
  const std::unordered_map<int, at::Tensor>& initializers() const { return initializers_; }
  // The initializer feeding `node`'s input `index`, if that input is one.
  std::optional<at::Tensor> constant_input(const Node& node, size_t index) const;

  // Nodes reading `value`, in node order.
  std::vector<int> consumers(int value) const;
  // Reorders nodes so that every node follows its inputs' producers; throws on a cycle or on
  // an input that nothing produces. Recomputes Value::producer.
  void topo_sort();
  // Removes the nodes marked in `drop` (indexed like `nodes`), then re-sorts and drops what
  // became dead: the common ending of a rewrite pass.
  void remove_nodes(const std::vector<bool>& drop);
  // Drops nodes whose outputs reach no graph output, and initializers nobody reads.
  void remove_dead();

  std::vector<Value> values;
  std::vector<Node> nodes;
  std::vector<int> inputs;                      // graph inputs (excluding initializers)
  std::vector<int> outputs;                     // graph outputs
  std::map<std::string, std::string> metadata;  // ONNX metadata_props
  int64_t opset = 13;
  std::string source;  // the file this graph came from, for error messages

 private:
  std::unordered_map<std::string, int> value_index_;
  std::unordered_map<int, at::Tensor> initializers_;
};

// A quantizable layer (every Conv and Gemm/MatMul with a constant weight).
struct LayerInfo {
  std::string name;
  std::string op;
  int node = -1;
  std::vector<int64_t> weight_shape;
  int64_t params = 0;  // weight elements (bias not counted)
  int64_t macs = 0;    // multiply-accumulates per image
  // "kept": a BatchNormalization follows; "folded": none (BN absent or already folded).
  bool has_bn = false;
  std::string bn_node;
};

// Layers in node order. `shapes` maps value index to its shape for one image (batch 1),
// as computed by exec::infer_shapes.
std::vector<LayerInfo> describe_layers(const Graph& graph,
                                       const std::unordered_map<int, std::vector<int64_t>>& shapes);

}  // namespace mpq::ir
