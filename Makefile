# Quick start on a fresh machine: `make demo` and `make test`; each sets up .venv from nothing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BUILD ?= build
# One CUDA architecture keeps CI fast; release builds use the CMake default (80;86;89;90 + PTX).
CUDA_ARCHS ?= 80

.PHONY: venv test demo kernels clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[cpu,export,dev]"
	touch $@

venv: $(VENV)/.installed

kernels:
	@if command -v cmake >/dev/null && command -v nvcc >/dev/null; then \
	  cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=$(CUDA_ARCHS) >/dev/null && \
	  cmake --build $(BUILD) -j2; \
	else echo "kernels: cmake or nvcc missing, CUDA build skipped (CPU-reference tests will skip)"; fi

test: venv
	$(PY) -m pytest tests

demo: venv
	$(PY) demo.py

clean:
	rm -rf $(BUILD) $(VENV) .pytest_cache
