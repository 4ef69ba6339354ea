"""``python -m runtime.serving.bench --repository REPO``: Triton throughput and latency of ``fgsa_pose`` for
1, 8 and 32 concurrent clients, with dynamic batching on and off, in one run.

    python -m runtime.serving.bench --repository triton_repo [--clients 1,8,32] [--requests 64] [--protocol http]
    python -m runtime.serving.bench --url 127.0.0.1:8000 [--grpc-url 127.0.0.1:8001] --repository triton_repo \\
        [--protocol http,grpc]
    python -m runtime.serving.bench --repository triton_repo --in-process [--protocol http,grpc]

With ``--url`` the server already running there is measured as it is (``--repository`` only names the
categories). With ``--in-process`` the repository's model also runs in this process (``PoseModel``, the
code the server runs, without Triton), interleaved with the served rows, and the served / in-process
throughput ratio is printed per client count and protocol: the serving overhead.

Otherwise the repository is served twice at once: a copy with a dynamic_batching block (the written one, or
the default 2 ms queue delay added) and a copy without it (one request per execution). Each client sends its share of ``--requests`` back to back, cycling
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
from runtime.errors import EngineError, FgsaError, InputError
from runtime.serving.client import PoseClient, image_input
from runtime.serving.server import TritonServer


BATCHING = re.compile(r"dynamic_batching \{[^}]*\}\n")


def with_batching(repo: Path, out: Path, on: bool) -> Path:
    """A copy of ``repo`` whose config has dynamic batching on (as written, or a 2 ms queue delay) or off."""
    shutil.copytree(repo, out, symlinks=True)
    config = out / "fgsa_pose" / "config.pbtxt"
    text = config.read_text()
    if not on:
        text = BATCHING.sub("", text)
    elif not BATCHING.search(text):
        text = text.replace("instance_group", "dynamic_batching {\n  max_queue_delay_microseconds: 2000\n}\n"
                            "instance_group", 1)
    config.write_text(text)
    return out


def without_batching(repo: Path, out: Path) -> Path:
    return with_batching(repo, out, on=False)


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
        try:
            client = PoseClient(url, protocol)
            client.predict(*jobs[k % len(jobs)])  # connection set up outside the timing
        except Exception as exc:  # noqa: BLE001  a server that does not answer ends the row, never hangs it
            errors.append(f"{type(exc).__name__}: {exc}")
            barrier.abort()
            return
        with client:
            try:
                barrier.wait()
            except threading.BrokenBarrierError:
                return
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
    try:
        barrier.wait()  # every client has sent its warm-up request
    except threading.BrokenBarrierError:
        for t in threads:
            t.join()
        raise EngineError(f"the server at {url} ({protocol}) did not answer: {errors[0] if errors else '?'}",
                          "check --url / --grpc-url and --protocol; start it with python -m runtime.serve") from None
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
    return _row(clients, latencies, wall, (after["executions"] - before["executions"]) / max(1, len(latencies)))


def _row(clients: int, latencies: list[float], wall: float, executions_per_request: float) -> dict:
    lat = np.array(latencies) * 1e3
    return {"clients": clients, "requests": len(latencies), "throughput": len(latencies) / wall,
            "p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99)),
            "executions_per_request": executions_per_request}


def run_in_process(model, clients: int, requests: int, jobs: list) -> dict:
    """The same jobs through ``PoseModel`` in this process: parse + run per request, ``clients`` threads."""
    feeds = [(image_input(img), np.array([[c.encode()]], dtype=object)) for img, c in jobs]
    latencies: list[float] = []
    lock = threading.Lock()
    per_client = max(1, requests // clients)

    def one(k: int) -> None:
        image, cat = feeds[k % len(feeds)]
        t0 = time.perf_counter()
        model.run(model.parse_request(image, None, cat))
        with lock:
            latencies.append(time.perf_counter() - t0)

    for k in range(clients):  # warm-up, as the served clients' first request
        one(k)
    latencies.clear()
    threads = [threading.Thread(target=lambda k=k: [one(k + i * clients) for i in range(per_client)])
               for k in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return _row(clients, latencies, time.perf_counter() - t0, 1.0)


def _print(label: str, row: dict) -> None:
    print(f"{label}, {row['clients']:>2} clients: {row['throughput']:6.1f} req/s, p50 {row['p50_ms']:7.1f} ms, "
          f"p99 {row['p99_ms']:7.1f} ms, {row['executions_per_request']:.2f} executions/request", flush=True)


def running_urls(args: argparse.Namespace) -> dict[str, str]:
    """{protocol: endpoint} of a running server: ``--url`` for the one ``--protocol``, or ``--url`` (HTTP)
    and ``--grpc-url`` for both."""
    if args.grpc_url:
        return {"http": args.url, "grpc": args.grpc_url}
    if len(args.protocols) > 1:
        raise InputError("--grpc-url", "the gRPC endpoint of the server when --protocol names both",
                         f"--url {args.url} only", "pass --grpc-url HOST:PORT, or one --protocol")
    return {args.protocols[0]: args.url}


def bench_running(args: argparse.Namespace, clients: list[int], jobs: list) -> list[dict]:
    """A server that is already running at ``--url`` (and ``--grpc-url``), as it is."""
    rows = []
    urls = running_urls(args)
    for c in clients:
        for r in range(args.rounds):
            for protocol, url in urls.items():
                row = {"server": url, "protocol": protocol, "round": r,
                       **run_clients(url, protocol, c, args.requests, jobs)}
                rows.append(row)
                _print(f"{url} {protocol}", row)
    return rows


def bench_overhead(args: argparse.Namespace, clients: list[int], jobs: list) -> list[dict]:
    """Served (the repository as written, each protocol) vs in-process PoseModel, interleaved per round."""
    from runtime.serving.pose import PoseModel

    rows = []
    model = PoseModel(args.repository / "fgsa_pose" / "1", threads=_threads(args.repository))
    try:
        with TritonServer(args.repository, timeout=240) as server:
            urls = {"http": server.http_url, "grpc": server.grpc_url}
            for c in clients:
                for r in range(args.rounds):
                    modes = ["in-process", *args.protocols]
                    for mode in (modes if r % 2 == 0 else modes[::-1]):
                        row = run_in_process(model, c, args.requests, jobs) if mode == "in-process" else \
                            run_clients(urls[mode], mode, c, args.requests, jobs)
                        rows.append({"mode": mode, "round": r, **row})
                        _print(f"{mode:>10}", row)
    finally:
        model.close()
    for c in clients:
        base = float(np.median([r["throughput"] for r in rows if r["mode"] == "in-process" and r["clients"] == c]))
        for protocol in args.protocols:
            served = float(np.median([r["throughput"] for r in rows if r["mode"] == protocol and r["clients"] == c]))
            print(f"{c:>2} clients, {protocol}: served / in-process throughput {served / base:.2f}x "
                  f"({served:.1f} vs {base:.1f} req/s)")
    return rows


def _threads(repo: Path) -> int | None:
    match = re.search(r'key: "threads" value \{ string_value: "(\d*)"', (repo / "fgsa_pose" / "config.pbtxt").read_text())
    return int(match.group(1)) if match and match.group(1) else None


def bench(args: argparse.Namespace, clients: list[int], jobs: list) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="fgsa-bench-") as tmp, \
            TritonServer(with_batching(args.repository, Path(tmp) / "on", on=True), timeout=240) as on, \
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
    p.add_argument("--protocol", default="http", help="http, grpc, or both: http,grpc")
    p.add_argument("--url", default=None, help="measure the server running at HOST:PORT instead of starting one")
    p.add_argument("--grpc-url", default=None, help="with --url (HTTP): that server's gRPC endpoint")
    p.add_argument("--in-process", action="store_true",
                   help="also run the model in this process and print served / in-process throughput")
    p.add_argument("--image", action="append", type=Path, default=[], help="query image file(s)")
    p.add_argument("--rounds", type=int, default=1, help="alternating rounds per client count")
    p.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = p.parse_args(argv)
    args.protocols = [x for x in args.protocol.split(",") if x]
    if not args.protocols or set(args.protocols) - {"http", "grpc"}:
        raise InputError("--protocol", "http, grpc or http,grpc", repr(args.protocol))
    args.protocol = args.protocols[0]
    try:
        clients = [int(c) for c in args.clients.split(",")]
        index = json.loads((args.repository / "fgsa_pose" / "1" / "support" / "index.json").read_text())
    except (ValueError, OSError) as exc:
        raise InputError("--clients / --repository", "a comma list of ints and a repository written by "
                         "python -m runtime.triton", exc) from None
    cats = [c["name"] for c in index["categories"]]
    images = _images(args.image)
    jobs = [(images[i % len(images)], cats[i % len(cats)]) for i in range(max(len(images), len(cats)) * 2)]
    if args.url or args.in_process:
        rows = bench_running(args, clients, jobs) if args.url else bench_overhead(args, clients, jobs)
        if args.json:
            args.json.write_text(json.dumps(rows, indent=1))
        return 0
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
