#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/Generator.h>
#include <fmt/format.h>

#include "mpq/train/train.h"

namespace mpq::train {
namespace {

class Builder {
 public:
  explicit Builder(uint64_t seed) : gen_(at::make_generator<at::CPUGeneratorImpl>(seed)) {}

  int param(const std::string& name, at::Tensor t) {
    int v = g.add_value(name);
    g.set_initializer(v, t);
    return v;
  }
  int node(const std::string& name, const std::string& op, std::vector<int> inputs,
           std::map<std::string, ir::AttrValue> attrs = {}) {
    int out = g.add_value(name + "_output");
    g.add_node(ir::Node{name, op, std::move(inputs), {out}, std::move(attrs)});
    return out;
  }
  int conv(const std::string& name, int x, int64_t cin, int64_t cout, int64_t k, int64_t stride) {
    // Kaiming normal (fan_out, ReLU gain), as torchvision's ResNet.
    double std = std::sqrt(2.0 / static_cast<double>(cout * k * k));
    int w = param(name + ".weight", at::normal(0.0, std, {cout, cin, k, k}, gen_));
    int64_t p = k / 2;
    return node(name, "Conv", {x, w},
                {{"kernel_shape", std::vector<int64_t>{k, k}},
                 {"strides", std::vector<int64_t>{stride, stride}},
                 {"pads", std::vector<int64_t>{p, p, p, p}},
                 {"dilations", std::vector<int64_t>{1, 1}},
                 {"group", int64_t{1}}});
  }
  int bn(const std::string& name, int x, int64_t c) {
    return node(name, "BatchNormalization",
                {x, param(name + ".weight", at::ones({c})), param(name + ".bias", at::zeros({c})),
                 param(name + ".running_mean", at::zeros({c})),
                 param(name + ".running_var", at::ones({c}))},
                {{"epsilon", 1e-5}, {"momentum", 0.9}});
  }
  int relu(const std::string& name, int x) { return node(name, "Relu", {x}); }

  ir::Graph g;
  at::Generator gen_;
};

}  // namespace

ir::Graph build_resnet(const ResNetConfig& c) {
  Builder b(c.seed);
  int x = b.g.add_value("input");
  b.g.values[x].shape = {-1, c.in_channels, c.image_size, c.image_size};
  b.g.inputs.push_back(x);
  int64_t cin = c.widths[0];
  int h =
      b.relu("stem.relu", b.bn("stem.bn", b.conv("stem.conv", x, c.in_channels, cin, 3, 1), cin));
  for (size_t s = 0; s < c.widths.size(); ++s) {
    int64_t cout = c.widths[s];
    for (int64_t k = 0; k < c.blocks_per_stage; ++k) {
      std::string p = fmt::format("layer{}.{}", s + 1, k);
      int64_t stride = (s > 0 && k == 0) ? 2 : 1;
      int y = b.relu(p + ".relu1",
                     b.bn(p + ".bn1", b.conv(p + ".conv1", h, cin, cout, 3, stride), cout));
      y = b.bn(p + ".bn2", b.conv(p + ".conv2", y, cout, cout, 3, 1), cout);
      int shortcut = h;
      if (stride != 1 || cin != cout)
        shortcut =
            b.bn(p + ".shortcut.bn", b.conv(p + ".shortcut.conv", h, cin, cout, 1, stride), cout);
      h = b.relu(p + ".relu2", b.node(p + ".add", "Add", {y, shortcut}));
      cin = cout;
    }
  }
  h = b.node("pool", "GlobalAveragePool", {h});
  h = b.node("flatten", "Flatten", {h}, {{"axis", int64_t{1}}});
  double bound = 1.0 / std::sqrt(static_cast<double>(cin));
  int w = b.param("fc.weight", at::empty({c.classes, cin}).uniform_(-bound, bound, b.gen_));
  int bias = b.param("fc.bias", at::empty({c.classes}).uniform_(-bound, bound, b.gen_));
  int logits = b.g.add_value("logits");
  b.g.values[logits].shape = {-1, c.classes};
  b.g.add_node(ir::Node{"fc", "Gemm", {h, w, bias}, {logits}, {{"transB", int64_t{1}}}});
  b.g.outputs.push_back(logits);
  b.g.topo_sort();
  return std::move(b.g);
}

}  // namespace mpq::train
