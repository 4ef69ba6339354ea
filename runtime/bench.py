"""``python -m runtime.bench``: latency and throughput of an engine over a batch sweep, with and without
support caching, next to PyTorch eager in the same run.

    python -m runtime.bench --engine out/onnx [--ckpt model.pth] [--batches 1,2,4] [--shots 1] \\
        [--threads 2] [--iterations 20] [--compare out/onnx/plugin] [--out out/bench]

Per batch size B, on random valid inputs (S shots of K = 70 points):

| row | what one call does |
|---|---|
| engine uncached | the full graph: backbone on B*S supports + B queries, predictor |
| engine cached | the predictor graph on B queries with the support state computed once (``--split`` export) |
| engine predict() | ``Engine.predict`` on B raw images: preprocessing + cached path + decoding |
| pytorch uncached / cached | ``FMMP.forward`` / ``FMMP.predict`` with the state computed once (with ``--ckpt``) |
| <form> graph [native ops] uncached / cached | the same two calls on each ``--compare`` engine (another attention form of the same checkpoint; "native ops": its plugin nodes run in libfgsa_ort_ops.so) |

Each row: warm-up, then ``--iterations`` timed calls in alternating blocks (so load changes on a shared
machine hit every row alike; ONNX Runtime's idle threads sleep unless ``--spinning``, so one row's
session does not spin on the cores the next row runs on); p50/p90/p99 latency, throughput = B / p50. Ratios use medians:
PyTorch eager / engine (uncached, the same work), and engine uncached / cached (the support-caching
speedup). Writes ``bench.md`` and ``bench.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from fgsa.cli import md_table, report_main
from runtime.backends import CHOICES as BACKEND_CHOICES
from runtime.engine import Engine
from runtime.errors import InputError
from runtime.report import host_info
from runtime.timing import measure


def random_feed(batch: int, shots: int, size: int, k: int, link_width: int = 16, seed: int = 0) -> dict:
    """Random but valid full-graph inputs (NumPy): every shot has visible keypoints, links start with self."""
    rng = np.random.default_rng(seed)
    visible = rng.random((batch, shots, k)) > 0.25
    visible[..., 0] = True
    links = rng.integers(0, k, (batch, shots, k, link_width), dtype=np.int32)
    links[..., 0] = np.arange(k, dtype=np.int32)
    return {"query": rng.standard_normal((batch, 3, size, size), dtype=np.float32),
            "support": rng.standard_normal((batch, shots, 3, size, size), dtype=np.float32),
            "support_points": rng.random((batch, shots, k, 2), dtype=np.float32),
            "support_visible": visible, "support_links": links}


def _demo_support(rng: np.random.Generator, shots: int) -> dict:
    """A synthetic support: random images with 12 keypoints on a chain (for the predict() row)."""
    images = [rng.integers(0, 256, (240, 320, 3), dtype=np.uint8) for _ in range(shots)]
    kp = np.stack([np.stack([np.linspace(40, 280, 12), np.linspace(40, 200, 12), np.full(12, 2.0)], 1)] * shots)
    return {"images": images, "keypoints": kp, "skeleton": [[i, i + 1] for i in range(11)],
            "boxes": [[20, 20, 280, 200]] * shots}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m runtime.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--engine", required=True, type=Path, help="export folder (with --split for caching), .onnx or .plan")
    p.add_argument("--backend", default="auto", choices=BACKEND_CHOICES)
    p.add_argument("--ckpt", type=Path, help="checkpoint for PyTorch eager in the same run")
    p.add_argument("--config", default=None, help="model config for checkpoints without one")
    p.add_argument("--batches", default="1", help="comma-separated batch sizes, e.g. 1,2,4")
    p.add_argument("--shots", type=int, default=None, help="support shots S (must match the export)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for ONNX Runtime and PyTorch")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--iterations", type=int, default=20, help="timed calls per row")
    p.add_argument("--rounds", type=int, default=2, help="alternating blocks the iterations are split into")
    p.add_argument("--max-seconds", type=float, default=60.0, help="time budget per row and batch size")
    p.add_argument("--spinning", action="store_true",
                   help="let idle ONNX Runtime threads spin (off by default: the spinning workers of one row's "
                        "session steal cores from the next row, PyTorch's included)")
    p.add_argument("--plugin-library", type=Path, default=None,
                   help="libfgsa_trt_plugin.so for TensorRT plans (default: $FGSA_PLUGIN_LIBRARY, else build/; "
                        "never the plan's sidecar)")
    p.add_argument("--ort-library", type=Path, default=None,
                   help="libfgsa_ort_ops.so for plugin-form graphs (default: $FGSA_ORT_LIBRARY, then build/)")
    p.add_argument("--compare", type=Path, action="append", default=[],
                   help="another export of the same checkpoint (e.g. another attention form) timed in the same run; "
                        "repeatable")
    p.add_argument("--out", type=Path, default=Path("out/bench"))
    return p


def _batches(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InputError("--batches", "comma-separated positive integers, e.g. 1,2,4", text) from None
    if not values or min(values) < 1:
        raise InputError("--batches", "comma-separated positive integers, e.g. 1,2,4", text)
    return values


def run(args: argparse.Namespace) -> dict:
    batches = _batches(args.batches)
    t_start = time.perf_counter()
    options = dict(threads=args.threads, plugin_library=args.plugin_library, spinning=args.spinning,
                   ort_library=args.ort_library)
    engine = Engine(args.engine, args.backend, **options)
    others = {}
    for path in args.compare:
        other = Engine(path, args.backend, **options)
        if other.shots != engine.shots:
            raise InputError("--compare", f"an export with --shots {engine.shots} like --engine", f"{path} "
                             f"(--shots {other.shots})")
        others[engine_label(other)] = other
    if args.shots is not None and args.shots != engine.shots:
        raise InputError("--shots", f"{engine.shots} (the engine was exported with --shots {engine.shots})",
                         args.shots, f"re-export with --shots {args.shots} to benchmark {args.shots}-shot support")
    S, H, K = engine.shots, engine.input_size, engine.keypoints
    model = torch = None
    if args.ckpt:
        import torch

        from fgsa.checkpoint import load_model

        if args.threads:
            torch.set_num_threads(args.threads)
        model = load_model(args.ckpt, args.config)
    demo = _demo_support(np.random.default_rng(1), S)
    for e in (engine, *others.values()):
        e.set_support(demo["images"], demo["keypoints"], None, demo["skeleton"], demo["boxes"])
    rows, skipped = [], []
    for B in batches:
        if not engine.batch.fits(B):
            skipped.append({"batch": B, "reason": f"outside the graph's batch range {engine.batch.text()} "
                                                  "(re-export with --dynamic-batch MIN:OPT:MAX)"})
            continue
        feed = random_feed(B, S, H, K, seed=B)
        fns = {}
        # the full graph, or encoder + predictor on every call where only split graphs exist
        for label, e in (("engine", engine), *others.items()):
            if not e.batch.fits(B):
                continue
            fns[f"{label} uncached"] = lambda feed=feed, e=e: e.infer(feed, "full", check=False)
            if {"support_encoder", "predictor"} <= set(e.graphs):
                state = e.infer({k: v for k, v in feed.items() if k != "query"}, "support_encoder")
                cfeed = {**{k: v for k, v in feed.items() if k != "support"}, **state}
                fns[f"{label} cached"] = lambda cfeed=cfeed, e=e: e.infer(cfeed, "predictor", check=False)
        images = [demo["images"][0]] * B
        fns["engine predict()"] = lambda images=images: engine.predict(images, [demo["boxes"][0]] * B)
        if model is not None:
            tfeed = {k: torch.from_numpy(v) for k, v in feed.items()}
            keypoints = [tfeed[k] for k in ("support_points", "support_visible", "support_links")]
            with torch.inference_mode():
                tstate = model.encode_support(tfeed["support"], *keypoints)

            def torch_uncached(tfeed=tfeed):
                with torch.inference_mode():
                    return model(**tfeed)

            def torch_cached(tfeed=tfeed, tstate=tstate, keypoints=keypoints):
                with torch.inference_mode():
                    return model.predict(tfeed["query"], tstate, *keypoints)
            fns["pytorch uncached"] = torch_uncached
            fns["pytorch cached"] = torch_cached
        timings = measure(fns, B, args.warmup, args.iterations, args.rounds, args.max_seconds)
        rows += [t.to_dict() for t in timings.values()]
        print(f"B={B}: " + ", ".join(f"{n} {t.p50_ms:.1f} ms" for n, t in timings.items()), file=sys.stderr, flush=True)
    ratios = []
    for B in batches:
        by = {r["name"]: r for r in rows if r["batch"] == B}
        if not by:
            continue
        entry = {"batch": B}
        eu, ec = by.get("engine uncached"), by.get("engine cached")
        tu, tc = by.get("pytorch uncached"), by.get("pytorch cached")
        if eu and tu:
            entry["pytorch_over_engine_uncached"] = tu["p50_ms"] / eu["p50_ms"]
        if ec and tc:
            entry["pytorch_over_engine_cached"] = tc["p50_ms"] / ec["p50_ms"]
        if eu and ec:
            entry["engine_cache_speedup"] = eu["p50_ms"] / ec["p50_ms"]
        if tu and tc:
            entry["pytorch_cache_speedup"] = tu["p50_ms"] / tc["p50_ms"]
        for label in others:  # each --compare engine against PyTorch and against --engine
            for mode in ("uncached", "cached"):
                row, mine, torch_row = by.get(f"{label} {mode}"), by.get(f"engine {mode}"), by.get(f"pytorch {mode}")
                if row and torch_row:
                    entry[f"pytorch_over_{label}_{mode}"] = torch_row["p50_ms"] / row["p50_ms"]
                if row and mine:
                    entry[f"{label}_over_engine_{mode}"] = row["p50_ms"] / mine["p50_ms"]
        ratios.append(entry)
    result = {"engine": str(args.engine), "backend": engine.backend, "graphs": engine.graphs,
              "providers": getattr(engine.runners[engine.graphs[0]], "active_providers", None),
              "checkpoint": None if args.ckpt is None else str(args.ckpt),
              "model": (model.cfg.name if model is not None else engine.metadata.get("config", {}).get("name")),
              "attention": engine.metadata.get("attention"), "native_ops": engine.native_ops,
              "compared": {label: {"engine": str(e.path), "attention": e.metadata.get("attention"),
                                   "native_ops": e.native_ops} for label, e in others.items()},
              "shots": S, "threads": args.threads,
              "ort_spinning": args.spinning,
              "torch_threads": torch.get_num_threads() if torch is not None else None,
              "iterations": args.iterations, "rows": rows, "ratios": ratios, "skipped": skipped,
              "seconds": round(time.perf_counter() - t_start, 1), "host": host_info()}
    for e in (engine, *others.values()):
        e.close()
    return result


def engine_label(engine: Engine) -> str:
    """Row label of a --compare engine: its attention form, and whether plugin ops run natively."""
    form = engine.metadata.get("attention") or engine.path.stem
    plugin_ops = form in ("plugin", "trt-builtin")
    return f"{form} graph" + (" native ops" if plugin_ops and engine.native_ops else
                              " reference ops" if plugin_ops and engine.backend == "onnxruntime" else "")


def to_markdown(r: dict) -> str:
    rows = [[x["batch"], x["name"], x["iterations"], f"{x['p50_ms']:.1f}", f"{x['p90_ms']:.1f}", f"{x['p99_ms']:.1f}",
             f"{x['throughput_per_s']:.2f}"] for x in r["rows"]]
    ratio_rows = [[e["batch"]] + [f"{e[k]:.2f}x" if k in e else "-" for k in
                                  ("pytorch_over_engine_uncached", "pytorch_over_engine_cached",
                                   "engine_cache_speedup", "pytorch_cache_speedup")] for e in r["ratios"]]
    host = r["host"]
    lines = [f"# Bench: {r['model'] or 'model'} on {r['backend']} ({r['attention'] or '?'} attention), S={r['shots']}", "",
             f"engine `{r['engine']}` (graphs: {', '.join(r['graphs'])}); threads {r['threads'] or 'default'}"
             f"{', ORT threads spinning' if r.get('ort_spinning') else ''}; "
             f"host: {host.get('cpu', '?')}, {host.get('cpus')} CPUs, load {host.get('load_avg_1m', '?')}", "",
             md_table(["B", "row", "n", "p50 ms", "p90 ms", "p99 ms", "items/s"], rows), "",
             "## Ratios (medians)", "",
             md_table(["B", "PyTorch / engine (uncached)", "PyTorch / engine (cached)", "engine cache speedup",
                       "PyTorch cache speedup"], ratio_rows)]
    compared = [(label, e) for e in r["ratios"] for label in r.get("compared", {})]
    if compared:
        lines += ["", "## Compared engines (medians)", "",
                  md_table(["B", "engine", "PyTorch / it (uncached)", "PyTorch / it (cached)", "it / engine (uncached)",
                            "it / engine (cached)"],
                           [[e["batch"], label] + [f"{e[k]:.2f}x" if k in e else "-" for k in
                                                   (f"pytorch_over_{label}_uncached", f"pytorch_over_{label}_cached",
                                                    f"{label}_over_engine_uncached", f"{label}_over_engine_cached")]
                            for label, e in compared])]
    native = [f"{label}: {c['native_ops']}" for label, c in r.get("compared", {}).items() if c.get("native_ops")]
    if r.get("native_ops"):
        native.insert(0, f"engine: {r['native_ops']}")
    if native:
        lines += ["", "Plugin ops run natively in ONNX Runtime (libfgsa_ort_ops.so): " + "; ".join(native)]
    for s in r["skipped"]:
        lines += ["", f"B={s['batch']} skipped: {s['reason']}"]
    lines += ["", f"{r['seconds']} s in all"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    return report_main("bench", run, to_markdown, build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
