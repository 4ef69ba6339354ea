"""Layerwise drift: every intermediate tensor of a reduced-precision graph against the FP32 graph, with Polygraphy.

Each graph gets every tensor marked as an output (Polygraphy's ``ModifyOutputs(outputs=MARK_ALL)``) and runs
in Polygraphy's ``OnnxrtRunner`` on the same real episodes (``Comparator.run``); ``Comparator.compare_accuracy``
with ``CompareFunc.simple`` measures every tensor and judges it against its budget. Nothing here computes a
difference by hand.

**Matching by name.** The FP16 export wraps the model in ``HalfIO`` (scope ``/inner``) and adds Casts at the
FP32 islands; calibration adds Q/DQ pairs in front of INT8 layers. Every other tensor keeps the name the
exporter gave it in the FP32 graph, so a tensor is matched by its name with the ``/inner`` scope dropped, the
producer's op type must agree, and tensors made by Cast / QuantizeLinear / DequantizeLinear are not compared
themselves: an FP16 tensor is compared where it is produced (Polygraphy widens it to FP32), an INT8 layer's
effect shows at its output. Only floating-point tensors are compared, and not those of pure data-movement ops
(``DATA_MOVEMENT``: Reshape, Transpose, Gather, Concat, ...), which carry their input's error unchanged.

**Units.** Relative error = max |x - x_fp32| / max |x_fp32| of the tensor over all episodes. Coordinates are
also given in crop pixels: tensors on the keypoint-coordinate paths (``calibration.graph.coordinate_analysis``)
with a last axis of 2 and values in the unit square (keypoints, reference points, sampling locations:
x 256 px), and the sampling grids of GridSample (``[-1, 1]`` across the crop: x 128 px).

**Budget per tensor**, derived the way the FP16 parity tolerance is (export/precision.py: 2 x the error the
same-precision reference makes, never below the fp32 tolerance): ``BUDGET_FACTOR`` x the max abs error of the
*reference graph* of that precision at this tensor (the toolkit's own FP16 graph with every FP32 island of
the policy; the toolkit's own INT8 graph from ``python -m calibration``), and never below
``FP32_TOLERANCE`` x max |x_fp32| (the fp32 noise floor, 1e-4 of the tensor's scale). A tensor over budget
is one where the graph under test drifts more than twice as far from FP32 as the reference graph does.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass

import numpy as np
import onnx
import polygraphy.util
from polygraphy import constants
from polygraphy.backend.onnx import ModifyOutputs
from polygraphy.backend.onnxrt import OnnxrtRunner
from polygraphy.comparator import Comparator, SimpleCompareFunc
from polygraphy.comparator import util as comp_util
from polygraphy.logger import G_LOGGER

from calibration.accuracy import session_for
from calibration.graph import coordinate_analysis
from export.parity import FP32_TOLERANCE
from export.precision_rules import tensor_types

BUDGET_FACTOR = 2.0  # as export.precision.FP16_TOLERANCE_FACTOR: twice the reference graph's error
PASS_THROUGH = ("Cast", "QuantizeLinear", "DequantizeLinear")  # not compared themselves (see the docstring)
# ops that only move values carry their input's error unchanged: not compared (half the tensors of the graph)
DATA_MOVEMENT = ("Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten", "Identity", "Expand", "Gather",
                 "Slice", "Split", "Concat", "Tile", "Shape", "ConstantOfShape", "Constant")
WRAPPER_SCOPES = ("/inner",)  # precision.HalfIO's scope in FP16 graphs
CROP_PX = 256.0  # crop pixels per unit of normalised coordinates; GridSample grids span [-1, 1]: half that
FLOAT_TYPES = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE,
               onnx.TensorProto.BFLOAT16)


@dataclass
class TensorDrift:
    """One FP32 tensor and its counterpart in the graph under test (graph order = ``index``)."""

    index: int
    tensor: str  # the FP32 graph's name
    node: str  # the FP32 node that produces it
    op: str
    test_name: str | None  # the name in the graph under test (None: not there, e.g. folded into an island)
    test_dtype: str | None
    scale: float  # max |x_fp32| over the episodes
    max_abs: float | None  # max |x - x_fp32| over the episodes
    reference_abs: float | None  # the reference graph's max abs error at this tensor
    budget_abs: float | None
    px_per_unit: float | None  # crop pixels per unit for coordinate tensors, else None
    over: bool = False  # Polygraphy's verdict against budget_abs failed on at least one episode

    @property
    def rel(self) -> float | None:
        """None where the FP32 tensor is all zeros (no scale to be relative to; the absolute error stays)."""
        return None if self.max_abs is None or self.scale <= 0 else self.max_abs / self.scale

    @property
    def budget_rel(self) -> float | None:
        return None if self.budget_abs is None or self.scale <= 0 else self.budget_abs / self.scale

    @property
    def ratio(self) -> float | None:
        """error / budget (> 1: over budget)."""
        if self.max_abs is None or not self.budget_abs:
            return None
        return self.max_abs / self.budget_abs

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(rel=self.rel, budget_rel=self.budget_rel, ratio=self.ratio,
                 px=None if self.px_per_unit is None or self.max_abs is None else self.max_abs * self.px_per_unit,
                 budget_px=None if self.px_per_unit is None or self.budget_abs is None
                 else self.budget_abs * self.px_per_unit)
        return d


def canonical(name: str) -> str:
    """A tensor's FP32-graph name: the FP16 wrapper's scope dropped."""
    for scope in WRAPPER_SCOPES:
        if name.startswith(scope + "/"):
            return name[len(scope):]
    return name


def producers(model: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    return {o: n for n in model.graph.node for o in n.output if o}


def float_tensors(model: onnx.ModelProto) -> dict[str, int]:
    """Element type of every node output whose type is known and floating-point (shape inference)."""
    types = tensor_types(model)
    return {o: types[o] for n in model.graph.node for o in n.output if types.get(o) in FLOAT_TYPES}


def name_map(fp32: onnx.ModelProto, test: onnx.ModelProto) -> dict[str, str]:
    """test tensor name -> FP32 tensor name, for the tensors both graphs compute (see the module docstring)."""
    p32, ptest = producers(fp32), producers(test)
    out = {}
    for name, node in ptest.items():
        if node.op_type in PASS_THROUGH:
            continue
        ref = canonical(name)
        ref_node = p32.get(ref)
        if ref_node is not None and ref_node.op_type == node.op_type:
            out[name] = ref
    return out


def mark_all(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` with every tensor marked as an output (Polygraphy's loader)."""
    return ModifyOutputs(model, outputs=constants.MARK_ALL, copy=True)()


