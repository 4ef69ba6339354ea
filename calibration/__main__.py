"""``python -m calibration``: an INT8 Q/DQ graph for TensorRT from an fp32 graph and MP-100-format data.

    python -m calibration --onnx out/fp32/model.onnx --data DIR --out out/int8/model.onnx
        [--method minmax|percentile|entropy] [--calib-episodes 32] [--calib-subset train] [--cache PATH]
        [--exclude NODE ...]

Ranges come from ``--calib-episodes`` real (supports, query) pairs and are cached (``--cache``, default
``<out dir>/calibration_cache.json``, keyed by graph hash, method and episode set). Q/DQ follows TensorRT's
rules (``calibration/qdq.py``); the result is checked against them. For the accuracy of the result and an
automatic fallback of sensitive layers, use ``python -m calibration.report``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import onnx

from calibration.episodes import load_episodes
from calibration.qdq import is_qdq_graph, qdq_violations, quantize_qdq, quantized_layers
from calibration.ranges import METHODS, RangeCache, cached_ranges
from export import metadata
from fgsa.cli import add_data, check_threads, command, renamed
from fgsa.errors import InputError


@command
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m calibration", description=__doc__.split("\n\n")[0])
    ap.add_argument("--onnx", type=Path, required=True, help="fp32 graph from python -m export.onnx")
    add_data(ap)
    ap.add_argument("--out", type=Path, required=True, help="INT8 graph to write")
    ap.add_argument("--method", choices=METHODS, default="percentile")
    renamed(ap, "--calib-episodes", "--calib-pairs", "calibration (support, query) pairs")
    ap.add_argument("--calib-pairs", dest="calib_episodes", type=int, default=32,
                    help="calibration (supports, query) pairs")
    ap.add_argument("--calib-subset", default="train", choices=("train", "val", "test"))
    ap.add_argument("--shots", type=int, default=None, help="support shots (default: the graph's)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--mp100-split", type=int, default=1)
    ap.add_argument("--cache", type=Path, default=None)
    ap.add_argument("--exclude", nargs="*", default=[], help="node names to keep in float")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)

    import torch

    check_threads(args.threads, fix=None)
    torch.set_num_threads(args.threads)
    if not args.onnx.is_file():
        raise InputError("--onnx", "an fp32 graph from python -m export.onnx", f"{args.onnx} (not found)")
    model = onnx.load(args.onnx)
    meta = metadata.read(model)
    if is_qdq_graph(model) or meta.get("precision", "fp32") != "fp32":
        raise InputError("--onnx", "an fp32 graph", f"{args.onnx} ({meta.get('precision', 'Q/DQ')})",
                         "calibrate the graph of `python -m export.onnx` without --precision")
    shots = args.shots or int(meta.get("shots", 1))
    episodes = load_episodes(args.data, args.calib_subset, args.calib_episodes, shots, args.seed,
                             split=args.mp100_split, progress=not args.quiet, desc="calibration pairs",
                             image_root=args.image_root)
    cache = RangeCache(args.cache or args.out.parent / "calibration_cache.json")
    ranges, hit = cached_ranges(model, episodes, args.method, cache, args.threads, not args.quiet)
    int8 = quantize_qdq(model, ranges, exclude=set(args.exclude))
    meta["precision"] = "int8"
    meta["quantization"] = {"method": args.method, "calibration_pairs": len(episodes),
                            "calibration_subset": args.calib_subset, "int8_layers": len(quantized_layers(int8)),
                            "float_layers": sorted(args.exclude),
                            "scheme": "TensorRT Q/DQ: symmetric int8, per-channel weights, no bias quantization"}
    metadata.attach(int8, meta)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(int8, args.out)
    problems = qdq_violations(int8)
    for p in problems:
        print(f"Q/DQ rule: {p}", file=sys.stderr)
    print(f"{'OK' if not problems else 'FAILED'}: {args.out}: {len(quantized_layers(int8))} INT8 layers, "
          f"{args.method} ranges {'(cached)' if hit else f'from {len(episodes)} pairs'}")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
