#include "mpq/core/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>

namespace mpq {
namespace {
bool g_quiet = false;
}

void set_quiet(bool q) { g_quiet = q; }
bool quiet() { return g_quiet; }
void log_line(const std::string& line) {
  if (!g_quiet) fmt::print(stderr, "{}\n", line);
}

Progress::Progress(std::string label, int64_t total, bool enabled)
    : label_(std::move(label)),
      total_(total > 0 ? total : 1),
      enabled_(enabled && !g_quiet),
      tty_(isatty(fileno(stderr)) != 0),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

Progress::~Progress() {
  if (!finished_ && done_ > 0) finish();
}

void Progress::advance(int64_t n, const std::string& status) {
  done_ += n;
  if (!status.empty()) status_ = status;
  draw(false);
}

void Progress::finish(const std::string& status) {
  if (finished_) return;
  if (!status.empty()) status_ = status;
  done_ = total_;
  draw(true);
  finished_ = true;
}

void Progress::draw(bool final) {
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  double elapsed = std::chrono::duration<double>(now - start_).count();
  double frac = std::min(1.0, static_cast<double>(done_) / static_cast<double>(total_));
  if (tty_) {
    if (!final && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    const int width = 30;
    int filled = static_cast<int>(frac * width);
    double eta = frac > 0 ? elapsed / frac - elapsed : 0.0;
    fmt::print(stderr, "\r{} [{}{}] {:3.0f}% {}/{} {:.1f}s eta {:.1f}s {}\033[K", label_,
               std::string(filled, '#'), std::string(width - filled, '.'), frac * 100, done_,
               total_, elapsed, eta, status_);
    if (final) fmt::print(stderr, "\n");
  } else {
    int decile = static_cast<int>(frac * 10);
    if (decile == last_decile_ && !final) return;
    if (final && decile == last_decile_ && decile == 10) return;
    last_decile_ = decile;
    fmt::print(stderr, "{}: {:.0f}% ({}/{}) {:.1f}s {}\n", label_, frac * 100, done_, total_,
               elapsed, status_);
  }
}

}  // namespace mpq
