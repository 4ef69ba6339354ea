"""``python -m export.sampling_bench``: one FGSA module's sampling in ONNX Runtime, two ways.

    python -m export.sampling_bench [--threads 2] [--iterations 30] [--batch 1] [--out out/sampling_bench]

Both graphs are exported from the same op boundary the model uses (:mod:`export.forms`), for FMMP sizes
(K = 70, 8 side heads x 8 heads, Dh = 32, levels 8x8 / 16x16 / 32x32, 4 points):

- ``plugin``: one ``FGSA_Attention`` node, run natively by libfgsa_ort_ops.so;
- ``portable``: the portable form's subgraph (reference gather by one-hot MatMul, location arithmetic,
  softmax, one GridSample per level on per-level value maps, weighted sums), each input in the layout its
  form receives inside the model.

Timed in alternating blocks in one process (medians); the outputs are checked equal first. Writes
``sampling_bench.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from export import forms
from fgsa.cli import command, write_report
from fgsa.errors import InputError
from fgsa.ops import reference
from kernels.ort_library import BUILD_HINT, find_library
from kernels.tools import cases

SHAPES = cases.FMMP_SHAPES
NAMES = ("value", "ref_points", "links", "offsets", "logits")


class _Sampling(torch.nn.Module):
    def __init__(self, form: str):
        super().__init__()
        self.form = form

    def forward(self, *args):
        fn = forms.IMPLEMENTATIONS[self.form][1]
        value, rest = (args[:len(SHAPES)], args[len(SHAPES):]) if self.form == "portable" else (args[0], args[1:])
        return fn(value, SHAPES, None, *rest)


def inputs(batch: int, seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """The same FGSA inputs for both forms: {form: feed}; the portable form gets per-level value maps."""
    case = cases.make_fgsa_case(batch, invalid_links=False, seed=seed)
    f32 = lambda t: t.to(torch.float32).numpy()  # noqa: E731
    common = {"ref_points": f32(case.ref_points), "links": case.links.numpy(), "offsets": f32(case.offsets),
              "logits": f32(case.logits)}
    value = f32(case.value)  # [B, Len_in, HM, Dh]
    maps = {}
    for lvl, ((h, w), start) in enumerate(zip(SHAPES, reference.level_starts(SHAPES))):
        part = value[:, start:start + h * w]  # [B, H*W, HM, Dh] -> [B, HM, Dh, H, W]
        maps[f"value_level{lvl}"] = np.ascontiguousarray(part.transpose(0, 2, 3, 1).reshape(batch, -1, value.shape[3], h, w))
    return {"plugin": {"value": value, **common}, "portable": {**maps, **common}}


def export_graph(form: str, feed: dict[str, np.ndarray]) -> onnx.ModelProto:
    names = list(feed)
    buf = io.BytesIO()
    with forms.attention_form(form), warnings.catch_warnings():
        # as export.onnx's trace: the level shapes are Python constants by design (tracer and legacy-exporter
        # warnings say so); the graph is checked by the bench's own comparison
        warnings.simplefilter("ignore")
        torch.onnx.export(_Sampling(form), tuple(torch.from_numpy(feed[n]) for n in names), buf, input_names=names,
                          output_names=["output"], opset_version=17, dynamo=False)
    return onnx.load_from_string(buf.getvalue())


def session(model: onnx.ModelProto, threads: int, library):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # fair to the other row
    if library is not None:
        options.register_custom_ops_library(str(library))
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def run(args: argparse.Namespace) -> dict:
    library = find_library(args.ort_library, "--ort-library")
    if library is None:
        raise InputError("--ort-library", "a built libfgsa_ort_ops.so", "none found", BUILD_HINT)
    if args.iterations < 3 or args.threads < 1 or args.batch < 1:
        raise InputError("--iterations/--threads/--batch", "at least 3 / 1 / 1",
                         f"{args.iterations} / {args.threads} / {args.batch}")
    feeds = inputs(args.batch)
    sessions = {form: session(export_graph(form, feed), args.threads, library) for form, feed in feeds.items()}
    outs = {form: sessions[form].run(None, feeds[form])[0] for form in sessions}
    max_diff = float(np.abs(outs["plugin"] - outs["portable"]).max())
    nodes = {form: len(export_graph(form, feeds[form]).graph.node) for form in feeds}
    times: dict[str, list[float]] = {form: [] for form in sessions}
    for form in sessions:  # warm-up
        sessions[form].run(None, feeds[form])
    rounds = 3
    for _ in range(rounds):
        for form, sess in sessions.items():
            for _ in range(-(-args.iterations // rounds)):
                t0 = time.perf_counter()
                sess.run(None, feeds[form])
                times[form].append((time.perf_counter() - t0) * 1e3)
    med = {form: statistics.median(t) for form, t in times.items()}
    return {"batch": args.batch, "threads": args.threads, "library": str(library), "nodes": nodes,
            "max_abs_diff": max_diff, "median_ms": med, "min_ms": {f: min(t) for f, t in times.items()},
            "calls": {f: len(t) for f, t in times.items()}, "portable_over_plugin": med["portable"] / med["plugin"]}


def to_markdown(r: dict) -> str:
    rows = [f"| {form} | {r['nodes'][form]} | {r['median_ms'][form]:.2f} | {r['min_ms'][form]:.2f} | {r['calls'][form]} |"
            for form in ("plugin", "portable")]
    return "\n".join([
        f"# One FGSA module's sampling in ONNX Runtime (B={r['batch']}, K=70, 64 heads, {r['threads']} threads)", "",
        "| form | nodes | median ms | min ms | calls |", "|---|---|---|---|---|", *rows, "",
        f"portable / plugin (native) = **{r['portable_over_plugin']:.2f}x**; outputs differ by at most "
        f"{r['max_abs_diff']:.1e}; native ops: {r['library']}"])


@command(one_line=False)
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m export.sampling_bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--iterations", type=int, default=30, help="timed calls per form")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--ort-library", type=Path, default=None, help="libfgsa_ort_ops.so (default: $FGSA_ORT_LIBRARY, build/)")
    p.add_argument("--out", type=Path, default=Path("out/sampling_bench"))
    args = p.parse_args(argv)
    result = run(args)
    md = to_markdown(result)
    write_report(args.out, "sampling_bench", md, result, clean=False)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
