// Vega, Vega-Lite and vega-embed (npm packages in tools/report), linked into the binary so
// that the report.html `mpq compress` writes is one self-contained file that opens offline.
// Each file becomes the bytes between `symbol` and `symbol_end` (see report.cpp).
#define MPQ_ASSET(symbol, file)      \
  ".global " #symbol                 \
  "\n"                               \
  ".balign 16\n" #symbol             \
  ":\n"                              \
  ".incbin \"" MPQ_VEGA_DIR "/" file \
  "\"\n"                             \
  ".global " #symbol "_end\n" #symbol "_end:\n"

// clang-format off
__asm__(
    ".section .rodata\n"
    MPQ_ASSET(mpq_vega_js, "vega/build/vega.min.js")
    MPQ_ASSET(mpq_vega_lite_js, "vega-lite/build/vega-lite.min.js")
    MPQ_ASSET(mpq_vega_embed_js, "vega-embed/build/vega-embed.min.js")
    ".byte 0\n"
    ".previous\n");
// clang-format on
