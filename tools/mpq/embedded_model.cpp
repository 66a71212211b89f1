// The embedded default model (models/fashion_resnet.onnx, made by `mpq train`), linked into
// the binary so `mpq eval` / `mpq compress` work with no arguments on any machine.
__asm__(
    ".section .rodata\n"
    ".global mpq_embedded_model\n"
    ".balign 16\n"
    "mpq_embedded_model:\n"
    ".incbin \"" MPQ_EMBEDDED_MODEL
    "\"\n"
    ".global mpq_embedded_model_end\n"
    "mpq_embedded_model_end:\n"
    ".byte 0\n"
    ".previous\n");