def runner(model: onnx.ModelProto, name: str, threads: int = 1):
    """Polygraphy's ONNX Runtime runner on our CPU session (plugin-form nodes through the reference ops, Q/DQ
    graphs as fake quantization with basic optimizations only: ``calibration.accuracy.session_for``)."""
    marked = mark_all(model)
    return OnnxrtRunner(lambda: session_for(marked, threads), name=name)


@contextlib.contextmanager
def quiet_polygraphy(verbose: bool = False):
    """Polygraphy logs every compared tensor; a layerwise run compares ~1,000 per episode."""
    if verbose:
        yield
        return
    # Polygraphy 0.53 formats the statistics (median, quantiles) and the values of every compared tensor
    # before its logger drops the message: 60 % of a layerwise run on the demo model (profiled). Quiet
    # runs skip the formatting; the comparison itself is untouched.
    saved = comp_util.log_output_stats, comp_util.log_compared_output_stats, polygraphy.util.indent_block
    comp_util.log_output_stats = comp_util.log_compared_output_stats = lambda *a, **k: None
    polygraphy.util.indent_block = lambda *a, **k: ""
    try:
        with G_LOGGER.verbosity(G_LOGGER.CRITICAL):
            yield
    finally:
        comp_util.log_output_stats, comp_util.log_compared_output_stats, polygraphy.util.indent_block = saved


def _px_per_unit(name: str, values: list[np.ndarray], coords: set[str], grids: set[str]) -> float | None:
    if name in grids:
        return CROP_PX / 2
    if name in coords and values[0].ndim and values[0].shape[-1] == 2:
        lo, hi = min(float(v.min()) for v in values), max(float(v.max()) for v in values)
        if -0.25 <= lo and hi <= 1.25:
            return CROP_PX
    return None


def _grid_sources(model: onnx.ModelProto, producer: dict) -> set[str]:
    """GridSample grids and the tensors they are reshaped from (same values, so the same crop-pixel units)."""
    out = set()
    for node in model.graph.node:
        if node.op_type == "GridSample":
            t = node.input[1]
            while t and t not in out:
                out.add(t)
                src = producer.get(t)
                t = src.input[0] if src is not None and src.op_type in DATA_MOVEMENT + PASS_THROUGH else None
    return out


