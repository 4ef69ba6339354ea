# Quick start on a fresh machine: `make demo` and `make test`; each sets up .venv from nothing.
# The venv includes TensorRT-RTX (the `rtx` extra, ~220 MB): a real TensorRT-family builder for the tests and
# the demo's ahead-of-time plan; it needs no GPU.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Triton serving lives in its own environment: nvidia-pytriton's server needs numpy < 2 (see runtime/README.md).
SERVE_VENV ?= .venv-serve
SERVE_PY := $(SERVE_VENV)/bin/python
BUILD ?= build/kernels
# One CUDA architecture keeps CI fast; release builds use the CMake default (80;86;89;90 + PTX).
CUDA_ARCHS ?= 80
# Point at TensorRT headers (e.g. TensorRT/include) to also compile the plugin; libraries are optional.
TensorRT_INCLUDE_DIR ?=

.PHONY: venv serve-venv test demo kernels clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[cpu,export,dev,rtx]"
	touch $@

venv: $(VENV)/.installed

$(SERVE_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(SERVE_VENV)
	$(SERVE_PY) -m pip install -q --upgrade pip
	$(SERVE_PY) -m pip install -q -e ".[serve,dev]"
	touch $@

serve-venv: $(SERVE_VENV)/.installed

# CUDA kernels (+ the plugin when TensorRT headers are given) with nvcc; the CPU reference is built by the
# kernels tests themselves (kernels/build.py), so a machine without nvcc still runs them.
kernels:
	@if command -v cmake >/dev/null && command -v nvcc >/dev/null; then \
	  cmake -S . -B $(BUILD) $$(command -v ninja >/dev/null && echo -G Ninja) -DCMAKE_BUILD_TYPE=Release \
	    -DPython3_EXECUTABLE=$(abspath $(PY)) -DCMAKE_CUDA_ARCHITECTURES=$(CUDA_ARCHS) $(if $(TensorRT_INCLUDE_DIR),-DTensorRT_INCLUDE_DIR=$(TensorRT_INCLUDE_DIR)) >/dev/null && \
	  cmake --build $(BUILD) -j2; \
	else echo "kernels: cmake or nvcc missing, CUDA build skipped"; fi

test: venv serve-venv kernels
	$(PY) -m pytest tests --ignore=tests/serving
	FGSA_TORCH_PYTHON=$(PY) $(SERVE_PY) -m pytest tests/serving

demo: venv serve-venv
	FGSA_SERVE_PYTHON=$(SERVE_PY) $(PY) demo.py

clean:
	rm -rf build $(VENV) $(SERVE_VENV) .pytest_cache
