"""libfgsa_ort_ops.so: where it is, how an ONNX Runtime session loads it, and how to build it.

The library (kernels/ort/) registers ``FGSA_MSDA``, ``FGSA_Attention`` and TensorRT's
``MultiscaleDeformableAttnPlugin_TRT`` as ONNX Runtime custom ops, so plugin-form and trt-builtin graphs
run in ONNX Runtime without torch. Every place where such a graph meets ONNX Runtime (runtime.Engine,
export parity, calibration) finds it here: an explicit path > ``$FGSA_ORT_LIBRARY`` > a build under
``build/``. Standard library only (plus fgsa.errors), so the torch-free runtime can import it.

    python -m kernels.ort_library            # build it (CMake; headers from kernels/ort/fetch_headers.sh)
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Sequence

from fgsa.cli import error
from fgsa.errors import InputError

REPO_ROOT = Path(__file__).resolve().parents[1]
LIBRARY_NAME = "libfgsa_ort_ops.so"
LIBRARY_ENV = "FGSA_ORT_LIBRARY"
TARGET = "fgsa_ort_ops"
BUILD_DIR = REPO_ROOT / "build" / "kernels-ort"
HEADERS_DIR = REPO_ROOT / "build" / "onnxruntime-headers"  # where fetch_headers.sh unpacks libonnxruntime-dev
FETCH_SCRIPT = REPO_ROOT / "kernels" / "ort" / "fetch_headers.sh"
# Op types the library runs (the plugin spec's two ops and TensorRT's built-in MSDA plugin).
OP_TYPES = ("FGSA_MSDA", "FGSA_Attention", "MultiscaleDeformableAttnPlugin_TRT")
BUILD_HINT = (f"build {LIBRARY_NAME} with `make ort-ops` (or python -m kernels.ort_library) to run them natively, "
              f"or point ${LIBRARY_ENV} at it")


def build_candidates() -> list[Path]:
    """Where builds put the library: this module's build dir first, then a full CMake build."""
    return [BUILD_DIR / "lib" / LIBRARY_NAME, REPO_ROOT / "build" / "kernels" / "lib" / LIBRARY_NAME]


def find_library(explicit: str | Path | None = None, field: str = "ort_library") -> Path | None:
    """The library to load: ``explicit`` > ``$FGSA_ORT_LIBRARY`` > a build under build/; None if none is there.

    An explicit path or environment variable that names no file is an error (InputError naming it), not a
    silent fallback to the slow Python ops.
    """
    for value, name in ((explicit, field), (os.environ.get(LIBRARY_ENV), f"${LIBRARY_ENV}")):
        if value:
            path = Path(value)
            if not path.is_file():
                raise InputError(name, f"the path of an existing {LIBRARY_NAME}", str(path), BUILD_HINT)
            return path
    return next((p for p in build_candidates() if p.is_file()), None)


def register(options, library: str | Path) -> None:
    """Load the library into an ``onnxruntime.SessionOptions`` (ONNX Runtime >= 1.21)."""
    options.register_custom_ops_library(str(library))


def uses_ops(op_types: Sequence[str]) -> bool:
    return any(t in OP_TYPES for t in op_types)


# ---- build ---------------------------------------------------------------------------------------

def api_version(include_dir: Path) -> int | None:
    header = Path(include_dir) / "onnxruntime_c_api.h"
    if not header.is_file():
        return None
    m = re.search(r"#define ORT_API_VERSION\s+(\d+)", header.read_text(errors="replace"))
    return int(m.group(1)) if m else None


def fetch_headers(dest: Path = HEADERS_DIR) -> Path | None:
    """Runs kernels/ort/fetch_headers.sh (Debian 12 hosts: libonnxruntime-dev from the trixie suite of the
    machine's own mirror, unpacked under ``dest``); the include dir, or None with the reason on stderr."""
    proc = subprocess.run(["bash", str(FETCH_SCRIPT), str(dest)], cwd=REPO_ROOT)
    include = dest / "usr" / "include" / "onnxruntime"
    return include if proc.returncode == 0 and api_version(include) else None


def build_library(include_dir: str | Path | None = None, build_dir: Path = BUILD_DIR) -> Path:
    """Configures and builds the ``fgsa_ort_ops`` target (host compiler only); returns the library path.

    Headers: ``include_dir`` > ``$ONNXRUNTIME_INCLUDE_DIR`` > what CMake finds ($ONNXRUNTIME_ROOT, the
    system, build/onnxruntime-headers). BuildError when none of API >= 21 is found.
    """
    from kernels.build import BuildError, build, build_lock, library_path, missing_build_tools

    missing = missing_build_tools(cuda=False)
    if missing:
        raise BuildError(f"cannot build {LIBRARY_NAME}: {', '.join(missing)} not found on PATH")
    with build_lock(build_dir):
        cmd = ["cmake", "-S", str(REPO_ROOT), "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=Release",
               "-DFGSA_BUILD_CUDA=OFF"]
        include_dir = include_dir or os.environ.get("ONNXRUNTIME_INCLUDE_DIR")
        if include_dir:
            cmd.append(f"-DONNXRUNTIME_INCLUDE_DIR={include_dir}")
        if not (Path(build_dir) / "CMakeCache.txt").exists() and any(
                (Path(d) / "ninja").exists() for d in os.environ.get("PATH", "").split(os.pathsep)):
            cmd += ["-G", "Ninja"]
        proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True)
        if proc.returncode != 0:
            raise BuildError(f"CMake configure failed: {' '.join(cmd)}\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
        if f"-> building {TARGET}" not in proc.stdout:
            why = next((line.strip("- ") for line in proc.stdout.splitlines() if TARGET in line), "")
            raise BuildError(f"cannot build {LIBRARY_NAME}: "
                             f"{why or 'ONNX Runtime C API headers (API >= 21) not found'}; run `make ort-ops` "
                             "(fetches them on Debian hosts) or pass ONNXRUNTIME_INCLUDE_DIR")
        lib = library_path(build(build_dir, [TARGET], jobs=2), TARGET)
        if not lib.is_file():
            raise BuildError(f"the build reported success but {lib} does not exist")
        return lib


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    from kernels.build import BuildError

    p = argparse.ArgumentParser(prog="python -m kernels.ort_library", description=__doc__.split("\n\n")[0])
    p.add_argument("--include-dir", help="ONNX Runtime C API headers (default: $ONNXRUNTIME_INCLUDE_DIR, "
                                         "$ONNXRUNTIME_ROOT/include, the system, build/onnxruntime-headers)")
    p.add_argument("--fetch", action="store_true", help="first fetch the headers with kernels/ort/fetch_headers.sh "
                                                         "when no other source has them (Debian hosts)")
    args = p.parse_args(argv)
    include = args.include_dir
    if args.fetch and not include and not os.environ.get("ONNXRUNTIME_INCLUDE_DIR") \
            and not os.environ.get("ONNXRUNTIME_ROOT") and not api_version(Path("/usr/include/onnxruntime")):
        include = fetch_headers()
    try:
        print(build_library(include))
    except BuildError as e:
        return error(str(e).splitlines()[0])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
