// What every fuzz target asserts of a reader that throws: the only exception is mpq::Error,
// and its message is one line naming the file. Anything else escaping is a finding (abort).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <initializer_list>
#include <string>

#include "mpq/core/error.h"

namespace mpq::fuzz {

// `sources`: the names of the files read; the message must name one of them.
template <typename F>
void expect_clean(std::initializer_list<std::string> sources, F&& f) {
  try {
    f();
  } catch (const mpq::Error& e) {
    const std::string message = e.what();
    bool named = false;
    for (const std::string& s : sources) named = named || message.find(s) != std::string::npos;
    if (message.find('\n') != std::string::npos || !named) {
      std::fprintf(stderr, "error is not one line naming %s: '%s'\n", sources.begin()->c_str(),
                   message.c_str());
      std::abort();
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "escaped as a non-mpq exception: %s\n", e.what());
    std::abort();
  }
}

template <typename F>
void expect_clean(const std::string& source, F&& f) {
  expect_clean({source}, std::forward<F>(f));
}

}  // namespace mpq::fuzz
