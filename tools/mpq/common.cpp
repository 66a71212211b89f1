#include "common.h"

#include <fmt/format.h>

#include <iostream>
#include <sstream>

#include "mpq/core/error.h"
#include "mpq/eval/evaluate.h"
#include "mpq/import/onnx_importer.h"

extern "C" const char mpq_embedded_model[];
extern "C" const char mpq_embedded_model_end[];

namespace mpq::cli {
namespace {

std::vector<double> parse_list(const std::string& text, const std::string& key) {
  std::vector<double> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    try {
      out.push_back(std::stod(item));
    } catch (const std::exception&) {
      fail(ErrorCode::kBadFile, "model metadata '{}' = '{}': not a list of numbers", key, text);
    }
  }
  return out;
}

}  // namespace

ir::Graph load_model(const std::string& path) {
  if (!path.empty()) return import::load_onnx(path);
  std::string bytes(mpq_embedded_model, mpq_embedded_model_end - mpq_embedded_model);
  return import::parse_onnx(bytes, kEmbeddedName, ".");
}

void DataFlags::add(CLI::App& app, const std::string& what) {
  app.add_option("--data", spec,
                 what +
                     " (cifar10:FILE, idx:IMAGES,LABELS, imagefolder:DIR; "
                     "suffix @N for the first N, @N:SEED for a random N)");
  app.add_option("--resize", resize, "resize the short side to N pixels (bilinear)")
      ->check(CLI::PositiveNumber);
  app.add_option("--crop", crop, "centre crop N x N")->check(CLI::PositiveNumber);
  app.add_option("--mean", mean, "per-channel mean of pixels in [0,1], e.g. 0.5,0.5,0.5")
      ->delimiter(',');
  app.add_option("--std", std, "per-channel std, e.g. 0.5,0.5,0.5")->delimiter(',');
  app.add_option("--batch", batch, "batch size")->check(CLI::PositiveNumber);
}

data::Preprocess DataFlags::preprocess(const ir::Graph& model, const std::string& kind) const {
  data::Preprocess p = data::default_preprocess(kind);
  auto meta = [&](const char* key) -> std::optional<std::vector<double>> {
    auto it = model.metadata.find(key);
    if (it == model.metadata.end()) return std::nullopt;
    return parse_list(it->second, key);
  };
  if (auto m = meta("mpq.mean")) p.mean = *m;
  if (auto s = meta("mpq.std")) p.std = *s;
  if (resize >= 0) p.resize = resize;
  if (crop >= 0) p.crop = crop;
  if (!mean.empty()) p.mean = mean;
  if (!std.empty()) p.std = std;
  for (double s : p.std)
    MPQ_CHECK(s > 0, ErrorCode::kInvalidArgument, "--std {}: every value must be positive", s);
  return p;
}

Data open_data(const DataFlags& flags, const ir::Graph& model) {
  Data d;
  d.spec = data::parse_spec(flags.spec);
  d.dataset = data::open_dataset(d.spec);
  data::Preprocess pre = flags.preprocess(model, d.spec.kind);
  d.loader = std::make_unique<data::Loader>(*d.dataset, d.spec, pre, flags.batch);
  eval::check_data_fits(model, *d.dataset, *d.loader, pre, d.spec.text);
  return d;
}

void print_json(const nlohmann::json& j) { std::cout << j.dump() << std::endl; }

}  // namespace mpq::cli
