"""Start and stop a Triton Inference Server for a model repository (bound to 127.0.0.1 by default).

The binary comes from the ``serve`` extra (``nvidia-pytriton`` bundles ``tritonserver`` with its Python
backend and one backend stub per CPython 3.8-3.13), else a ``tritonserver`` on PATH. The Python backend stub
embeds CPython: it must be the stub of the interpreter whose packages the model imports (this one), that
interpreter's ``lib`` directory must be on ``LD_LIBRARY_PATH`` (a pyenv-built Python's libpython is not on the
system path), and its ``bin`` first on ``PATH`` (the embedded interpreter finds its prefix, hence its
virtualenv's site-packages, through ``python3`` on PATH).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from runtime.errors import EngineError, InputError

LOOPBACK = "127.0.0.1"


@dataclass
class TritonInstall:
    binary: Path
    backends: Path          # a folder holding python/ (libtriton_python.so, utils, the stub)
    libraries: list[Path] = field(default_factory=list)


def find_triton() -> TritonInstall:
    """The bundled server of nvidia-pytriton, else ``tritonserver`` on PATH (with its own backends)."""
    try:
        import pytriton  # noqa: F401  (only its files are used, never its Python API)
    except ImportError:
        pytriton = None
    if pytriton is not None:
        root = Path(pytriton.__file__).parent / "tritonserver"
        libs = Path(pytriton.__file__).parent.parent / "nvidia_pytriton.libs"
        return TritonInstall(root / "bin" / "tritonserver", root / "backends", [libs] if libs.is_dir() else [])
    found = shutil.which("tritonserver")
    if found is None:
        raise EngineError("no Triton Inference Server here: nvidia-pytriton is not installed and tritonserver "
                          "is not on PATH", "make serve-venv (or pip install 'fgsa-deploy[serve]'), or install "
                          "Triton and put tritonserver on PATH")
    return TritonInstall(Path(found), Path(found).resolve().parent.parent / "backends")


def _stub_for_this_python(install: TritonInstall) -> Path | None:
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = install.backends.parent / "python_backend_stubs" / version / "triton_python_backend_stub"
    return stub if stub.is_file() else None


def prepare_backends(install: TritonInstall, folder: Path) -> Path:
    """A backend folder whose python/ has the stub of this interpreter (links into the installed server)."""
    stub = _stub_for_this_python(install)
    if stub is None:  # a system Triton: its stub was built for the Python it ships with
        return install.backends
    python = folder / "python"
    python.mkdir(parents=True, exist_ok=True)
    for item in (install.backends / "python").iterdir():
        if item.name != "__pycache__":
            (python / item.name).symlink_to(item)
    shutil.copy2(stub, python / "triton_python_backend_stub")
    return folder


def server_env(install: TritonInstall) -> dict[str, str]:
    env = dict(os.environ)
    libdir = sysconfig.get_config_var("LIBDIR")
    ld = [str(p) for p in install.libraries] + ([libdir] if libdir else [])
    if env.get("LD_LIBRARY_PATH"):
        ld.append(env["LD_LIBRARY_PATH"])
    env["LD_LIBRARY_PATH"] = os.pathsep.join(ld)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    # the model imports this project: make it importable even when it is not installed in the environment
    project = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (project, env.get("PYTHONPATH")) if p)
    return env


def free_port(host: str = LOOPBACK) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class TritonServer:
    """``with TritonServer(repo) as server: server.http_url`` -- started, ready, always stopped.

    Ports default to free ones; ``host`` is the address both endpoints bind to (127.0.0.1 unless told otherwise).
    """

    def __init__(self, repository: str | Path, *, http_port: int | None = None, grpc_port: int | None = None,
                 host: str = LOOPBACK, timeout: float = 120.0, log: str | Path | None = None,
                 extra_args: list[str] | None = None, metrics_port: int | None = None):
        self.repository = Path(repository)
        if not (self.repository.is_dir() and any(self.repository.glob("*/config.pbtxt"))):
            raise InputError("--repository", "a Triton model repository (folders with config.pbtxt)",
                             str(self.repository), "write one with python -m runtime.triton")
        self.host, self.timeout = host, timeout
        self.http_port = http_port or free_port(host)
        self.grpc_port = grpc_port or free_port(host)
        #: Prometheus metrics (``/metrics``) on this port of ``host``; None: metrics off
        self.metrics_port = metrics_port
        self.log_path = Path(log) if log else None
        self.extra_args = extra_args or []
        self.process: subprocess.Popen | None = None
        self._tmp: tempfile.TemporaryDirectory | None = None
        self._log = None

    @property
    def http_url(self) -> str:
        return f"{self.host}:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"{self.host}:{self.grpc_port}"

    @property
    def metrics_url(self) -> str | None:
        return None if self.metrics_port is None else f"http://{self.host}:{self.metrics_port}/metrics"

    def command(self, backends: Path, install: TritonInstall) -> list[str]:
        return [str(install.binary), f"--model-repository={self.repository.resolve()}",
                f"--backend-directory={backends}", f"--http-address={self.host}", f"--http-port={self.http_port}",
                f"--grpc-address={self.host}", f"--grpc-port={self.grpc_port}", *self.metrics_args(),
                "--strict-readiness=true", "--exit-on-error=true", "--exit-timeout-secs=5", *self.extra_args]

    def metrics_args(self) -> list[str]:
        if self.metrics_port is None:
            return ["--allow-metrics=false"]
        # CPU-only metrics where no GPU is; the address keeps them on the same interface as the endpoints
        return ["--allow-metrics=true", f"--metrics-address={self.host}", f"--metrics-port={self.metrics_port}"]

    def start(self) -> "TritonServer":
        install = find_triton()
        self._tmp = tempfile.TemporaryDirectory(prefix="fgsa-triton-")
        backends = prepare_backends(install, Path(self._tmp.name) / "backends")
        if self.log_path:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path or Path(self._tmp.name) / "tritonserver.log", "w+b")
        self.process = subprocess.Popen(self.command(backends, install), env=server_env(install),
                                        stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def log_text(self, tail: int = 4000) -> str:
        if self._log is None:
            return ""
        self._log.flush()
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-tail:]

    def is_ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.http_url}/v2/health/ready", timeout=2) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def wait_ready(self) -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EngineError(f"tritonserver exited with code {self.process.returncode} while loading "
                                  f"{self.repository}; its log ends:\n{self.log_text()}",
                                  "fix the model repository (see the log), or re-export it")
            if self.is_ready():
                return
            time.sleep(0.25)
        raise EngineError(f"tritonserver was not ready after {self.timeout:.0f} s; its log ends:\n{self.log_text()}",
                          "raise the timeout on a loaded machine, or check the log")

    def stop(self, grace: float = 20.0) -> int | None:
        """SIGINT (Triton drains in-flight requests and unloads models), SIGKILL after ``grace`` seconds."""
        proc, self.process = self.process, None
        code = None
        if proc is not None:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGINT)
                try:
                    proc.wait(grace)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
            code = proc.returncode
        if self._log is not None:
            self._last_log = self.log_text(20000)
            self._log.close()
            self._log = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        return code

    def __enter__(self) -> "TritonServer":
        return self.start() if self.process is None else self

    def __exit__(self, *exc) -> None:
        self.stop()
