// mpq: mixed-precision quantization of CNNs. One file per subcommand in this folder.
#include <ATen/Parallel.h>
#include <c10/util/Exception.h>
#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include "common.h"
#include "mpq/core/error.h"
#include "mpq/core/memory.h"
#include "mpq/core/progress.h"
#include "runtime_cli.h"

int main(int argc, char** argv) {
  mpq::tune_allocator();
  CLI::App app{"mpq: mixed-precision quantization of CNNs"};
  app.require_subcommand(1);
  bool verbose = false;
  int threads = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  app.add_flag("--verbose", verbose, "show backtraces of internal errors");
  app.add_option("--threads", threads, "threads for ATen (default: all cores)")
      ->check(CLI::PositiveNumber);
  app.set_version_flag("--version", "mpq 0.1");
  mpq::cli::add_inspect(app);
  mpq::cli::add_eval(app);
  mpq::cli::add_compare(app);
  mpq::cli::add_train(app);
  mpq::cli::add_quantize(app);
  mpq::cli::add_sensitivity(app);
  mpq::cli::add_search(app);
  mpq::cli::add_compress(app);
  mpq::cli::add_runtime_commands(app);
  app.parse_complete_callback([&] { at::set_num_threads(threads); });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const mpq::Error& e) {
    fmt::print(stderr, "mpq: error: {}\n", e.what());
    return 1;
  } catch (const c10::Error& e) {
    fmt::print(stderr, "mpq: error: {}\n",
               verbose ? std::string(e.what()) : e.what_without_backtrace());
    return 2;
  } catch (const std::exception& e) {
    fmt::print(stderr, "mpq: error: {}\n", e.what());
    return 2;
  }
  return 0;
}
