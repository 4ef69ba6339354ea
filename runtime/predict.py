"""``python -m runtime.predict``: keypoints of any category on your own query image, from S support shots.

    python -m runtime.predict --engine out/onnx --support support.jpg --support-ann support.json \\
        --query query.jpg [--query-box x,y,w,h] [--out query_pred.png] [--json query_pred.json]

``--support`` / ``--support-ann`` repeat once per shot (the engine's S). The support JSON is the small
format of :mod:`runtime.annotations` (keypoints [x, y, v], skeleton, optional bbox) or an MP-100 / COCO
file with ``--ann-id``. Writes the query with the predicted keypoints and the skeleton drawn (PNG), and
prints the keypoints in query-image pixels. No torch needed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from runtime.annotations import read_support_annotation
from runtime.draw import draw_box, draw_pose, enlarge, legend, load_rgb, save_png, side_by_side
from runtime.engine import Engine
from runtime.errors import FgsaError, InputError


def parse_box(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected x,y,w,h numbers, got {text!r}") from None
    if len(values) != 4:
        raise argparse.ArgumentTypeError(f"expected 4 numbers x,y,w,h, got {len(values)}")
    return values


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m runtime.predict", description=__doc__.split("\n\n")[0])
    p.add_argument("--engine", required=True, type=Path, help="export folder, .onnx or .plan")
    p.add_argument("--backend", default="auto", choices=("auto", "onnxruntime", "tensorrt"))
    p.add_argument("--support", required=True, action="append", type=Path, help="support image (repeat per shot)")
    p.add_argument("--support-ann", required=True, action="append", type=Path,
                   help="support annotation JSON (repeat per shot, same order as --support)")
    p.add_argument("--ann-id", action="append", type=int, help="annotation id in an MP-100/COCO --support-ann")
    p.add_argument("--query", required=True, type=Path, help="query image")
    p.add_argument("--query-box", type=parse_box, help="x,y,w,h of the object in the query (default: whole image)")
    p.add_argument("--out", type=Path, help="PNG to write (default: <query>_pred.png next to the query)")
    p.add_argument("--json", type=Path, help="also write the keypoints as JSON")
    p.add_argument("--show-support", action="store_true", help="put the annotated support next to the query")
    p.add_argument("--enlarge", action="store_true", help="upscale small images (< 480 px) before drawing")
    p.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads")
    p.add_argument("--plugin-library", type=Path, help="libfgsa_trt_plugin.so for TensorRT plans")
    p.add_argument("--ort-library", type=Path, default=None,
                   help="libfgsa_ort_ops.so for plugin-form graphs on ONNX Runtime (default: $FGSA_ORT_LIBRARY, build/)")
    return p


def run(args: argparse.Namespace) -> dict:
    if len(args.support) != len(args.support_ann):
        raise InputError("--support-ann", f"one annotation per --support image ({len(args.support)})",
                         len(args.support_ann))
    ann_ids = args.ann_id or [None] * len(args.support)
    if len(ann_ids) != len(args.support):
        raise InputError("--ann-id", f"one id per --support image ({len(args.support)})", len(ann_ids))
    images = [load_rgb(p, "--support") for p in args.support]
    anns = [read_support_annotation(a, i, str(p)) for a, i, p in zip(args.support_ann, ann_ids, args.support)]
    k_c = {len(a.keypoints) for a in anns}
    if len(k_c) != 1:
        raise InputError("--support-ann", "the same category (keypoint count) for every shot", sorted(k_c))
    boxes = [a.bbox if a.bbox is not None else [0, 0, im.shape[1], im.shape[0]] for a, im in zip(anns, images)]
    query = load_rgb(args.query, "--query")
    with Engine(args.engine, args.backend, threads=args.threads, plugin_library=args.plugin_library,
                ort_library=args.ort_library) as engine:
        engine.set_support(images, np.stack([a.keypoints for a in anns]), None, anns[0].skeleton, boxes)
        pixels = engine.predict(query, args.query_box)[0]
    skeleton = anns[0].skeleton.tolist()
    canvas, f = (enlarge(query) if args.enlarge else (query, 1.0))
    canvas = draw_pose(canvas, pixels * f, skeleton, labels=True)
    if args.query_box:
        draw_box(canvas, np.asarray(args.query_box) * f)
    legend(canvas, [(f"prediction: {len(pixels)} keypoints ({engine.backend})", (255, 255, 255))])
    if args.show_support:
        sup, f = (enlarge(images[0]) if args.enlarge else (images[0], 1.0))
        sup = draw_pose(sup, anns[0].keypoints[:, :2] * f, skeleton, labels=True, mask=anns[0].keypoints[:, 2] > 0)
        draw_box(sup, np.asarray(boxes[0]) * f)
        canvas = side_by_side(legend(sup, [("support", (255, 255, 255))]), canvas)
    out = args.out or args.query.with_name(args.query.stem + "_pred.png")
    save_png(out, canvas)
    result = {"query": str(args.query), "png": str(out), "keypoints": pixels.round(2).tolist(),
              "names": anns[0].names, "skeleton": skeleton, "backend": engine.backend,
              "attention": engine.metadata.get("attention"), "native_ops": engine.native_ops}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))
    return result


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result = run(args)
    except FgsaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    names = result["names"] or [str(i) for i in range(len(result["keypoints"]))]
    for name, (x, y) in zip(names, result["keypoints"]):
        print(f"{name:>12}: ({x:8.2f}, {y:8.2f})")
    if result["native_ops"]:
        print(f"{result['attention']} graph on {result['backend']}: plugin ops ran natively in {result['native_ops']}")
    print(f"wrote {result['png']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
