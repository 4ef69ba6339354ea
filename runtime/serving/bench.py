"""``python -m runtime.serving.bench --repository REPO``: Triton throughput and latency of ``fgsa_pose`` for
1, 8 and 32 concurrent clients, with dynamic batching on and off, in one run.

    python -m runtime.serving.bench --repository triton_repo [--clients 1,8,32] [--requests 64] [--protocol http]

The repository is served twice at once: as written (dynamic batching on) and a copy with the dynamic_batching
block removed (one request per execution). Each client sends its share of ``--requests`` back to back, cycling
through the repository's categories and the query images (``--image``, default: synthetic images made here).
Rows alternate between the two servers (on/off, then off/on for the next client count, ``--rounds`` times) so
a machine whose speed drifts hits both alike; the idle server's ONNX Runtime threads sleep. Prints requests/s,
p50/p99 latency, executions per request per row, and the on/off ratios of the medians per client count.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from fgsa.cli import command
from runtime.errors import FgsaError, InputError
from runtime.serving.client import PoseClient
from runtime.serving.server import TritonServer


def without_batching(repo: Path, out: Path) -> Path:
    shutil.copytree(repo, out, symlinks=True)
    config = out / "fgsa_pose" / "config.pbtxt"
    config.write_text(re.sub(r"dynamic_batching \{[^}]*\}\n", "", config.read_text()))
    return out


def _images(paths: list[Path], n: int = 4) -> list:
    if paths:
        return [p.read_bytes() for p in paths]
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (240 + 16 * i, 320, 3), dtype=np.uint8) for i in range(n)]


def run_clients(url: str, protocol: str, clients: int, requests: int, jobs: list) -> dict:
    latencies: list[float] = []
    lock = threading.Lock()
    errors: list[str] = []
    per_client = max(1, requests // clients)

    def worker(k: int) -> None:
        with PoseClient(url, protocol) as client:
            client.predict(*jobs[k % len(jobs)])  # connection set up outside the timing
            barrier.wait()
            for i in range(per_client):
                t0 = time.perf_counter()
                try:
                    client.predict(*jobs[(k + i * clients) % len(jobs)])
                except Exception as exc:  # noqa: BLE001  reported after the run
                    errors.append(str(exc))
                with lock:
                    latencies.append(time.perf_counter() - t0)

    barrier = threading.Barrier(clients + 1)
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()  # every client has sent its warm-up request
    with PoseClient(url, protocol) as c:
        before = c.statistics()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    with PoseClient(url, protocol) as c:
        after = c.statistics()
    if errors:
        raise FgsaError(f"{len(errors)} requests failed, first: {errors[0]}")
    lat = np.array(latencies) * 1e3
    n = len(latencies)
    return {"clients": clients, "requests": n, "throughput": n / wall, "p50_ms": float(np.percentile(lat, 50)),
            "p99_ms": float(np.percentile(lat, 99)),
            "executions_per_request": (after["executions"] - before["executions"]) / max(1, n)}


def bench(args: argparse.Namespace, clients: list[int], jobs: list) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="fgsa-bench-") as tmp, \
            TritonServer(args.repository, timeout=240) as on, \
            TritonServer(without_batching(args.repository, Path(tmp) / "off"), timeout=240) as off:
        servers = {"on": on, "off": off}
        for k, c in enumerate(clients):
            for r in range(args.rounds):
                for mode in (("on", "off") if (k + r) % 2 == 0 else ("off", "on")):
                    server = servers[mode]
                    url = server.http_url if args.protocol == "http" else server.grpc_url
                    row = {"batching": mode, "round": r, **run_clients(url, args.protocol, c, args.requests, jobs)}
                    rows.append(row)
                    print(f"dynamic batching {mode:>3}, {c:>2} clients: {row['throughput']:6.1f} req/s, "
                          f"p50 {row['p50_ms']:7.1f} ms, p99 {row['p99_ms']:7.1f} ms, "
                          f"{row['executions_per_request']:.2f} executions/request", flush=True)
    return rows


@command(one_line=False)
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m runtime.serving.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--repository", required=True, type=Path)
    p.add_argument("--clients", default="1,8,32", help="comma list of concurrent client counts")
    p.add_argument("--requests", type=int, default=64, help="requests per row (split over the clients)")
    p.add_argument("--protocol", default="http", choices=("http", "grpc"))
    p.add_argument("--image", action="append", type=Path, default=[], help="query image file(s)")
    p.add_argument("--rounds", type=int, default=1, help="alternating rounds per client count")
    p.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = p.parse_args(argv)
    try:
        clients = [int(c) for c in args.clients.split(",")]
        index = json.loads((args.repository / "fgsa_pose" / "1" / "support" / "index.json").read_text())
    except (ValueError, OSError) as exc:
        raise InputError("--clients / --repository", "a comma list of ints and a repository written by "
                         "python -m runtime.triton", exc) from None
    cats = [c["name"] for c in index["categories"]]
    images = _images(args.image)
    jobs = [(images[i % len(images)], cats[i % len(cats)]) for i in range(max(len(images), len(cats)) * 2)]
    rows = bench(args, clients, jobs)
    for c in clients:
        med = {m: {key: float(np.median([r[key] for r in rows if r["batching"] == m and r["clients"] == c]))
                   for key in ("throughput", "p50_ms")} for m in ("on", "off")}
        print(f"{c:>2} clients: batching on/off throughput {med['on']['throughput'] / med['off']['throughput']:.2f}x, "
              f"p50 {med['on']['p50_ms'] / med['off']['p50_ms']:.2f}x")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
