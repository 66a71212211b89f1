// Progress on long work: a bar redrawn in place on a terminal, a plain line every
// ~10% when stderr is a log file. Never writes to stdout (reserved for results / --json).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace mpq {

class Progress {
 public:
  Progress(std::string label, int64_t total, bool enabled = true);
  ~Progress();
  void advance(int64_t n, const std::string& status = "");
  void finish(const std::string& status = "");

 private:
  void draw(bool final);
  std::string label_;
  std::string status_;
  int64_t total_;
  int64_t done_ = 0;
  int last_decile_ = -1;
  bool enabled_;
  bool tty_;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

// Logging to stderr, one line, prefixed; quiet mode for --json.
void set_quiet(bool quiet);
bool quiet();
void log_line(const std::string& line);

}  // namespace mpq
