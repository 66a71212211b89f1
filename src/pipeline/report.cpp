#include <fmt/format.h>

#include "mpq/allocation/cost_model.h"
#include "mpq/pipeline/compress.h"

extern "C" const char mpq_vega_js[], mpq_vega_js_end[];
extern "C" const char mpq_vega_lite_js[], mpq_vega_lite_js_end[];
extern "C" const char mpq_vega_embed_js[], mpq_vega_embed_js_end[];

namespace mpq::pipeline {
namespace {

using nlohmann::json;

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// JSON inside a <script> element: "</" would end the element.
std::string script_json(const json& j) {
  std::string s = j.dump();
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    out += s[i];
    if (s[i] == '<' && i + 1 < s.size() && s[i + 1] == '/') out += "\\";
  }
  return out;
}

double num(const json& j, const char* key) { return j[key].get<double>(); }
std::string bops(double v) { return allocation::format_cost(allocation::CostKind::kBops, v); }

// The rows every report shows: name, top-1, weight bytes, BOPs, average weight bits.
struct Point {
  std::string name, kind;
  double top1, size, bops, bits;
};

std::vector<Point> points(const json& r) {
  std::vector<Point> p;
  const json& e = r["evaluation"];
  p.push_back({"float", "float", num(e, "float_top1"), num(r["float"], "size_bytes"),
               num(r["float"], "bops"), 32});
  p.push_back({"mpq plan", "mpq", num(e, "top1"), num(r["quantized"], "size_bytes"),
               num(r["quantized"], "bops"), num(r["quantized"], "avg_w_bits")});
  for (const auto& b : r["baselines"])
    p.push_back({b["name"].get<std::string>(), "uniform", num(b, "top1"), num(b, "size_bytes"),
                 num(b, "bops"), num(b, "avg_w_bits")});
  return p;
}

// "+0.19 points, 95% CI [-0.07, +0.44]: inside the noise" for a paired comparison.
std::string paired_text(const json& d) {
  return fmt::format("{:+.2f} points, 95% CI [{:+.2f}, {:+.2f}]: {}", d["difference"].get<double>(),
                     d["ci95"][0].get<double>(), d["ci95"][1].get<double>(),
                     d["verdict"].get<std::string>());
}

// The mixed plan against the uniform baselines, one row per comparison: what, baseline, top-1
// of both, difference and interval, images only one of them gets right.
struct Comparison {
  std::string what, name;
  json d;
};
std::vector<Comparison> comparisons(const json& r) {
  std::vector<Comparison> out;
  if (!r.contains("comparison")) return out;
  const json& c = r["comparison"];
  if (c.contains("best_fitting"))
    out.push_back({"best uniform that fits", c["best_fitting"]["name"], c["best_fitting"]});
  if (c.contains("cheapest_above"))
    out.push_back({"cheapest uniform above", c["cheapest_above"]["name"], c["cheapest_above"]});
  return out;
}

std::string stage_line(const json& r) {
  std::string s;
  double total = 0;
  for (const auto& name : r["stage_order"]) {
    if (!r["stages"].contains(name)) continue;
    const json& st = r["stages"][name.get<std::string>()];
    total += st["seconds"].get<double>();
    s += fmt::format("{} {:.1f} s{}, ", name.get<std::string>(), st["seconds"].get<double>(),
                     st["reused"].get<bool>() ? " (reused)" : "");
  }
  return s + fmt::format("total {:.1f} s", total);
}

json schema(json spec) {
  spec["$schema"] = "https://vega.github.io/schema/vega-lite/v6.json";
  return spec;
}

json layer_axis() {
  return json{{"field", "layer"},
              {"type", "nominal"},
              {"sort", nullptr},
              {"title", "layer (execution order)"},
              {"axis", {{"labelAngle", -60}, {"labelLimit", 160}}}};
}

// [{"id": div id, "spec": Vega-Lite}], in page order.
json plot_specs(const json& r) {
  json specs = json::object();
  const json& layers = r["layers"];
  int width = std::max(480, 18 * static_cast<int>(layers.size()));

  json bits = json::array();
  for (const auto& l : layers) {
    bits.push_back({{"layer", l["name"]},
                    {"operand", "weights"},
                    {"bits", l["w_bits"]},
                    {"params", l["params"]}});
    bits.push_back({{"layer", l["name"]},
                    {"operand", "activations"},
                    {"bits", l["a_bits"]},
                    {"params", l["params"]}});
  }
  specs["plot-bits"] = schema(
      {{"title", "Bit-width per layer"},
       {"width", width},
       {"height", 220},
       {"data", {{"values", bits}}},
       {"mark", "bar"},
       {"encoding",
        {{"x", layer_axis()},
         {"xOffset", {{"field", "operand"}}},
         {"y", {{"field", "bits"}, {"type", "quantitative"}, {"scale", {{"domain", {0, 8}}}}}},
         {"color", {{"field", "operand"}, {"type", "nominal"}}},
         {"tooltip", json::array({{{"field", "layer"}},
                                  {{"field", "operand"}},
                                  {{"field", "bits"}},
                                  {{"field", "params"}}})}}}});

  json omega = json::array();
  for (const auto& l : layers)
    for (const auto& [b, v] : l["omega"].items())
      omega.push_back({{"layer", l["name"]}, {"width", "W" + b}, {"omega", v}});
  specs["plot-sensitivity"] =
      schema({{"title", fmt::format("Sensitivity Ω(b) by {} (log scale; zeros left out)",
                                    r["metric"].get<std::string>())},
              {"width", width},
              {"height", 240},
              {"data", {{"values", omega}}},
              {"transform", json::array({{{"filter", "datum.omega > 0"}}})},
              {"mark", {{"type", "line"}, {"point", true}}},
              {"encoding",
               {{"x", layer_axis()},
                {"y",
                 {{"field", "omega"},
                  {"type", "quantitative"},
                  {"scale", {{"type", "log"}}},
                  {"title", "Ω"}}},
                {"color", {{"field", "width"}, {"type", "nominal"}, {"title", "weight width"}}},
                {"tooltip", json::array({{{"field", "layer"}},
                                         {{"field", "width"}},
                                         {{"field", "omega"}, {"format", ".3g"}}})}}}});

  if (r.contains("imprint_profile")) {
    specs["plot-imprint"] = schema(
        {{"title", "Imprint accuracy after each layer (float model)"},
         {"width", width},
         {"height", 200},
         {"data", {{"values", r["imprint_profile"]}}},
         {"mark", {{"type", "line"}, {"point", true}}},
         {"encoding",
          {{"x", layer_axis()},
           {"y", {{"field", "accuracy"}, {"type", "quantitative"}, {"title", "top-1 %"}}}}}});
  }

  json pts = json::array();
  for (const auto& p : points(r))
    pts.push_back({{"name", p.name},
                   {"kind", p.kind},
                   {"top1", p.top1},
                   {"size", p.size},
                   {"bops", p.bops},
                   {"avg_bits", p.bits}});
  auto tradeoff = [&](const char* field, const char* title) {
    json enc{{"x",
              {{"field", field},
               {"type", "quantitative"},
               {"scale", {{"type", "log"}}},
               {"title", title}}},
             {"y",
              {{"field", "top1"},
               {"type", "quantitative"},
               {"scale", {{"zero", false}}},
               {"title", "top-1 %"}}}};
    json points_layer{{"mark", {{"type", "point"}, {"filled", true}, {"size", 90}}},
                      {"encoding",
                       {{"color", {{"field", "kind"}, {"type", "nominal"}}},
                        {"shape", {{"field", "kind"}, {"type", "nominal"}}},
                        {"tooltip", json::array({{{"field", "name"}},
                                                 {{"field", "top1"}},
                                                 {{"field", field}},
                                                 {{"field", "avg_bits"}}})}}}};
    json labels{{"mark", {{"type", "text"}, {"dx", 8}, {"align", "left"}}},
                {"encoding", {{"text", {{"field", "name"}}}}}};
    return schema({{"title", fmt::format("Top-1 against {}", title)},
                   {"width", 420},
                   {"height", 280},
                   {"data", {{"values", pts}}},
                   {"encoding", enc},
                   {"layer", json::array({points_layer, labels})}});
  };
  specs["plot-size"] = tradeoff("size", "weight bytes (packed weights + scales)");
  specs["plot-bops"] = tradeoff("bops", "bit operations per image");
  json ordered = json::array();
  for (const char* id : {"plot-bits", "plot-sensitivity", "plot-imprint", "plot-size", "plot-bops"})
    if (specs.contains(id)) ordered.push_back({{"id", id}, {"spec", specs[id]}});
  return ordered;
}

const char* kStyle = R"(
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 8px 0 16px; }
th, td { border-bottom: 1px solid #ddd; padding: 3px 10px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
code { background: #f4f4f4; padding: 1px 4px; }
.plot { margin: 16px 0; }
#status { color: #888; font-size: 12px; }
)";

// Runs after the libraries: renders every plot, then reports on <body> and in #status.
const char* kRender = R"(
const errors = [];
window.addEventListener('error', e => errors.push(String(e.message)));
const consoleError = console.error;
console.error = (...args) => { errors.push(args.join(' ')); consoleError(...args); };
Promise.all(plots.map(p => vegaEmbed('#' + p.id, p.spec, {renderer: 'svg', actions: false})))
  .catch(e => errors.push(String(e)))
  .finally(() => {
    const rendered = document.querySelectorAll('.plot svg.marks').length;
    document.body.dataset.plots = rendered;
    document.body.dataset.errors = errors.length;
    document.getElementById('status').textContent =
        `${rendered} of ${plots.length} plots rendered` + (errors.length ? `; errors: ${errors.join('; ')}` : '');
  });
)";

}  // namespace

