"""``python -m runtime.serve --repository REPO``: run Triton Inference Server on a repository written by
``python -m runtime.triton``, on 127.0.0.1 unless ``--host`` says otherwise; waits until ready, prints the
endpoints, stops cleanly on Ctrl-C (in-flight requests finish, models unload).

    python -m runtime.serve --repository triton_repo [--http-port 8000] [--grpc-port 8001] [--host 127.0.0.1] \\
        [--metrics-port 8002]
    python -m runtime.serve --repository triton_repo --request q.jpg=category [--request ...]   # try it, then stop

With ``--request IMAGE=CATEGORY`` (repeatable) the server answers those requests through the client helper
(``runtime.serving.client``), the keypoints are printed and the server stops.

The server is the ``tritonserver`` bundled by nvidia-pytriton (``serve`` extra; ``make serve-venv``) or one on
PATH. It runs the model with this Python: start it from the serving environment.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from fgsa.cli import EXIT_FAILED, command, error
from runtime.serving.client import PoseClient
from runtime.serving.server import LOOPBACK, TritonServer, free_port


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m runtime.serve", description=__doc__.split("\n\n")[0])
    p.add_argument("--repository", required=True, type=Path, help="model repository (python -m runtime.triton)")
    p.add_argument("--http-port", type=int, default=None, help="HTTP port (default: a free one)")
    p.add_argument("--grpc-port", type=int, default=None, help="gRPC port (default: a free one)")
    p.add_argument("--host", default=LOOPBACK, help="address to bind (default 127.0.0.1, loopback only)")
    p.add_argument("--metrics-port", type=int, default=None,
                   help="serve Prometheus metrics on this port of --host (default: off); 0: a free port")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait until ready")
    p.add_argument("--log", type=Path, default=None, help="write the server log here")
    p.add_argument("--request", action="append", default=[], type=_request, metavar="IMAGE=CATEGORY",
                   help="send this request (image file, category), print the keypoints, stop the server")
    return p


def _request(text: str) -> tuple[Path, str]:
    image, sep, category = text.rpartition("=")
    if not sep or not image or not category:
        raise argparse.ArgumentTypeError(f"expected IMAGE=CATEGORY (an image file and a category name), got {text!r}")
    if not Path(image).is_file():
        raise argparse.ArgumentTypeError(f"image {image!r} does not exist")
    return Path(image), category


def answer(server: TritonServer, requests: list[tuple[Path, str]]) -> int:
    """Send each request over HTTP, print its keypoints; 1 if any request failed."""
    from tritonclient.utils import InferenceServerException

    failed = 0
    with PoseClient(server.http_url) as client:
        for image, category in requests:
            try:
                xy, names = client.predict(image, category)
            except InferenceServerException as exc:
                failed = error(f"{image} ({category}): {exc.message()}", EXIT_FAILED)
                continue
            print(f"{image} ({category}): {len(xy)} keypoints, image pixels")
            for name, (x, y) in zip(names, xy.tolist()):
                print(f"{name:>12}: ({x:8.2f}, {y:8.2f})")
    return failed


@command(one_line=False)
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    server = TritonServer(args.repository, http_port=args.http_port, grpc_port=args.grpc_port, host=args.host,
                          timeout=args.timeout, log=args.log,
                          metrics_port=(free_port(args.host) if args.metrics_port == 0 else args.metrics_port))
    server.start()
    try:
        metrics = f", metrics {server.metrics_url}" if server.metrics_url else ""
        print(f"ready: HTTP {server.http_url}, gRPC {server.grpc_url}{metrics}, model fgsa_pose"
              + ("" if args.request else " (Ctrl-C stops)"), flush=True)
        if args.request:
            return answer(server, args.request)
        while not stop.wait(0.5):
            if server.process is None or server.process.poll() is not None:
                return error("tritonserver exited on its own; its log ends:\n" + server.log_text(), EXIT_FAILED)
    finally:
        code = server.stop()
        print(f"stopped (tritonserver exit code {code})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
