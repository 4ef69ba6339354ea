"""``python -m export.onnx --ckpt model.pth``: checkpoint to validated ONNX graph(s).

Every export checks itself: onnx.checker (full) and shape inference, onnx-graphsurgeon folding, a
TensorRT lint, and parity against PyTorch in ONNX Runtime on fresh random inputs (plugin-form graphs run
through the reference op). A failed check exits non-zero. The TorchScript-based exporter is used: it
traces our export-friendly model in seconds and writes our custom ops through ``symbolic`` functions.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import torch

from export import metadata
from export.cleanup import fold_and_clean
from export.forms import FORMS, GRIDSAMPLE_FORMS, attention_form
from export.graphs import example_feed, graph_module, io_specs
from export.lint import lint_for_tensorrt
from export.ort_ops import cpu_session
from export.parity import FP32_TOLERANCE, FP32_TOLERANCE_FACTOR, compare, format_table, run_onnx
from export.precision import PRECISIONS, HalfIO, PrecisionPolicy, fp16_tolerance, half_model, island_violations
from fgsa.checkpoint import load_model
from fgsa.cli import command, warn
from fgsa.errors import InputError
from fgsa.model.precision import fp32_islands

DEFAULT_OPSET = 17
BATCH_AXIS = "batch"


@dataclass
class ExportOptions:
    ckpt: Path
    out: Path = Path("out/onnx")
    config: str | None = None
    attention: str = "plugin"
    shots: int = 1
    batch: int = 1
    dynamic_batch: tuple[int, int, int] | None = None
    opset: int = DEFAULT_OPSET
    split: bool = False
    all_layers: bool = False
    parity: bool = True
    tolerance: float = FP32_TOLERANCE
    seed: int = 0
    quiet: bool = False
    precision: str = "fp32"  # "fp16": float16 graph with the policy's FP32 islands (export/precision.py)
    policy: PrecisionPolicy = field(default_factory=PrecisionPolicy)

    def validate(self) -> None:
        if self.attention not in FORMS:
            raise InputError("--attention", f"one of {', '.join(FORMS)}", self.attention)
        if self.precision not in PRECISIONS:
            raise InputError("--precision", f"one of {', '.join(PRECISIONS)}", self.precision)
        if self.shots < 1:
            raise InputError("--shots", "at least 1 support shot", self.shots)
        if self.batch < 1:
            raise InputError("--batch", "a batch size >= 1", self.batch)
        if self.dynamic_batch is not None:
            lo, opt, hi = self.dynamic_batch
            if not 1 <= lo <= opt <= hi:
                raise InputError("--dynamic-batch", "MIN:OPT:MAX with 1 <= MIN <= OPT <= MAX", self.dynamic_batch)
        if self.opset < 17:
            raise InputError("--opset", ">= 17 (LayerNormalization; GridSample needs 16)", self.opset)

    @property
    def trace_batch(self) -> int:
        return self.dynamic_batch[1] if self.dynamic_batch else self.batch

    @property
    def parity_batches(self) -> list[int]:
        return sorted(set(self.dynamic_batch)) if self.dynamic_batch else [self.batch]

    @contextlib.contextmanager
    def model_context(self):
        """How the exported model runs, traced or eager: its attention form and, for FP16, the FP32 islands."""
        islands = self.policy.model_points() if self.precision == "fp16" else ()
        with attention_form(self.attention, self.policy.attention), fp32_islands(islands):
            yield


@dataclass
class ExportResult:
    files: dict[str, Path]
    parity: list = field(default_factory=list)
    lint: dict = field(default_factory=dict)
    seconds: float = 0.0
    ok: bool = True
    report: dict = field(default_factory=dict)


class Progress:
    """One line per step with elapsed time: export of fmmp-r50 takes tens of seconds on 2 cores."""

    def __init__(self, total: int, quiet: bool):
        self.total, self.quiet, self.i, self.t0 = total, quiet, 0, time.perf_counter()

    def step(self, text: str) -> None:
        self.i += 1
        if not self.quiet:
            print(f"[{self.i}/{self.total}] {text} (t={time.perf_counter() - self.t0:.1f}s)", file=sys.stderr, flush=True)


#: lint warnings already printed by this process
_SAID: set[str] = set()

def _trace(module, feed: dict, inputs, outputs, opset: int, dynamic: bool, context) -> onnx.ModelProto:
    buf = io.BytesIO()
    axes = {s.name: {i: BATCH_AXIS for i, d in enumerate(s.shape) if d == BATCH_AXIS}
            for s in inputs + outputs} if dynamic else None
    with warnings.catch_warnings(), context, torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about Python ints are expected and harmless here
        torch.onnx.export(module, tuple(feed[s.name] for s in inputs), buf, input_names=[s.name for s in inputs],
                          output_names=[s.name for s in outputs], opset_version=opset, dynamic_axes=axes,
                          do_constant_folding=True, dynamo=False)
    return onnx.load_from_string(buf.getvalue())


def _graph_names(split: bool) -> list[str]:
    return ["full", "support_encoder", "predictor"] if split else ["full"]


def _torch_outputs(module, feed: dict, inputs, outputs) -> dict:
    with torch.no_grad():
        out = module(*(feed[s.name] for s in inputs))
    out = out if isinstance(out, tuple) else (out,)
    return {s.name: o.numpy() for s, o in zip(outputs, out)}


def export_onnx(opts: ExportOptions) -> ExportResult:
    opts.validate()
    t0 = time.perf_counter()
    graphs = _graph_names(opts.split)
    progress = Progress(1 + 3 * len(graphs) + int(opts.parity), opts.quiet)
    model = load_model(opts.ckpt, opts.config)
    cfg = model.cfg
    # FP16: a float16 copy (BatchNorm folded in fp32 first) traced inside the policy's FP32 islands
    exported = half_model(model, opts.policy) if opts.precision == "fp16" else model
    progress.step(f"loaded {opts.ckpt} ({cfg.name}, {sum(p.numel() for p in model.parameters()):,} parameters)")
    batch_axis = BATCH_AXIS if opts.dynamic_batch else opts.batch
    batch_meta = ({"dynamic": True, "min": opts.dynamic_batch[0], "opt": opts.dynamic_batch[1],
                   "max": opts.dynamic_batch[2]} if opts.dynamic_batch else {"dynamic": False, "size": opts.batch})
    opts.out.mkdir(parents=True, exist_ok=True)
    files, protos, modules, specs, lint = {}, {}, {}, {}, {}
    for graph in graphs:
        inputs, outputs = io_specs(cfg, graph, opts.shots, batch_axis, opts.all_layers, opts.attention)
        module = graph_module(exported, graph, opts.all_layers, opts.attention).eval()
        if opts.precision == "fp16":
            module = HalfIO(module, [s.name for s in inputs]).eval()
        feed = example_feed(cfg, inputs, opts.trace_batch, opts.seed, model, opts.attention)
        proto = _trace(module, feed, inputs, outputs, opts.opset, opts.dynamic_batch is not None, opts.model_context())
        progress.step(f"{graph}: traced, {len(proto.graph.node)} nodes")
        proto = fold_and_clean(proto)
        onnx.checker.check_model(proto, full_check=True)
        progress.step(f"{graph}: folded to {len(proto.graph.node)} nodes, onnx.checker passed")
        report = lint_for_tensorrt(proto)
        if opts.precision == "fp16":
            report.errors += [f"FP32 island: {v}" for v in island_violations(proto, opts.policy)]
        lint[graph] = report.to_dict()
        meta = metadata.graph_metadata(cfg, graph, inputs, outputs, opts.attention, opts.opset,
                                       getattr(model, "checkpoint_sha256", ""), opts.shots, batch_meta)
        meta["precision"] = opts.precision
        if opts.precision == "fp16":
            meta["precision_policy"] = {"fp32": opts.policy.kept()}
        metadata.attach(proto, meta)
        name = "model.onnx" if graph == "full" else f"{graph}.onnx"
        files[graph] = opts.out / name
        files[graph].write_bytes(proto.SerializeToString())
        protos[graph], modules[graph], specs[graph] = proto, module, (inputs, outputs)
        status = "ok" if report.ok else f"{len(report.errors)} errors"
        progress.step(f"{graph}: TensorRT lint {status}{', ' + str(len(report.warnings)) + ' warnings' if report.warnings else ''}; wrote {files[graph]}")
        for w in report.warnings:
            if w not in _SAID:  # the same lint warning for each graph of an export (or each export) once
                _SAID.add(w)
                warn(w)
        for e in report.errors:
            print(f"lint error ({graph}): {e}", file=sys.stderr)

    rows = []
    if opts.parity:
        rows = parity_rows(model, protos, modules, specs, opts)
        progress.step(f"parity vs PyTorch{' fp32' if opts.precision == 'fp16' else ''} on fresh random inputs, "
                      f"batch sizes {opts.parity_batches}")
    ok = all(r.ok for r in rows) and all(v["ok"] for v in lint.values())
    seconds = time.perf_counter() - t0
    report = {
        "checkpoint": {"path": str(opts.ckpt), "sha256": getattr(model, "checkpoint_sha256", "")},
        "metadata": metadata.read(protos["full"]), "attention": opts.attention, "opset": opts.opset,
        "precision": opts.precision,
        "graphs": {g: {"file": files[g].name, "nodes": len(protos[g].graph.node),
                       "bytes": files[g].stat().st_size, "sha256": metadata.sha256_bytes(files[g].read_bytes()),
                       "inputs": [s.to_dict() for s in specs[g][0]], "outputs": [s.to_dict() for s in specs[g][1]]}
                   for g in graphs},
        "lint": lint, "parity": [r.to_dict() for r in rows], "ok": ok, "export_seconds": round(seconds, 2),
    }
    (opts.out / "export.json").write_text(json.dumps(report, indent=2, sort_keys=True))
    return ExportResult(files, rows, lint, seconds, ok, report)


def parity_rows(model, protos, modules, specs, opts: ExportOptions) -> list:
    """ONNX Runtime vs PyTorch on fresh random inputs, per output within a tolerance derived from a
    same-precision reference and never below ``opts.tolerance``:

    - FP32 graphs: against PyTorch's float64 result, within ``FP32_TOLERANCE_FACTOR`` x the error PyTorch's own
      float32 result makes against it on the same inputs. A trained model whose sampling offsets and attention weights are
      far from their initialisation is more sensitive to rounding than a fresh one (fmmp-r50: 1.2e-4 in
      PyTorch itself), so no fixed tolerance fits every model;
    - FP16 graphs: ``FP16_TOLERANCE_FACTOR`` x the error the float16 PyTorch model with the same policy makes.

    The reference error is reported in rows of its own ("PyTorch fp64" / "PyTorch fp16") next to the ONNX
    Runtime rows, so both numbers are printed."""
    pixels = float(model.cfg.input_size)
    sessions = {g: cpu_session(p) for g, p in protos.items()}
    fp16 = opts.precision == "fp16"
    fp32_modules = ({g: graph_module(model, g, opts.all_layers, opts.attention).eval() for g in protos}
                    if fp16 else modules)

    def reference(graph, feed, inputs, outputs, case) -> tuple[dict, dict]:
        # the predictor's state inputs are in the form's value layout: PyTorch reads them in that form
        layout = attention_form(opts.attention) if graph == "predictor" else contextlib.nullcontext()
        with layout:
            want = _torch_outputs(fp32_modules[graph], feed, inputs, outputs)
        if not fp16:
            if graph not in fp64_modules:
                fp64_modules[graph] = copy.deepcopy(fp32_modules[graph]).double()
            feed64 = {k: (v.double() if torch.is_tensor(v) and v.is_floating_point() else v) for k, v in feed.items()}
            with attention_form(opts.attention) if graph == "predictor" else contextlib.nullcontext():
                want64 = _torch_outputs(fp64_modules[graph], feed64, inputs, outputs)
            tol = {k: max(opts.tolerance, FP32_TOLERANCE_FACTOR * _max_abs(want[k], want64[k])) for k in want}
            if case is not None:
                rows.extend(rows_for("PyTorch fp32 vs fp64", f"{graph} {case}", want, want64, tol))
            # the graph is held to the same reference as PyTorch's float32 (flash-attention's rule: the
            # implementation's error against float64 within 2x PyTorch's own): against the float32 result
            # the two float32 errors would add up, and on an AVX2 host ONNX Runtime's plugin ops differ from
            # PyTorch fp32 by 2.2x PyTorch's own error while both are as close to float64
            return want64, tol
        with opts.model_context():
            same_precision = _torch_outputs(modules[graph], feed, inputs, outputs)
        tol = fp16_tolerance(same_precision, want, opts.tolerance)
        if case is not None:  # the error the tolerance is derived from, next to the ONNX Runtime rows
            rows.extend(rows_for("PyTorch fp16", f"{graph} {case}", same_precision, want, tol))
        return want, tol

    def rows_for(graph, case, got, want, tol) -> list:
        return [r for k in want for r in compare(graph, case, got, {k: want[k]}, pixels, tol[k])]

    fp64_modules: dict = {}
    rows = []
    for b in opts.parity_batches:
        seed = opts.seed + 1000 + b  # fresh inputs, never the tracing example
        for graph in protos:
            if graph == "support_encoder":
                continue  # checked through the composition below, in keypoint units
            inputs, outputs = specs[graph]
            feed = example_feed(model.cfg, inputs, b, seed, model, opts.attention)
            case = f"random B={b} S={opts.shots}"
            want, tol = reference(graph, feed, inputs, outputs, case)
            rows += rows_for(graph, case, run_onnx(protos[graph], feed, sessions[graph]), want, tol)
        if "support_encoder" in protos:
            inputs, outputs = specs["full"]
            feed = example_feed(model.cfg, inputs, b, seed, model, opts.attention)
            state = run_onnx(protos["support_encoder"], feed, sessions["support_encoder"])
            got = run_onnx(protos["predictor"], {**feed, **state}, sessions["predictor"])
            want, tol = reference("full", feed, inputs, outputs, None)
            rows += rows_for("split", f"encoder->predictor B={b} S={opts.shots}", got, want, tol)
    return rows


def _max_abs(a, b) -> float:
    diff = np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))
    return float(diff.max()) if diff.size and np.isfinite(diff).all() else float("inf")


def _dynamic(text: str) -> tuple[int, int, int]:
    try:
        lo, opt, hi = (int(v) for v in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected MIN:OPT:MAX integers, got {text!r}") from None
    return lo, opt, hi


@command(one_line=False)
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m export.onnx", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", type=Path, required=True, help="official mmcv .pth, ours, or a bare state_dict")
    p.add_argument("--config", help="model preset or config JSON (default: embedded, else fmmp-r50)")
    p.add_argument("--out", type=Path, default=Path("out/onnx"))
    p.add_argument("--attention", choices=FORMS, default="plugin",
                   help="plugin: our TensorRT plugin ops; trt-builtin: MultiscaleDeformableAttnPlugin_TRT; "
                        "portable: standard ops (GridSample)")
    p.add_argument("--shots", type=int, default=1, help="support images per query (S)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--batch", type=int, default=1, help="static batch size")
    g.add_argument("--dynamic-batch", type=_dynamic, metavar="MIN:OPT:MAX", help="dynamic batch axis")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET)
    p.add_argument("--split", action="store_true", help="also write support_encoder.onnx + predictor.onnx")
    p.add_argument("--all-layers", action="store_true", help="also output points_per_layer")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="fp16: float16 graph with FP32 islands (keypoint coordinates, softmax, LayerNorm, "
                        "attention sampling), fp32 I/O, for strongly typed TensorRT builds")
    p.add_argument("--keep-fp32", default="all", metavar="PARTS",
                   help="with --precision fp16: the parts kept FP32, a comma list of coords, softmax, layernorm, "
                        "attention (or all / none); default all")
    p.add_argument("--no-parity", action="store_true")
    p.add_argument("--tolerance", type=float, default=FP32_TOLERANCE,
                   help="floor of the parity tolerance, normalised units; the tolerance used is the larger of "
                        f"this and {FP32_TOLERANCE_FACTOR:g}x PyTorch's own fp32-vs-fp64 error on the same inputs")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    config = args.config
    if config and Path(config).is_file():
        config = json.loads(Path(config).read_text())
    opts = ExportOptions(ckpt=args.ckpt, out=args.out, config=config, attention=args.attention,
                         shots=args.shots, batch=args.batch, dynamic_batch=args.dynamic_batch, opset=args.opset,
                         split=args.split, all_layers=args.all_layers, parity=not args.no_parity,
                         tolerance=args.tolerance, seed=args.seed, precision=args.precision)
    opts.policy = PrecisionPolicy.parse(args.keep_fp32)
    result = export_onnx(opts)
    if result.parity:
        print(format_table(result.parity))
    if opts.attention in GRIDSAMPLE_FORMS:
        print(f"note: {opts.attention} form uses GridSample; see the warning above before building with TensorRT")
    print(f"{'OK' if result.ok else 'FAILED'}: {', '.join(str(f) for f in result.files.values())} "
          f"+ {opts.out / 'export.json'} in {result.seconds:.1f} s")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
