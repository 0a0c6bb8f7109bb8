#!/usr/bin/env python3
"""GGUF fixtures for the 5-bit block formats (tests/gguf_blockq.rs and tests/formats.rs).

- crates/plumb-nn/tests/fixtures/llama_q5.gguf: the tiny random Llama of llama_rope.gguf
  (scripts/make_rope_fixtures.py; metadata and tensors copied) with its attention matrices
  quantized to Q5_0 and its MLP matrices to Q5_1 by the gguf package's reference quantizer, as
  llama.cpp's quantizer falls back to them where rows are not whole 256-value k-quant blocks
  (a Q4_K_M file of SmolLM2-135M holds 166 Q5_0 matrices). Embeddings, norms and rope_freqs stay
  f32. The package refuses to write the stand-in vocabulary's empty `tokenizer.ggml.merges`,
  so empty arrays are packed here (type, element type string, count 0).

Rerun:  /tmp/peers-venv/bin/python scripts/make_blockq_fixtures.py   (gguf 0.19, numpy)
"""
from pathlib import Path

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf.quants import quantize

FIX = Path(__file__).resolve().parent.parent / "crates" / "plumb-nn" / "tests" / "fixtures"


def pack_empty_arrays():
    pack = gguf.GGUFWriter._pack_val

    def packed(self, val, vtype, add_vtype, sub_type=None):
        if vtype == gguf.GGUFValueType.ARRAY and len(val) == 0:
            head = self._pack("I", vtype) if add_vtype else b""
            return head + self._pack("I", gguf.GGUFValueType.STRING) + self._pack("Q", 0)
        return pack(self, val, vtype, add_vtype, sub_type)

    gguf.GGUFWriter._pack_val = packed


def main():
    pack_empty_arrays()
    src = gguf.GGUFReader(FIX / "llama_rope.gguf")
    arch = src.fields["general.architecture"].contents()
    w = gguf.GGUFWriter(FIX / "llama_q5.gguf", arch)
    for name, field in src.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture":
            continue
        vtype = field.types[0]
        sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY and len(field.types) > 1 else None
        w.add_key_value(name, field.contents(), vtype, sub_type=sub)
    counts = {}
    for t in src.tensors:
        data = np.array(t.data, dtype=np.float32)
        qt = None
        if data.ndim == 2 and t.name.startswith("blk."):
            qt = T.Q5_0 if ".attn_" in t.name else T.Q5_1
        if qt is None:
            w.add_tensor(t.name, data)
        else:
            q = quantize(data, qt)
            w.add_tensor(t.name, q, raw_shape=q.shape, raw_dtype=qt)
        counts[qt.name if qt else "F32"] = counts.get(qt.name if qt else "F32", 0) + 1
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print("llama_q5.gguf:", (FIX / "llama_q5.gguf").stat().st_size, "bytes,", counts)


if __name__ == "__main__":
    main()