def _max_abs(results: list, mapping: dict[str, str]) -> dict[str, float]:
    """Polygraphy compare results (one OrderedDict per episode) -> FP32 name -> max abs error over episodes."""
    out: dict[str, float] = {}
    for per_episode in results:
        for name, res in per_episode.items():
            # a bare False: Polygraphy could not compare (shapes differ); NaN differences count as infinite
            err = getattr(res, "max_absdiff", None)
            err = float(err) if err is not None and np.isfinite(err) else float("inf")
            key = mapping[name]
            out[key] = max(out.get(key, 0.0), err)
    return out


def _compare(run_results, i_test: int, i_fp32: int, mapping: dict[str, str], atol) -> tuple[dict, dict]:
    """Polygraphy's simple comparator, graph ``i_test`` against FP32 -> (max abs per FP32 name, failed names)."""
    find = lambda name, index, iter_result: [mapping[name]] if name in mapping else []  # noqa: E731
    func = SimpleCompareFunc(atol=atol, rtol=0.0, check_error_stat="max", find_output_func=find)
    acc = Comparator.compare_accuracy(run_results, comparisons=[(i_test, i_fp32)], compare_func=func)
    per_episode = list(acc[0].values())[0]  # AccuracyResults -> the one compare func -> the one pair
    failed = {mapping[name] for ep in per_episode for name, res in ep.items() if not bool(res)}
    return _max_abs(per_episode, mapping), failed


def layerwise(fp32: onnx.ModelProto, pairs: dict[str, tuple], feeds: list[dict], threads: int = 1,
              verbose: bool = False) -> dict[str, list[TensorDrift]]:
    """``pairs``: ``{label: (graph under test, reference graph or None)}``; every compared tensor of ``fp32``
    (graph order) against each graph under test, budgets from its reference (``None``: the graph under test
    is its own reference, e.g. the toolkit's own graph). One Polygraphy run serves every pair."""
    graphs = [fp32]
    for test, ref in pairs.values():
        graphs += [g for g in (test, ref) if g is not None and all(g is not h for h in graphs)]
    index = lambda g: next(i for i, h in enumerate(graphs) if h is g)  # noqa: E731
    with quiet_polygraphy(verbose):
        runners = [runner(m, f"graph{i}", threads) for i, m in enumerate(graphs)]
        run_results = Comparator.run(runners, data_loader=feeds)
    fp32_out = {name: [it[name] for it in run_results[0][1]] for name in run_results[0][1][0].keys()}
    scale = {n: max(float(np.max(np.abs(v.astype(np.float64)))) if v.size else 0.0 for v in vals)
             for n, vals in fp32_out.items()}
    p32 = producers(fp32)
    compared = {n for n in float_tensors(fp32) if p32[n].op_type not in PASS_THROUGH + DATA_MOVEMENT}
    floor = {n: FP32_TOLERANCE * scale.get(n, 0.0) for n in compared}
    coords, _ = coordinate_analysis(fp32)
    grids = _grid_sources(fp32, p32)
    order = [o for n in fp32.graph.node for o in n.output if o in compared]
    px = {n: _px_per_unit(n, fp32_out[n], coords, grids) for n in order}

    out = {}
    for label, (test, reference) in pairs.items():
        maps = {id(g): {k: v for k, v in name_map(fp32, g).items() if v in compared}
                for g in (test, reference) if g is not None}
        with quiet_polygraphy(verbose):
            source = reference if reference is not None else test
            ref_err, _ = _compare(run_results, index(source), 0, maps[id(source)], {"": float("inf")})
            budget = {n: max(BUDGET_FACTOR * ref_err[n], floor[n]) if n in ref_err else floor[n] for n in compared}
            inverse = {v: k for k, v in maps[id(test)].items()}
            if reference is None:  # its own reference: 2x its own error cannot be exceeded, no second pass
                test_err, failed = ref_err, set()
            else:
                atol = {inverse[n]: b for n, b in budget.items() if n in inverse}
                atol[""] = 0.0
                test_err, failed = _compare(run_results, index(test), 0, maps[id(test)], atol)
        test_types = float_tensors(test)
        rows = []
        for i, name in enumerate(order):
            node = p32[name]
            tname = inverse.get(name)
            rows.append(TensorDrift(
                index=i, tensor=name, node=node.name, op=node.op_type, test_name=tname,
                test_dtype=None if tname is None else onnx.TensorProto.DataType.Name(test_types.get(tname, 0)),
                scale=scale.get(name, 0.0), max_abs=test_err.get(name), reference_abs=ref_err.get(name),
                budget_abs=budget.get(name), px_per_unit=px[name], over=name in failed))
        out[label] = rows
    return out


def first_over(rows: list[TensorDrift]) -> TensorDrift | None:
    return next((r for r in rows if r.over), None)
