// mpq train: trains the small ResNet that is mpq's embedded default (BN kept) and writes ONNX.
#include "mpq/train/train.h"

#include <fmt/format.h>

#include "common.h"
#include "mpq/core/error.h"
#include "mpq/core/progress.h"
#include "mpq/export/onnx_writer.h"

namespace mpq::cli {

void add_train(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "train", "train the embedded default: a small ResNet on Fashion-MNIST, written as ONNX");
  struct Opts {
    std::string out = "fashion_resnet.onnx";
    std::string train_spec = kFashionTrain, test_spec = kFashionTest;
    train::TrainOptions train;
    train::ResNetConfig net;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("-o,--output", o->out, "output ONNX file");
  cmd->add_option("--data", o->train_spec, "training data");
  cmd->add_option("--test", o->test_spec, "test data");
  cmd->add_option("--epochs", o->train.epochs)->check(CLI::PositiveNumber);
  cmd->add_option("--lr", o->train.lr)->check(CLI::PositiveNumber);
  cmd->add_option("--batch", o->train.batch_size)->check(CLI::PositiveNumber);
  cmd->add_option("--widths", o->net.widths, "channels per stage")->delimiter(',');
  cmd->add_option("--blocks", o->net.blocks_per_stage, "residual blocks per stage");
  cmd->add_option("--seed", o->train.seed);
  auto json = std::make_shared<bool>(false);
  cmd->add_flag("--json", *json, "print one JSON object with the results");
  cmd->callback([o, json] {
    o->net.seed = o->train.seed;
    ir::Graph graph = train::build_resnet(o->net);
    graph.source = o->out;
    graph.metadata["mpq.mean"] = "0.2860";
    graph.metadata["mpq.std"] = "0.3530";
    graph.metadata["mpq.dataset"] = "fashion-mnist";
    graph.metadata["mpq.trained_by"] =
        fmt::format("mpq train --epochs {} --lr {} --batch {} --widths {} --blocks {} --seed {}",
                    o->train.epochs, o->train.lr, o->train.batch_size,
                    fmt::join(o->net.widths, ","), o->net.blocks_per_stage, o->train.seed);
    data::Preprocess pre{0, 0, {0.2860}, {0.3530}};
    data::DataSpec train_spec = data::parse_spec(o->train_spec);
    data::DataSpec test_spec = data::parse_spec(o->test_spec);
    auto train_set = data::open_dataset(train_spec);
    auto test_set = data::open_dataset(test_spec);
    data::Loader train_loader(*train_set, train_spec, pre, o->train.batch_size);
    data::Loader test_loader(*test_set, test_spec, pre, 256);
    log_line(fmt::format("training on {} images, testing on {}", train_loader.size(),
                         test_loader.size()));
    train::TrainResult r = train::train(graph, train_loader, test_loader, o->train);
    graph.metadata["mpq.test_top1"] = fmt::format("{:.2f}", r.test_top1);
    export_::save_onnx(graph, o->out);
    if (*json) {
      print_json({{"output", o->out},
                  {"test_top1", r.test_top1},
                  {"epochs", o->train.epochs},
                  {"seconds", r.seconds}});
      return;
    }
    fmt::print("test top-1 {:.2f}% after {} epochs ({:.0f} s); wrote {}\n", r.test_top1,
               o->train.epochs, r.seconds, o->out);
  });
}

}  // namespace mpq::cli
