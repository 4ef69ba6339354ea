"""``python -m runtime.predict``: keypoints of any category on your own query image, from S support shots.

    python -m runtime.predict --engine out/onnx --support support.jpg --support-ann support.json \\
        --query query.jpg [--query-box x,y,w,h] [--out query_pred.png] [--json query_pred.json]

``--support`` / ``--support-ann`` repeat once per shot (the engine's S). Images are checked before decoding
(pixel limit ``--max-image-pixels``, damaged files refused, see :mod:`fgsa.files.images`); the picture and
the JSON are written together or not at all, never through a symbolic link. The support JSON is the small
format of :mod:`runtime.annotations` (keypoints [x, y, v], skeleton, optional bbox) or an MP-100 / COCO
file with ``--ann-id``. Writes the query with the predicted keypoints and the skeleton drawn (PNG), and
prints the keypoints in query-image pixels. No torch needed.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np

from fgsa.cli import command
from fgsa.errors import as_flag as _as_flag
from fgsa.files.images import DEFAULT_MAX_PIXELS, ENV_MAX_PIXELS
from fgsa.files.outputs import IMAGE_EXTENSIONS, check_output_path, write_files
from runtime.annotations import read_support_annotation
from runtime.backends import CHOICES as BACKEND_CHOICES
from runtime.draw import draw_box, draw_pose, encode_image, enlarge, legend, load_rgb, side_by_side
from runtime.engine import Engine
from runtime.errors import InputError


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
    p.add_argument("--backend", default="auto", choices=BACKEND_CHOICES)
    p.add_argument("--support", required=True, action="append", type=Path, help="support image (repeat per shot)")
    p.add_argument("--support-ann", required=True, action="append", type=Path,
                   help="support annotation JSON (repeat per shot, same order as --support)")
    p.add_argument("--ann-id", action="append", type=int, help="annotation id in an MP-100/COCO --support-ann")
    p.add_argument("--query", required=True, type=Path, help="query image")
    p.add_argument("--query-box", type=parse_box,
                   help="x,y,w,h of the object in the query (default: whole image); may start with a minus")
    p.add_argument("--out", type=Path, help="picture to write, .png/.jpg/.bmp/.webp (default: <query>_pred.png "
                   "next to the query)")
    p.add_argument("--json", type=Path, help="also write the keypoints as JSON")
    p.add_argument("--show-support", action="store_true", help="put the annotated supports next to the query")
    p.add_argument("--enlarge", action="store_true", help="upscale small images (< 480 px) before drawing")
    p.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads (>= 1)")
    p.add_argument("--plugin-library", type=Path, default=None,
                   help="libfgsa_trt_plugin.so for TensorRT plans (default: $FGSA_PLUGIN_LIBRARY, else build/; "
                        "never the plan's sidecar)")
    p.add_argument("--max-image-pixels", type=int, default=None,
                   help=f"refuse images with more pixels (default {DEFAULT_MAX_PIXELS:,}, or ${ENV_MAX_PIXELS})")
    p.add_argument("--ort-library", type=Path, default=None,
                   help="libfgsa_ort_ops.so for plugin-form graphs on ONNX Runtime (default: $FGSA_ORT_LIBRARY, build/)")
    return p


def _warn_far_keypoints(anns, images, files) -> None:
    """One warning line per shot whose visible keypoints lie outside its image (wrong file or pixels?)."""
    for a, im, f in zip(anns, images, files):
        h, w = im.shape[:2]
        kp = a.keypoints
        vis = kp[:, 2] > 0
        out = vis & ((kp[:, 0] < 0) | (kp[:, 0] > w) | (kp[:, 1] < 0) | (kp[:, 1] > h))
        if out.any():
            far = kp[out][np.argmax(np.abs(kp[out, :2] - [w / 2, h / 2]).max(1))]
            warnings.warn(f"--support-ann {f}: {int(out.sum())} visible keypoint(s) outside the {w} x {h} "
                          f"support image (farthest at ({far[0]:.0f}, {far[1]:.0f})); check that the "
                          "annotation belongs to this --support image", stacklevel=2)


def run(args: argparse.Namespace) -> dict:
    if len(args.support) != len(args.support_ann):
        raise InputError("--support-ann", f"one annotation per --support image ({len(args.support)})",
                         len(args.support_ann))
    ann_ids = args.ann_id or [None] * len(args.support)
    if len(ann_ids) != len(args.support):
        raise InputError("--ann-id", f"one id per --support image ({len(args.support)})", len(ann_ids))
    if args.threads is not None and args.threads < 1:
        raise InputError("--threads", "a thread count >= 1", args.threads, "leave it out for ONNX Runtime's default")
    if args.max_image_pixels is not None and args.max_image_pixels < 1:
        raise InputError("--max-image-pixels", "a positive number of pixels", args.max_image_pixels)
    # outputs first: a path that cannot be written is reported before a minute of work, and nothing is
    # written unless everything can be
    out = args.out or args.query.with_name(args.query.stem + "_pred.png")
    check_output_path(out, "--out", IMAGE_EXTENSIONS)
    if args.json:
        check_output_path(args.json, "--json")
    images = [load_rgb(p, "--support", args.max_image_pixels) for p in args.support]
    anns = [read_support_annotation(a, i, str(p)) for a, i, p in zip(args.support_ann, ann_ids, args.support)]
    k_c = {len(a.keypoints) for a in anns}
    if len(k_c) != 1:
        raise InputError("--support-ann", "the same category (keypoint count) for every shot", sorted(k_c))
    _warn_far_keypoints(anns, images, args.support_ann)
    boxes = [a.bbox if a.bbox is not None else [0, 0, im.shape[1], im.shape[0]] for a, im in zip(anns, images)]
    query = load_rgb(args.query, "--query", args.max_image_pixels)
    shot_fields = {f"boxes[{i}]": f"--support-ann {a} bbox" for i, a in enumerate(args.support_ann)}
    shot_fields.update({f"images[{i}]": f"--support {p}" for i, p in enumerate(args.support)})
    shot_fields.update({"images": "--support", "keypoints": "--support-ann keypoints",
                        "keypoints (K_c, keypoints per shot)": "--support-ann keypoints",
                        "visible": "--support-ann keypoints (visibility)", "skeleton": "--support-ann skeleton"})
    try:
        engine = Engine(args.engine, args.backend, threads=args.threads, plugin_library=args.plugin_library,
                        ort_library=args.ort_library)
    except InputError as exc:
        raise _as_flag(exc, {"path": "--engine", "backend": "--backend", "threads": "--threads"}) from None
    with engine:
        try:
            engine.set_support(images, np.stack([a.keypoints for a in anns]), None, anns[0].skeleton, boxes)
        except InputError as exc:
            raise _as_flag(exc, shot_fields) from None
        try:
            pixels = engine.predict(query, args.query_box)[0]
        except InputError as exc:
            raise _as_flag(exc, {"boxes[0]": "--query-box", "boxes": "--query-box",
                                 "query_images[0]": f"--query {args.query}"}) from None
    skeleton = anns[0].skeleton.tolist()
    canvas, f = (enlarge(query) if args.enlarge else (query, 1.0))
    canvas = draw_pose(canvas, pixels * f, skeleton, labels=True)
    if args.query_box:
        draw_box(canvas, np.asarray(args.query_box) * f)
    canvas = legend(canvas, [(f"prediction: {len(pixels)} keypoints ({engine.backend})", (255, 255, 255))])
    if args.show_support:
        panels = []
        for i, (img, a, box) in enumerate(zip(images, anns, boxes)):
            sup, f = (enlarge(img) if args.enlarge else (img, 1.0))
            sup = draw_pose(sup, a.keypoints[:, :2] * f, skeleton, labels=True, mask=a.keypoints[:, 2] > 0)
            draw_box(sup, np.asarray(box) * f)
            label = "support" if len(images) == 1 else f"support {i + 1}/{len(images)}"
            panels.append(legend(sup, [(label, (255, 255, 255))]))
        canvas = side_by_side(*panels, canvas)
    result = {"query": str(args.query), "png": str(out), "keypoints": pixels.astype(np.float64).round(2).tolist(),
              "names": anns[0].names, "skeleton": skeleton, "backend": engine.backend,
              "attention": engine.metadata.get("attention"), "native_ops": engine.native_ops}
    files = {out: ("--out", encode_image(out, canvas))}
    if args.json:
        files[args.json] = ("--json", json.dumps(result, indent=1).encode())
    write_files(files)
    return result


def _join_negative_boxes(argv: list[str]) -> list[str]:
    """``--query-box -20,10,5,5`` -> ``--query-box=-20,10,5,5``: argparse takes a value starting with a minus
    for an option unless it is joined with ``=``."""
    out, i = [], 0
    while i < len(argv):
        value = argv[i + 1] if i + 1 < len(argv) else ""
        if argv[i] == "--query-box" and value[:1] == "-" and value[1:2] in tuple("0123456789."):
            out.append(f"--query-box={argv[i + 1]}")
            i += 2
            continue
        out.append(argv[i])
        i += 1
    return out


@command
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(_join_negative_boxes(list(sys.argv[1:] if argv is None else argv)))
    result = run(args)
    names = result["names"] or [str(i) for i in range(len(result["keypoints"]))]
    for name, (x, y) in zip(names, result["keypoints"]):
        print(f"{name:>12}: ({x:8.2f}, {y:8.2f})")
    if result["native_ops"]:
        print(f"{result['attention']} graph on {result['backend']}: plugin ops ran natively in {result['native_ops']}")
    print(f"wrote {result['png']}" + (f" and {args.json}" if args.json else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
