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

# ONNX Runtime C API headers for libfgsa_ort_ops.so (a dir with onnxruntime_c_api.h); empty: $ONNXRUNTIME_ROOT,
# the system, else fetched from Debian 13's libonnxruntime-dev into build/ (kernels/ort/fetch_headers.sh).
ONNXRUNTIME_INCLUDE_DIR ?=

.PHONY: venv serve-venv test demo kernels ort-ops cpu-reference deps demo-deps clean

# --no-compile: pip would byte-compile every module of every package (torch alone has thousands; ~17 of the
# ~46 s of this install here); Python compiles the ones that are imported, once, on first use.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q --no-compile -e ".[cpu,export,dev,rtx,client]"
	touch $@

venv: $(VENV)/.installed

$(SERVE_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(SERVE_VENV)
	$(SERVE_PY) -m pip install -q --upgrade pip
	$(SERVE_PY) -m pip install -q --no-compile -e ".[serve,dev]"
	touch $@

serve-venv: $(SERVE_VENV)/.installed

# CUDA kernels (+ the plugin when TensorRT headers are given) with nvcc; the CPU reference is built by the
# kernels tests themselves (kernels/build.py), so a machine without nvcc still runs them.
kernels: $(if $(TensorRT_INCLUDE_DIR),venv)
	@if command -v cmake >/dev/null && command -v nvcc >/dev/null; then \
	  cmake -S . -B $(BUILD) $$(command -v ninja >/dev/null && echo -G Ninja) -DCMAKE_BUILD_TYPE=Release \
	    -DPython3_EXECUTABLE=$(abspath $(PY)) -DCMAKE_CUDA_ARCHITECTURES=$(CUDA_ARCHS) $(if $(TensorRT_INCLUDE_DIR),-DTensorRT_INCLUDE_DIR=$(TensorRT_INCLUDE_DIR)) >/dev/null && \
	  cmake --build $(BUILD) -j2; \
	else echo "kernels: cmake or nvcc missing, CUDA build skipped"; fi

# libfgsa_ort_ops.so (kernels/ort/): plugin-form graphs on ONNX Runtime without torch. On Debian 12 the headers
# come from Debian 13's libonnxruntime-dev via `apt-get download` with a private sources list derived from this
# machine's Debian sources, private apt state/cache under build/ and the machine's keyring, unpacked with
# `dpkg-deb -x` under build/onnxruntime-headers: nothing on the system changes. Never fails the build: without
# headers the library's tests skip and plugin-form graphs fall back to the PyTorch reference op.
ort-ops: venv
	@$(PY) -m kernels.ort_library --fetch $(if $(ONNXRUNTIME_INCLUDE_DIR),--include-dir $(ONNXRUNTIME_INCLUDE_DIR)) \
	  || echo "ort-ops: libfgsa_ort_ops.so not built (reason above); plugin-form graphs use the PyTorch reference op"

# The CPU reference of the kernels (build/kernels-cpu); the kernels tests build it themselves when missing.
cpu-reference: venv
	@$(PY) -m kernels.build --target fgsa_cpu_reference >/dev/null

# Everything make test needs, built side by side: the two pip installs wait on the network and the disk while
# nvcc and the C++ builds use the cores (-O keeps each target's output in one piece).
deps:
	@$(MAKE) --no-print-directory -j4 -Otarget venv serve-venv kernels ort-ops cpu-reference

demo-deps:
	@$(MAKE) --no-print-directory -j3 -Otarget venv serve-venv ort-ops

# The main suite on every core (pytest-xdist, whole files per worker so that module fixtures are built once;
# tests/conftest.py shares the session fixtures between workers) and, at the same time, the serving suite in
# its own environment (it waits on tritonserver much of its time); its output follows the main suite's.
test: deps
	@mkdir -p build
	@FGSA_TORCH_PYTHON=$(abspath $(PY)) $(SERVE_PY) -m pytest tests/serving >build/serving-tests.log 2>&1 & serving=$$!; \
	$(PY) -m pytest tests --ignore=tests/serving -n auto --dist loadfile; main=$$?; \
	wait $$serving; served=$$?; echo "---- tests/serving ($(SERVE_VENV)), build/serving-tests.log:"; \
	cat build/serving-tests.log; test $$main -eq 0 && test $$served -eq 0

demo: demo-deps
	FGSA_SERVE_PYTHON=$(SERVE_PY) $(PY) demo.py

clean:
	rm -rf build $(VENV) $(SERVE_VENV) .pytest_cache