std::string report_text(const json& r) {
  const json& e = r["evaluation"];
  std::string t = fmt::format("\nmpq compress {} → {}\n", r["model"].get<std::string>(),
                              r["outdir"].get<std::string>());
  t += fmt::format("  {:<22} {:>14} {:>14}\n", "", "float", "quantized");
  t += fmt::format("  {:<22} {:>13.2f}% {:>13.2f}%   ({:+.2f}; {} of {} predictions changed)\n",
                   "top-1", num(e, "float_top1"), num(e, "top1"),
                   num(e, "top1") - num(e, "float_top1"), e["changed"].get<int64_t>(),
                   e["images"].get<int64_t>());
  t += fmt::format("  {:<22} {:>14} {:>14}   ({:.2f}x smaller: ONNX file vs model.mpq)\n",
                   "size, bytes", r["float"]["file_bytes"].get<int64_t>(),
                   r["quantized"]["file_bytes"].get<int64_t>(),
                   num(r["float"], "file_bytes") / num(r["quantized"], "file_bytes"));
  t += fmt::format("  {:<22} {:>14} {:>14}   ({:.2f}x fewer)\n", "BOPs per image",
                   bops(num(r["float"], "bops")), bops(num(r["quantized"], "bops")),
                   num(r["float"], "bops") / num(r["quantized"], "bops"));
  t += fmt::format("  {:<22} {:>14} {:>14.3f}\n", "average weight bits", 32,
                   num(r["quantized"], "avg_w_bits"));
  for (const auto& b : r["budgets"])
    t += fmt::format("  budget {}: {} ≤ {}\n", b["text"].get<std::string>(),
                     b["value_text"].get<std::string>(), b["limit_text"].get<std::string>());
  if (!r["baselines"].empty()) {
    t += "\n  uniform baselines, same calibration and rounding:\n";
    for (const auto& b : r["baselines"])
      t += fmt::format("  {:<22} {:>13.2f}%   {:.0f} bytes of weights, {}{}\n",
                       b["name"].get<std::string>(), num(b, "top1"), num(b, "size_bytes"),
                       bops(num(b, "bops")),
                       !b.contains("fits")     ? ""
                       : b["fits"].get<bool>() ? "; fits the budgets"
                                               : "; above the budgets");
  }
  t += fmt::format("\n  mixed plan, paired on the same {} images (bootstrap, 10000 resamples):\n",
                   e["images"].get<int64_t>());
  if (r["comparison"].contains("note"))
    t += fmt::format("  {}\n", r["comparison"]["note"].get<std::string>());
  for (const Comparison& c : comparisons(r))
    t += fmt::format("  vs {} ({}): {} ({} images only the mixed plan gets right, {} only {})\n",
                     c.what, c.name, paired_text(c.d), c.d["a_only"].get<int64_t>(),
                     c.d["b_only"].get<int64_t>(), c.name);
  t += fmt::format("\n  stage times: {}; peak memory {:.0f} MB\n", stage_line(r),
                   num(r, "peak_rss_mb"));
  t += fmt::format(
      "  wrote {}/{{plan.json, sensitivity.json, model.mpq, model.qcdq.onnx, encodings.json, "
      "report.md, report.html}}\n",
      r["outdir"].get<std::string>());
  return t;
}

