// The report `mpq compress` writes, from its results JSON (compress.cpp builds it): a Markdown
// file, and one self-contained HTML page with Vega-Lite plots (Vega, Vega-Lite and vega-embed
// are linked into the binary and inlined, so the page opens offline).
//
// The page renders with renderer "svg". When every plot has rendered it sets, on <body>,
// data-plots (how many) and data-errors (console errors and exceptions seen), and writes the
// same into #status; the headless-browser test reads them.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace mpq::cli {

std::string report_markdown(const nlohmann::json& results);
std::string report_html(const nlohmann::json& results);

}  // namespace mpq::cli
