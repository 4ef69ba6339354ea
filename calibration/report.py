"""``python -m calibration.report``: what FP16 and INT8 cost in PCK, with an INT8 accuracy budget.

    python -m calibration.report --ckpt PATH --data DIR [--pairs 40] [--calib-pairs 32]
        [--method minmax|percentile|entropy] [--budget 0.5] [--pixel-budget 1.0] [--out out/precision]
        [--attention plugin]

Steps: export the FP32 and FP16 graphs (``export.onnx``, each with its own parity check), calibrate on
episodes of the calibration subset (default ``train``; ranges cached in ``OUT/calibration_cache.json``
keyed by graph hash), insert TensorRT-style Q/DQ (``calibration.qdq``), then run all three graphs in ONNX
Runtime on CPU on held-out episodes (default the ``test`` subset) and report PCK@0.05..0.2, mPCK and the
pixel error against FP32. If INT8 loses more than ``--budget`` PCK@0.05 points, or its keypoints lie more
than ``--pixel-budget`` crop pixels from FP32's at the 95th percentile of the scored keypoints, the most
sensitive layer groups go back to float until both fit (``calibration.sensitivity``). The verdict states the
number of scored keypoints and a 95 % interval of the PCK loss (paired over the pairs), and says when the
pairs are too few to decide. Writes ``OUT/{fp32,fp16,int8}/
model.onnx``, ``OUT/report.md`` and ``OUT/report.json``; exits 1 if a check fails or the budget cannot be
met, 2 on bad input.

ONNX Runtime on CPU stands in for TensorRT here: it runs the Q/DQ graph as fake quantization (float math
on dequantized values) and some FP16 nodes through float32 kernels, so the FP16 / INT8 numbers estimate,
not reproduce, TensorRT's; the speed of INT8 belongs to TensorRT (docs/MEASURED.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import onnx

from calibration.accuracy import Run, copy_support_run, delta_interval, pck, pixel_error, predict, session_for
from calibration.episodes import load_episodes
from calibration.qdq import qdq_violations, quantize_qdq, quantized_layers
from calibration.ranges import METHODS, RangeCache, cached_ranges
from calibration.sensitivity import fit_budget, rank_groups
from export import metadata
from fgsa import __version__
from fgsa.cli import add_checkpoint_and_data, command, renamed, write_report
from fgsa.errors import InputError
from fgsa.evaluate import below_baseline

BUDGET = 0.5  # PCK@0.05 points INT8 may lose against FP32
#: p95 distance of INT8's keypoints to FP32's, crop pixels: a few pairs can meet the PCK budget by luck while
#: keypoints move by pixels (demo model: PCK@0.05 +0.02 with p95 8.6 px), so both are held
PIXEL_BUDGET = 1.0


def _pct(x: float) -> str:
    return f"{100 * x:.2f}"


def markdown(rows: list[dict], meta: dict) -> str:
    heads = ["graph", "PCK@0.05", "PCK@0.1", "PCK@0.15", "PCK@0.2", "mPCK", "Δ PCK@0.05", "mean px", "p95 px",
             "max px", "ms/pair"]
    lines = [f"### Accuracy of FP32 / FP16 / INT8 graphs ({meta['images']} held-out query images, "
             f"{meta['data']} '{meta['subset']}', ONNX Runtime CPU)", "",
             "| " + " | ".join(heads) + " |", "|" + "|".join(["---"] + ["---:"] * (len(heads) - 1)) + "|"]
    for r in rows:
        pck = r["pck"]
        px = r["pixel_error_vs_fp32"]
        lines.append("| " + " | ".join([
            r["graph"], *(_pct(pck[k]) for k in ("PCK@0.05", "PCK@0.1", "PCK@0.15", "PCK@0.2", "mPCK")),
            f"{r['delta_pck05']:+.2f}", f"{px['mean_px']:.3f}", f"{px['p95_px']:.3f}", f"{px['max_px']:.3f}",
            f"{r['ms_per_pair']:.0f}"]) + " |")
    lines += ["", "Δ PCK@0.05 = graph − FP32 in points; pixel errors vs FP32 on scored keypoints, original image "
              "pixels."]
    return "\n".join(lines)


def _row(name: str, run, result, fp32_run, episodes, fp32_pck05: float) -> dict:
    pck = result.as_dict()
    return {"graph": name, "pck": pck, "delta_pck05": 100 * (pck["PCK@0.05"] - fp32_pck05),
            "pixel_error_vs_fp32": pixel_error(run, fp32_run, episodes),
            "ms_per_pair": 1e3 * run.seconds / max(1, len(episodes))}


def _reusable(opts):
    """The export already in ``opts.out`` when it passed its checks and matches the checkpoint (SHA-256),
    attention form, shots, precision and toolkit version; else None."""
    from export.onnx import ExportResult
    from fgsa.checkpoint import file_sha256

    path = opts.out / "export.json"
    if not path.is_file() or not (opts.out / "model.onnx").is_file():
        return None
    try:
        old = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None
    meta = old.get("metadata", {})
    same = (old.get("ok") and old.get("attention") == opts.attention and meta.get("shots") == opts.shots
            and old.get("precision", "fp32") == opts.precision and meta.get("toolkit_version") == __version__
            and old.get("checkpoint", {}).get("sha256") == file_sha256(opts.ckpt))
    if not same:
        return None
    from export.parity import ParityRow

    rows = [ParityRow(**{k: v for k, v in r.items() if k != "ok"}) for r in old.get("parity", [])]
    return ExportResult({"full": opts.out / "model.onnx"}, rows, old.get("lint", {}), 0.0, True, old)


def build_parser() -> argparse.ArgumentParser:
    from export.forms import FORMS

    ap = argparse.ArgumentParser(prog="python -m calibration.report", description=__doc__.split("\n\n")[0],
                                 epilog="See calibration/README.md.")
    add_checkpoint_and_data(ap)
    ap.add_argument("--pairs", dest="episodes", type=int, default=40,
                    help="held-out (supports, query) pairs to evaluate")
    renamed(ap, "--episodes", "--pairs", "held-out (support, query) pairs")
    ap.add_argument("--subset", default="test", choices=("train", "val", "test"), help="held-out subset")
    ap.add_argument("--calib-pairs", dest="calib_episodes", type=int, default=32,
                    help="calibration (supports, query) pairs")
    renamed(ap, "--calib-episodes", "--calib-pairs", "calibration (support, query) pairs")
    ap.add_argument("--calib-subset", default="train", choices=("train", "val", "test"))
    ap.add_argument("--sensitivity-pairs", type=int, default=8, help="calibration pairs used to rank layers")
    ap.add_argument("--method", choices=METHODS, default="percentile",
                    help="activation range method (percentile: lowest pixel error vs FP32 on the demo model)")
    ap.add_argument("--budget", type=float, default=BUDGET, help="max PCK@0.05 points INT8 may lose vs FP32")
    ap.add_argument("--pixel-budget", type=float, default=PIXEL_BUDGET,
                    help="max p95 distance of INT8's keypoints to FP32's, crop pixels (scored keypoints)")
    ap.add_argument("--max-fallback", type=int, default=None, help="most layer groups sent back to float")
    ap.add_argument("--attention", choices=FORMS, default="plugin")
    ap.add_argument("--shots", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1, help="episode seed (official 1)")
    ap.add_argument("--mp100-split", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("out/precision"))
    ap.add_argument("--cache", type=Path, default=None, help="range cache JSON (default OUT/calibration_cache.json)")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads for torch and ONNX Runtime")
    ap.add_argument("--reuse-graphs", action="store_true",
                    help="keep OUT/fp32 and OUT/fp16 when they passed their checks for this checkpoint, attention "
                         "form, shots and toolkit version (skips the two exports)")
    ap.add_argument("--quiet", action="store_true", help="no progress output")
    return ap


def run_report(args) -> tuple[dict, str]:
    import torch

    from export.onnx import ExportOptions, export_onnx

    torch.set_num_threads(args.threads)
    progress = not args.quiet
    t0 = time.perf_counter()
    timings = {}

    def log(text: str) -> None:
        if progress:
            print(f"[report t={time.perf_counter() - t0:.0f}s] {text}", file=sys.stderr, flush=True)

    if args.threads < 1:
        raise InputError("--threads", "a thread count >= 1", args.threads)
    # the data first: a wrong folder is reported at once, not after two exports (about a minute)
    t = time.perf_counter()
    calib = load_episodes(args.data, args.calib_subset, args.calib_episodes, args.shots, args.seed,
                          split=args.mp100_split, progress=progress, desc="calibration pairs",
                          image_root=args.image_root)
    held_out = load_episodes(args.data, args.subset, args.episodes, args.shots, args.seed,
                             split=args.mp100_split, progress=progress, desc="held-out pairs",
                             image_root=args.image_root)
    timings["episodes_s"] = time.perf_counter() - t
    shared = sorted(set(calib.categories) & set(held_out.categories))
    if shared:
        warnings.warn(f"--calib-subset '{args.calib_subset}' and --subset '{args.subset}' share "
                      f"{len(shared)} of {len(held_out.categories)} held-out categories (ids {shared[:10]}): the "
                      "INT8 accuracy is then not measured on unseen categories; give the data folder a split file "
                      "(fgsa/data/README.md) to keep them apart", stacklevel=2)

    exports = {}
    for precision in ("fp32", "fp16"):
        t = time.perf_counter()
        opts = ExportOptions(ckpt=args.ckpt, out=args.out / precision, config=args.config, attention=args.attention,
                             shots=args.shots, precision=precision, quiet=args.quiet)
        exports[precision] = (args.reuse_graphs and _reusable(opts)) or export_onnx(opts)
        timings[f"export_{precision}_s"] = time.perf_counter() - t
        log(f"{precision} graph: {'ok' if exports[precision].ok else 'FAILED its checks'}")
    fp32_model = onnx.load(exports["fp32"].files["full"])
    fp16_model = onnx.load(exports["fp16"].files["full"])
    cfg = metadata.read(fp32_model)["config"]

    t = time.perf_counter()
    cache = RangeCache(args.cache or args.out / "calibration_cache.json")
    ranges, hit = cached_ranges(fp32_model, calib, args.method, cache, args.threads, progress)
    int8_model = quantize_qdq(fp32_model, ranges)
    timings["calibrate_s"] = time.perf_counter() - t
    log(f"INT8: ranges {'from cache' if hit else f'from {len(calib)} calibration pairs'} ({args.method}), "
        f"{len(quantized_layers(int8_model))} layers INT8")

    t = time.perf_counter()
    runs = {name: predict(session_for(m, args.threads), held_out, name, progress)
            for name, m in (("FP32", fp32_model), ("FP16", fp16_model), ("INT8", int8_model))}
    results = {name: pck(run, held_out) for name, run in runs.items()}
    timings["evaluate_s"] = time.perf_counter() - t
    baseline = pck(copy_support_run(held_out), held_out)
    worse = below_baseline(results["FP32"], baseline)
    if worse:
        warnings.warn(worse, stacklevel=2)
    fp32_05 = results["FP32"].as_dict()["PCK@0.05"]

    fallback_runs: list[Run] = []

    def numbers(run: Run) -> dict:
        """The budget's numbers of an INT8 run: PCK@0.05 points FP32 keeps over it, p95 crop px against FP32."""
        return {"delta": 100 * (fp32_05 - pck(run, held_out).as_dict()["PCK@0.05"]),
                "p95_crop_px": pixel_error(run, runs["FP32"], held_out)["p95_crop_px"]}

    def measure(graph) -> dict:
        fallback_runs.append(predict(session_for(graph, args.threads), held_out, "INT8 (fallback)", progress))
        return numbers(fallback_runs[-1])

    def fits(n: dict) -> bool:
        return n["delta"] <= args.budget and n["p95_crop_px"] <= args.pixel_budget

    first = numbers(runs["INT8"])
    fallback, ranking = None, []
    if not fits(first):
        t = time.perf_counter()
        log(f"INT8 loses {first['delta']:.2f} PCK@0.05 points (budget {args.budget}), p95 {first['p95_crop_px']:.2f} "
            f"crop px (budget {args.pixel_budget}): ranking layer groups")
        sens_set = calib.head(args.sensitivity_pairs)
        reference = predict(session_for(fp32_model, args.threads), sens_set, "FP32 (sensitivity)", False)
        ranking = rank_groups(int8_model, sens_set, reference, args.threads, progress)
        _, fallback = fit_budget(int8_model, ranking, measure, fits, first, args.max_fallback, progress)
        rows_before = _row("INT8 (all layers)", runs["INT8"], results["INT8"], runs["FP32"], held_out, fp32_05)
        if fallback.groups:
            int8_model = quantize_qdq(fp32_model, ranges, exclude=set(fallback.layers))
            runs["INT8"] = fallback_runs[-1]  # the same layers in float as the re-quantized graph
            results["INT8"] = pck(runs["INT8"], held_out)
        timings["fallback_s"] = time.perf_counter() - t

    # write the INT8 graph with its own metadata
    meta = metadata.read(int8_model)
    meta["precision"] = "int8"
    meta["quantization"] = {"method": args.method, "calibration_pairs": len(calib),
                            "calibration_subset": args.calib_subset, "int8_layers": len(quantized_layers(int8_model)),
                            "float_layers": fallback.layers if fallback else [],
                            "scheme": "TensorRT Q/DQ: symmetric int8, per-channel weights, no bias quantization"}
    metadata.attach(int8_model, meta)
    int8_path = args.out / "int8" / "model.onnx"
    int8_path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(int8_model, int8_path)
    onnx.checker.check_model(int8_model, full_check=False)
    violations = qdq_violations(int8_model)

    rows = [_row(name, runs[name], results[name], runs["FP32"], held_out, fp32_05) for name in ("FP32", "FP16", "INT8")]
    if fallback is not None and fallback.groups:
        rows.insert(2, rows_before)
    int8_row = rows[-1]  # the final INT8 graph's PCK and pixel error against FP32, as in the table
    final = {"delta": -int8_row["delta_pck05"], "p95_crop_px": int8_row["pixel_error_vs_fp32"]["p95_crop_px"]}
    final_delta = final["delta"]
    interval = delta_interval(results["INT8"], results["FP32"])
    scored = int8_row["pixel_error_vs_fp32"]["keypoints"]
    checks = {
        "fp32_export_ok": exports["fp32"].ok,
        "fp16_export_ok": exports["fp16"].ok,  # parity vs PyTorch fp32 + lint + FP32 islands
        "fp16_parity": exports["fp16"].report["parity"],
        "int8_qdq_rules_ok": not violations, "int8_qdq_violations": violations[:20],
        "int8_within_budget": fits(final),
    }
    report = {
        "checkpoint": str(args.ckpt), "config": cfg.get("name"), "data": str(args.data), "subset": args.subset,
        "images": len(held_out), "calibration": {"subset": args.calib_subset, "pairs": len(calib),
                                                  "method": args.method, "cache_hit": hit},
        "attention": args.attention, "budget_pck05_points": args.budget, "rows": rows,
        "int8_delta_pck05_points": final_delta, "copy_support_baseline": baseline.as_dict(),
        "int8_p95_crop_px": final["p95_crop_px"], "pixel_budget_p95_crop_px": args.pixel_budget,
        "scored_keypoints": scored, "int8_delta_pck05_ci95": list(interval),
        "decided": interval[1] <= args.budget or interval[0] > args.budget,
        "fallback": None if fallback is None else {
            "groups": [{"group": s.group, "layers": s.layers, "sensitivity_px": s.error_px} for s in fallback.groups],
            "steps": fallback.steps, "within_budget": fallback.within_budget},
        "sensitivity": [{"group": s.group, "layers": len(s.layers), "error_px": s.error_px} for s in ranking],
        "graphs": {"fp32": str(exports["fp32"].files["full"]), "fp16": str(exports["fp16"].files["full"]),
                   "int8": str(int8_path)},
        "checks": checks, "ok": all(v for k, v in checks.items() if k.endswith("_ok") or k == "int8_within_budget"),
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
        "seconds": round(time.perf_counter() - t0, 1),
    }
    text = markdown(rows, {"images": len(held_out), "data": args.data, "subset": args.subset})
    text += f"\n\nINT8: {len(quantized_layers(int8_model))} layers with Q/DQ ({args.method} ranges, " \
            f"{len(calib)} '{args.calib_subset}' calibration pairs); budget {args.budget} PCK@0.05 points and p95 " \
            f"{args.pixel_budget:g} crop px against FP32: {'met' if fits(final) else 'NOT met'} (Δ " \
            f"{0.0 - final_delta:+.2f} points, p95 {final['p95_crop_px']:.2f} crop px, over {scored} scored " \
            f"keypoints of {len(held_out)} pairs)."
    if not report["decided"]:
        text += (f" Too few pairs to decide the PCK budget: the 95 % interval of the loss, [{interval[0]:.2f}, "
                 f"{interval[1]:.2f}] points, contains the budget; evaluate more --pairs.")
    if fallback is not None:
        if fallback.groups:
            text += "\n\nLayers sent back to float (FP32 in the strongly typed engine), most sensitive first:\n"
            for s in fallback.groups:
                text += f"\n- `{s.group}` (sensitivity {s.error_px:.3f} crop px): " + ", ".join(f"`{n}`" for n in s.layers)
        else:
            text += "\n\nNo layer group could be sent back (--max-fallback 0 or nothing quantized)."
    text += "\n\nChecks: " + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in checks.items() if k.endswith("_ok"))
    text += f". Total {report['seconds']:.0f} s."
    return report, text


@command
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    report, text = run_report(args)
    write_report(args.out, "report", text, report, clean=False, json_default=_json_default, newline=False)
    print(text)
    print(f"\nwrote {args.out / 'report.md'}, {args.out / 'report.json'}")
    return 0 if report["ok"] else 1


def _json_default(x):
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


if __name__ == "__main__":
    sys.exit(main())