std::string report_markdown(const json& r) {
  const json& e = r["evaluation"];
  std::string md = fmt::format("# mpq compress: {}\n\n", r["model"].get<std::string>());
  md += fmt::format(
      "Sensitivity `{}`, allocation `{}` under {}, rounding `{}`; evaluated on `{}` ({} "
      "images).\n\n",
      r["metric"].get<std::string>(), r["config"]["method"].get<std::string>(),
      r["config"]["budgets"].dump(), r["rounding"].get<std::string>(), e["data"].get<std::string>(),
      e["images"].get<int64_t>());
  md += "| | float | quantized |\n|---|---|---|\n";
  md += fmt::format("| top-1 | {:.2f}% | {:.2f}% ({} predictions changed) |\n",
                    num(e, "float_top1"), num(e, "top1"), e["changed"].get<int64_t>());
  md += fmt::format("| top-5 | {:.2f}% | {:.2f}% |\n", num(e, "float_top5"), num(e, "top5"));
  md += fmt::format("| file size, bytes | {} (ONNX) | {} (model.mpq, {:.2f}x smaller) |\n",
                    r["float"]["file_bytes"].get<int64_t>(),
                    r["quantized"]["file_bytes"].get<int64_t>(),
                    num(r["float"], "file_bytes") / num(r["quantized"], "file_bytes"));
  md += fmt::format("| weight bytes (cost model) | {:.0f} | {:.0f} |\n",
                    num(r["float"], "size_bytes"), num(r["quantized"], "size_bytes"));
  md += fmt::format("| BOPs per image | {} | {} ({:.2f}x fewer) |\n", bops(num(r["float"], "bops")),
                    bops(num(r["quantized"], "bops")),
                    num(r["float"], "bops") / num(r["quantized"], "bops"));
  md += fmt::format("| average weight bits | 32 | {:.3f} |\n\n", num(r["quantized"], "avg_w_bits"));
  for (const auto& b : r["budgets"])
    md += fmt::format("Budget `{}`: {} ≤ {}.\n", b["text"].get<std::string>(),
                      b["value_text"].get<std::string>(), b["limit_text"].get<std::string>());
  md += "\n## Against uniform widths (same calibration and rounding)\n\n";
  md += "| plan | top-1 | weight bytes | BOPs | avg weight bits |\n|---|---|---|---|---|\n";
  for (const auto& p : points(r))
    md += fmt::format("| {} | {:.2f} | {:.0f} | {} | {:.3f} |\n", p.name, p.top1, p.size,
                      bops(p.bops), p.bits);
  md += fmt::format(
      "\n## Did the mixed plan pay?\n\nPaired on the same {} images: the difference in top-1 "
      "and its 95% bootstrap interval (10000 resamples of the images).\n\n",
      e["images"].get<int64_t>());
  if (r.contains("comparison") && r["comparison"].contains("note"))
    md += r["comparison"]["note"].get<std::string>() + ".\n\n";
  auto rows = comparisons(r);
  if (!rows.empty()) {
    md +=
        "| mixed plan vs | baseline | top-1 mixed | top-1 baseline | difference | only mixed "
        "right | only baseline right |\n|---|---|---|---|---|---|---|\n";
    for (const auto& c : rows)
      md += fmt::format("| {} | {} | {:.2f} | {:.2f} | {} | {} | {} |\n", c.what, c.name,
                        num(c.d, "top1_a"), num(c.d, "top1_b"), paired_text(c.d),
                        c.d["a_only"].get<int64_t>(), c.d["b_only"].get<int64_t>());
  }
  md += "\n## Per layer\n\n| layer | params | MACs | W | A |";
  std::vector<std::string> widths;
  if (!r["layers"].empty())
    for (const auto& [b, v] : r["layers"][0]["omega"].items()) widths.push_back(b);
  for (const auto& b : widths) md += fmt::format(" Ω({}) |", b);
  md += "\n|---|---|---|---|---|";
  for (size_t i = 0; i < widths.size(); ++i) md += "---|";
  md += "\n";
  for (const auto& l : r["layers"]) {
    md += fmt::format("| {} | {} | {} | {} | {} |", l["name"].get<std::string>(),
                      l["params"].get<int64_t>(), l["macs"].get<int64_t>(), l["w_bits"].get<int>(),
                      l["a_bits"].get<int>());
    for (const auto& b : widths) md += fmt::format(" {:.3g} |", l["omega"][b].get<double>());
    md += "\n";
  }
  md += fmt::format("\nStage times: {}.\n", stage_line(r));
  return md;
}

