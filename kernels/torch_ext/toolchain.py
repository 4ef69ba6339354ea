"""Where the CUDA toolkit and ninja are, for building the torch extension on a GPU machine.

torch.utils.cpp_extension derives CUDA_HOME from the `nvcc` on PATH (its parent's parent). Where that nvcc
is a wrapper script (e.g. /usr/local/bin/nvcc running /usr/local/cuda-13.0/bin/nvcc), CUDA_HOME becomes
/usr/local and neither cuda_runtime.h nor libcudart is found. :func:`find_cuda_home` asks nvcc itself
(`nvcc --dryrun` prints its TOP directory) and checks the candidates for the headers; :func:`prepare`
exports the result before torch.utils.cpp_extension is imported.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path


def is_toolkit(path: str | Path | None) -> bool:
    """A CUDA toolkit root: bin/nvcc and the runtime headers (include/ or targets/<arch>/include/)."""
    if not path:
        return False
    root = Path(path)
    headers = [root / "include" / "cuda_runtime.h", *map(Path, glob.glob(str(root / "targets" / "*" / "include" /
                                                                             "cuda_runtime.h")))]
    return (root / "bin" / "nvcc").exists() and any(h.exists() for h in headers)


def _nvcc_top(nvcc: str) -> Path | None:
    """The toolkit root nvcc reports for itself (`#$ TOP=...` of `nvcc --dryrun`), wrapper or not."""
    try:
        proc = subprocess.run([nvcc, "--dryrun", "-c", "-x", "cu", os.devnull, "-o", os.devnull],
                              capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in (proc.stdout + proc.stderr).splitlines():
        if line.startswith("#$ TOP="):
            return Path(line.split("=", 1)[1].strip()).resolve()
    return None


def find_cuda_home(environ: dict[str, str] | None = None) -> tuple[Path | None, list[str]]:
    """(toolkit root or None, every candidate tried and why it was refused)."""
    env = os.environ if environ is None else environ
    tried: list[str] = []
    candidates: list[tuple[str, str | Path | None]] = [("CUDA_HOME", env.get("CUDA_HOME")),
                                                        ("CUDA_PATH", env.get("CUDA_PATH"))]
    nvcc = shutil.which("nvcc", path=env.get("PATH"))
    if nvcc:
        candidates.append((f"nvcc on PATH ({nvcc}), resolved", Path(nvcc).resolve().parent.parent))
        candidates.append((f"nvcc --dryrun TOP ({nvcc})", _nvcc_top(nvcc)))
    candidates += [("default", "/usr/local/cuda"), *(("installed", p) for p in sorted(glob.glob("/usr/local/cuda-*"),
                                                                                   reverse=True)), ("default", "/opt/cuda")]
    for label, path in candidates:
        if not path:
            continue
        if is_toolkit(path):
            return Path(path).resolve(), tried
        tried.append(f"{label}: {path} (no bin/nvcc with include/cuda_runtime.h)")
    return None, tried


def find_ninja() -> str | None:
    """ninja on PATH, or the binary of the `ninja` Python package (pip install ninja) of this interpreter."""
    found = shutil.which("ninja")
    if found:
        return found
    try:
        import ninja  # type: ignore[import-not-found]
    except ImportError:
        return None
    candidate = Path(getattr(ninja, "BIN_DIR", "")) / "ninja"
    return str(candidate) if candidate.exists() else None


def prepare(environ: dict[str, str] | None = None) -> dict[str, str | None]:
    """Exports CUDA_HOME (and puts its bin/ and ninja's directory first on PATH) for the extension build.
    Returns what was found: {"cuda_home", "nvcc", "ninja"} (None where missing)."""
    env = os.environ if environ is None else environ
    home, _ = find_cuda_home(env)
    if home:
        env["CUDA_HOME"] = str(home)
        env["PATH"] = os.pathsep.join([str(home / "bin"), env.get("PATH", "")])
        if "torch.utils.cpp_extension" in sys.modules:  # imported already: it read CUDA_HOME at import
            sys.modules["torch.utils.cpp_extension"].CUDA_HOME = str(home)
    ninja = find_ninja()
    if ninja and shutil.which("ninja", path=env.get("PATH")) is None:
        env["PATH"] = os.pathsep.join([str(Path(ninja).parent), env.get("PATH", "")])
    return {"cuda_home": str(home) if home else None,
            "nvcc": str(home / "bin" / "nvcc") if home else None, "ninja": ninja}
