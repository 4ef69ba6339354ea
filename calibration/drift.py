"""``python -m calibration.drift``: which tensor of an FP16 / INT8 graph leaves its budget first, layer by layer.

    python -m calibration.drift --ckpt CKPT --data DIR [--pairs 4] [--precisions fp16,int8]
        [--fp16 GRAPH | --keep-fp32 PARTS] [--int8 GRAPH | --exclude NODE ...] [--out out/drift]

The FP32 graph of the checkpoint and the graphs under test run on the same real episodes with every tensor
marked as an output, in Polygraphy's ONNX Runtime runner; Polygraphy's comparator measures each tensor
against FP32 and against its budget (``calibration.layerwise``). The graphs under test: ``--fp16 GRAPH`` or
the FP16 export with ``--keep-fp32 PARTS`` (default: the toolkit's FP16 graph, every island kept);
``--int8 GRAPH`` or the INT8 graph calibrated with ``--method`` / ``--exclude`` (default: the toolkit's INT8
graph, ``python -m calibration`` defaults). Budgets come from the toolkit's own graph of each precision.

Writes ``OUT/drift.md``, ``OUT/drift.json`` (every compared tensor in graph order) and ``OUT/drift.png``
(error along the graph per precision). For the first tensor over budget the report names its op, the model
part, and the fix: the ``--keep-fp32`` part that keeps it FP32, or the nodes for ``--exclude``. Exit 0 when
nothing is over budget, 1 when something is, 2 on bad input.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import onnx
import polygraphy

from calibration.drift_plot import plot
from calibration.episodes import load_episodes
from calibration.qdq import is_qdq_graph, quantize_qdq
from calibration.ranges import METHODS, RangeCache, cached_ranges
from calibration.report import _reusable
from export import metadata
from export.precision_rules import PrecisionPolicy
from fgsa.cli import add_checkpoint_and_data, command, md_table, renamed, write_report
from fgsa.errors import InputError

TOP_ROWS = 8


def build_parser() -> argparse.ArgumentParser:
    from export.forms import FORMS

    ap = argparse.ArgumentParser(prog="python -m calibration.drift", description=__doc__.split("\n\n")[0],
                                 epilog="See calibration/README.md.")
    add_checkpoint_and_data(ap)
    ap.add_argument("--pairs", dest="episodes", type=int, default=4,
                    help="real (supports, query) pairs to run, as calibration.report's --pairs")
    renamed(ap, "--episodes", "--pairs", "real (support, query) pairs")
    ap.add_argument("--subset", default="test", choices=("train", "val", "test"))
    ap.add_argument("--precisions", default="fp16,int8", help="comma list of fp16, int8")
    ap.add_argument("--fp16", type=Path, default=None, help="FP16 graph under test (default: exported here)")
    ap.add_argument("--keep-fp32", default=None,
                    help="export the FP16 graph under test with only these FP32 islands (export.onnx --keep-fp32)")
    ap.add_argument("--int8", type=Path, default=None, help="INT8 Q/DQ graph under test (default: calibrated here)")
    ap.add_argument("--exclude", nargs="*", default=[], help="INT8 under test: these layers stay float")
    ap.add_argument("--method", choices=METHODS, default="percentile", help="INT8 under test: range method")
    ap.add_argument("--calib-pairs", dest="calib_episodes", type=int, default=32,
                    help="calibration (supports, query) pairs of the INT8 graphs")
    renamed(ap, "--calib-episodes", "--calib-pairs", "calibration (support, query) pairs")
    ap.add_argument("--calib-subset", default="train", choices=("train", "val", "test"))
    ap.add_argument("--attention", choices=FORMS, default="portable",
                    help="attention form (portable: plain ONNX Runtime; plugin: through the reference ops)")
    ap.add_argument("--shots", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("out/drift"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reuse-graphs", action="store_true", help="keep OUT/fp32 and OUT/fp16 when still valid")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--verbose", action="store_true", help="Polygraphy's own log of every comparison")
    return ap


def _precisions(text: str) -> list[str]:
    items = [p.strip() for p in text.split(",") if p.strip()]
    if not items or any(p not in ("fp16", "int8") for p in items):
        raise InputError("--precisions", "a comma list of fp16, int8", text)
    return items


def _graph_file(path: Path | None, flag: str):
    if path is None:
        return None
    if not path.is_file():
        raise InputError(flag, "an ONNX graph of the same checkpoint", f"{path} (not found)")
    return onnx.load(path)


def summarize(precision: str, rows, test, reference, dropped: list[str] | None) -> dict:
    """The first tensor over budget with its op, model part and fix; the largest error / budget ratios."""
    from calibration.attribution import exclude_nodes, keep_fp32_part, model_part
    from calibration.layerwise import first_over

    first = first_over(rows)
    out = {"precision": precision, "tensors": len(rows), "compared": sum(r.max_abs is not None for r in rows),
           "over_budget": sum(r.over for r in rows), "first_over": None}
    if first is not None:
        info = first.to_dict()
        info["model_part"] = model_part(first.node)
        if precision == "fp16":
            part, where = keep_fp32_part(test, reference if reference is not None else test, first.test_name, dropped)
            info["keep_fp32"] = part
            info["island_missing_at"] = where
        else:
            info["exclude"] = exclude_nodes(test, first.test_name)
        out["first_over"] = info
    # error / budget first; ties (a graph measured against itself sits at 1 / BUDGET_FACTOR everywhere) by
    # relative error, so the rows still show where the error is largest
    ranked = sorted((r for r in rows if r.ratio is not None), key=lambda r: (-round(r.ratio, 3), -(r.rel or 0.0)))[:TOP_ROWS]
    out["top"] = [dict(r.to_dict(), model_part=model_part(r.node)) for r in ranked]
    return out


def _fmt(v, spec=".3g") -> str:
    return "—" if v is None else format(v, spec)


def _row_cells(r: dict, part: str, first: int | None = None) -> list[str]:
    px = f"{_fmt(r['px'])} / {_fmt(r['budget_px'])} px" if r.get("px") is not None else ""
    flag = ("**FIRST OVER BUDGET**" if r["index"] == first else "**OVER**") if r["over"] else ""
    return [str(r["index"]), f"`{r['tensor']}`", r["op"], part, r["test_dtype"] or "—", _fmt(r["rel"]),
            _fmt(r["budget_rel"]), px, _fmt(r["ratio"], ".2f"), flag]


HEADS = ["#", "tensor", "op", "model part", "dtype", "rel err", "budget", "crop px (err / budget)", "err/budget", ""]


def fix_line(summary: dict, kept: list[str] | None) -> str:
    f = summary["first_over"]
    if f is None:
        return "nothing over budget."
    head = (f"first over budget: **#{f['index']} `{f['tensor']}`** ({f['op']}, {f['model_part']}; node "
            f"`{f['node']}`), relative error {_fmt(f['rel'])} vs budget {_fmt(f['budget_rel'])}")
    if f.get("px") is not None:
        head += f" = {_fmt(f['px'])} crop px vs {_fmt(f['budget_px'])}"
    if summary["precision"] == "fp16":
        part = f.get("keep_fp32")
        if part is None:
            return head + ". No FP32 island of the policy covers it (it is computed as in the reference graph)."
        where = f"the island is missing at `{f['island_missing_at']}`"
        if kept is None:  # a graph without the policy in its metadata: name the part only
            return head + f". Fix: add `{part}` to the graph's `--keep-fp32` parts; {where}."
        parts = sorted(set(kept) | {part}, key=["coords", "softmax", "layernorm", "attention"].index)
        return (head + f". Fix: keep `{part}` in FP32 (`python -m export.onnx --precision fp16 --keep-fp32 "
                f"{','.join(parts)}`); {where}.")
    nodes = f.get("exclude") or []
    if not nodes:
        return head + ". No INT8 layer feeds it."
    return head + ". Fix: keep the nearest INT8 layers float: `python -m calibration ... --exclude " + \
        " ".join(nodes) + "`."


def markdown(report: dict) -> str:
    lines = [f"# Layerwise drift vs FP32 ({report['episodes']} real pairs of `{report['data']}` "
             f"'{report['subset']}', {report['attention']} form, Polygraphy {report['polygraphy']} + ONNX Runtime CPU)",
             ""]
    for s in report["precisions"]:
        lines += [f"## {s['precision'].upper()}: {s['over_budget']} of {s['compared']} tensors over budget", "",
                  fix_line(s, report.get("fp16_kept")), "", "Largest error / budget ratios:", "",
                  md_table(HEADS, [_row_cells(r, r["model_part"], (s["first_over"] or {}).get("index"))
                                    for r in s["top"]]), ""]
    lines += [f"Relative error = max |x − x_fp32| / max |x_fp32| over the pairs; coordinates also in crop pixels. "
              f"Budget per tensor = {report['budget_factor']:g} × the error of the reference graph "
              f"(the toolkit's own graph of that precision), never below {report['floor']:g} × max |x_fp32|.", "",
              f"Plot: `{report['png']}`. Total {report['seconds']:.0f} s.", ""]
    for s in report["precisions"]:
        first = (s["first_over"] or {}).get("index")
        lines += [f"## {s['precision'].upper()}: every tensor in graph order", "",
                  md_table(HEADS, [_row_cells(r, "", first) for r in report["rows"][s["precision"]]]), ""]
    return "\n".join(lines)


def run(args) -> dict:
    import torch

    from calibration.layerwise import BUDGET_FACTOR, layerwise
    from export.onnx import ExportOptions, export_onnx
    from export.parity import FP32_TOLERANCE

    torch.set_num_threads(args.threads)
    precisions = _precisions(args.precisions)
    if args.episodes < 1:
        raise InputError("--pairs", "at least 1 pair", args.episodes)
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    progress = not args.quiet

    def log(text: str) -> None:
        if progress:
            print(f"[drift t={time.perf_counter() - t0:.0f}s] {text}", file=sys.stderr, flush=True)

    def export(precision: str, out: Path, policy=PrecisionPolicy(), check: bool = True):
        opts = ExportOptions(ckpt=args.ckpt, out=out, config=args.config, attention=args.attention, shots=args.shots,
                             precision=precision, policy=policy, quiet=True, parity=check)
        return onnx.load(((args.reuse_graphs and check and _reusable(opts)) or export_onnx(opts)).files["full"])

    fp16_test, int8_test = _graph_file(args.fp16, "--fp16"), _graph_file(args.int8, "--int8")
    if int8_test is not None and not is_qdq_graph(int8_test):
        raise InputError("--int8", "a Q/DQ graph from python -m calibration", f"{args.int8} (no Q/DQ nodes)")
    kept_test = PrecisionPolicy.parse(args.keep_fp32).kept() if args.keep_fp32 is not None else None
    t = time.perf_counter()
    fp32 = export("fp32", args.out / "fp32")
    want = metadata.read(fp32).get("checkpoint_sha256")
    for flag, given in (("--fp16", fp16_test), ("--int8", int8_test)):
        got = None if given is None else metadata.read(given).get("checkpoint_sha256")
        if got is not None and got != want:
            raise InputError(flag, f"a graph of --ckpt (checkpoint SHA-256 {want[:12]}...)", f"one of {got[:12]}...",
                             "export / calibrate it from the same checkpoint")
    graphs, dropped = {}, None
    if "fp16" in precisions:
        fp16_ref = export("fp16", args.out / "fp16")
        if fp16_test is None and kept_test is not None and set(kept_test) != set(PrecisionPolicy().kept()):
            # a graph that breaks the policy fails the export's island lint by design: no parity gate
            fp16_test = export("fp16", args.out / "fp16-test", PrecisionPolicy.parse(args.keep_fp32), check=False)
        if fp16_test is not None:
            kept = metadata.read(fp16_test).get("precision_policy", {}).get("fp32")
            dropped = sorted(set(PrecisionPolicy().kept()) - set(kept)) if kept is not None else None
            kept_test = kept_test if kept_test is not None else kept  # what the fix line adds a part to
        graphs["fp16"] = (fp16_test if fp16_test is not None else fp16_ref, fp16_ref if fp16_test is not None else None)
    timings["export_s"] = time.perf_counter() - t
    log("graphs exported")

    t = time.perf_counter()
    episodes = load_episodes(args.data, args.subset, args.episodes, args.shots, args.seed, progress=progress,
                             desc="drift pairs", image_root=args.image_root)
    if "int8" in precisions:
        calib = load_episodes(args.data, args.calib_subset, args.calib_episodes, args.shots, args.seed,
                              progress=progress, desc="calibration pairs", image_root=args.image_root)
        cache = RangeCache(args.out / "calibration_cache.json")
        ranges, _ = cached_ranges(fp32, calib, "percentile", cache, args.threads, progress)
        int8_ref = quantize_qdq(fp32, ranges)
        if int8_test is None and (args.exclude or args.method != "percentile"):
            test_ranges = ranges if args.method == "percentile" else \
                cached_ranges(fp32, calib, args.method, cache, args.threads, progress)[0]
            int8_test = quantize_qdq(fp32, test_ranges, exclude=set(args.exclude))
        graphs["int8"] = (int8_test if int8_test is not None else int8_ref, int8_ref if int8_test is not None else None)
    timings["episodes_calibration_s"] = time.perf_counter() - t
    log(f"{len(episodes)} pairs; comparing {', '.join(graphs)} layer by layer")

    feeds = list(episodes.feeds())
    t = time.perf_counter()
    results = layerwise(fp32, graphs, feeds, args.threads, args.verbose)
    timings["layerwise_s"] = time.perf_counter() - t
    summaries, all_rows = [], {}
    for precision, rows in results.items():
        test, reference = graphs[precision]
        all_rows[precision] = [r.to_dict() for r in rows]
        summaries.append(summarize(precision, rows, test, reference, dropped if precision == "fp16" else None))
        log(f"{precision}: {summaries[-1]['over_budget']} tensors over budget")

    png = plot({f"{s['precision'].upper()} vs FP32: relative error along the graph (grey: budget)": all_rows[s["precision"]]
                for s in summaries}, args.out / "drift.png")
    return {"checkpoint": str(args.ckpt), "data": str(args.data), "subset": args.subset, "episodes": len(episodes),
            "attention": args.attention, "polygraphy": polygraphy.__version__, "budget_factor": BUDGET_FACTOR,
            "floor": FP32_TOLERANCE, "fp16_kept": kept_test, "precisions": summaries, "rows": all_rows,
            "png": str(png), "timings_s": {k: round(v, 1) for k, v in timings.items()},
            "seconds": round(time.perf_counter() - t0, 1)}


@command(one_line=False)
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    report = run(args)
    write_report(args.out, "drift", markdown(report), report, clean=False, newline=False)
    for s in report["precisions"]:
        print(f"{s['precision'].upper()}: {s['over_budget']} of {s['compared']} tensors over budget; "
              + fix_line(s, report.get("fp16_kept")))
        print(md_table(HEADS, [_row_cells(r, r["model_part"]) for r in s["top"][:5]]))
    print(f"\nwrote {args.out / 'drift.md'}, {args.out / 'drift.json'}; plot: {Path(report['png']).resolve()} "
          f"({report['seconds']:.0f} s)")
    return 1 if any(s["over_budget"] for s in report["precisions"]) else 0


if __name__ == "__main__":
    sys.exit(main())