std::string report_html(const json& r) {
  const json& e = r["evaluation"];
  std::string h = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n";
  h += fmt::format("<title>mpq compress: {}</title>\n<style>{}</style>\n",
                   html_escape(r["model"].get<std::string>()), kStyle);
  using Asset = std::pair<const char*, const char*>;  // clang deduces char[] from the arrays
  for (auto [begin, end] :
       {Asset{mpq_vega_js, mpq_vega_js_end}, Asset{mpq_vega_lite_js, mpq_vega_lite_js_end},
        Asset{mpq_vega_embed_js, mpq_vega_embed_js_end}})
    h += "<script>" + std::string(begin, end) + "</script>\n";
  h += "</head><body>\n";
  h += fmt::format("<h1>mpq compress: {}</h1>\n", html_escape(r["model"].get<std::string>()));
  h += fmt::format(
      "<p>Sensitivity <code>{}</code>, allocation <code>{}</code> under <code>{}</code>, "
      "rounding <code>{}</code>; evaluated on <code>{}</code> ({} images).</p>\n",
      html_escape(r["metric"].get<std::string>()),
      html_escape(r["config"]["method"].get<std::string>()),
      html_escape(r["config"]["budgets"].dump()), html_escape(r["rounding"].get<std::string>()),
      html_escape(e["data"].get<std::string>()), e["images"].get<int64_t>());
  h += "<table><tr><th></th><th>float</th><th>quantized</th></tr>\n";
  h += fmt::format(
      "<tr><td>top-1</td><td>{:.2f}%</td><td>{:.2f}% ({} predictions "
      "changed)</td></tr>\n",
      num(e, "float_top1"), num(e, "top1"), e["changed"].get<int64_t>());
  h += fmt::format("<tr><td>file size, bytes</td><td>{}</td><td>{} ({:.2f}x smaller)</td></tr>\n",
                   r["float"]["file_bytes"].get<int64_t>(),
                   r["quantized"]["file_bytes"].get<int64_t>(),
                   num(r["float"], "file_bytes") / num(r["quantized"], "file_bytes"));
  h += fmt::format("<tr><td>BOPs per image</td><td>{}</td><td>{}</td></tr>\n",
                   bops(num(r["float"], "bops")), bops(num(r["quantized"], "bops")));
  h += fmt::format("<tr><td>average weight bits</td><td>32</td><td>{:.3f}</td></tr></table>\n",
                   num(r["quantized"], "avg_w_bits"));
  json plots = plot_specs(r);
  for (const auto& p : plots)
    h += fmt::format("<div class=\"plot\" id=\"{}\"></div>\n", p["id"].get<std::string>());
  h += "<h2>Plans</h2>\n<table><tr><th>plan</th><th>top-1 %</th><th>weight bytes</th>"
       "<th>BOPs</th><th>avg weight bits</th></tr>\n";
  for (const auto& p : points(r))
    h += fmt::format(
        "<tr><td>{}</td><td>{:.2f}</td><td>{:.0f}</td><td>{}</td>"
        "<td>{:.3f}</td></tr>\n",
        html_escape(p.name), p.top1, p.size, bops(p.bops), p.bits);
  h += fmt::format(
      "</table>\n<h2>Did the mixed plan pay?</h2>\n<p>Paired on the same {} images: the "
      "difference in top-1 and its 95% bootstrap interval (10000 resamples of the images).</p>\n",
      e["images"].get<int64_t>());
  if (r.contains("comparison") && r["comparison"].contains("note"))
    h += "<p>" + html_escape(r["comparison"]["note"].get<std::string>()) + ".</p>\n";
  auto rows = comparisons(r);
  if (!rows.empty()) {
    h += "<table><tr><th>mixed plan vs</th><th>baseline</th><th>top-1 mixed</th><th>top-1 "
         "baseline</th><th>difference</th><th>only mixed right</th><th>only baseline "
         "right</th></tr>\n";
    for (const auto& c : rows)
      h += fmt::format(
          "<tr><td>{}</td><td>{}</td><td>{:.2f}</td><td>{:.2f}</td><td>{}</td><td>{}</td>"
          "<td>{}</td></tr>\n",
          c.what, html_escape(c.name), num(c.d, "top1_a"), num(c.d, "top1_b"),
          html_escape(paired_text(c.d)), c.d["a_only"].get<int64_t>(),
          c.d["b_only"].get<int64_t>());
    h += "</table>\n";
  }
  h += "<h2>Per layer</h2>\n<table><tr><th>layer</th><th>params</th><th>MACs</th>"
       "<th>W</th><th>A</th></tr>\n";
  for (const auto& l : r["layers"])
    h += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                     html_escape(l["name"].get<std::string>()), l["params"].get<int64_t>(),
                     l["macs"].get<int64_t>(), l["w_bits"].get<int>(), l["a_bits"].get<int>());
  h += fmt::format("</table>\n<p>Stage times: {}.</p>\n<p id=\"status\">rendering…</p>\n",
                   html_escape(stage_line(r)));
  h += "<script>\nconst plots = " + script_json(plots) + ";\n" + kRender + "</script>\n";
  h += "</body></html>\n";
  return h;
}

}  // namespace mpq::pipeline
