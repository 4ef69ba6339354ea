"""What a real TensorRT-family ONNX parser says about graphs, without building: ``python -m export.trt_parse``.

    python -m export.trt_parse [--target tensorrt|tensorrt-rtx] [--plugin LIB] GRAPH.onnx...

Prints one JSON line per graph: ``ok`` (parse_from_file), the parser's ``errors`` and the operator of each
error's node (``error_ops``), and ``unsupported``, the nodes (index, op type, name) outside every subgraph the
parser's ``supports_model_v2`` accepts (for standard ops this names each unsupported node; a plugin the
registry lacks marks its whole graph). :func:`parse_graphs` runs this in a child process: a
parser can abort the process on some graphs (a plugin node without the unversioned ``libtensorrt_rtx.so``
on the loader path, export/trt_rtx.py, which the child also gets), and one crash must not take the caller
with it; a crashed graph is reported as such and the rest are parsed in a fresh child.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import onnx

from export import trt_rtx
from export.trt import import_target, process_logger
from fgsa.cli import command, error

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass
class ParseResult:
    path: str
    ok: bool
    errors: list[str] = field(default_factory=list)
    error_ops: list[str] = field(default_factory=list)
    unsupported: list[list] = field(default_factory=list)  # [node index, op type, node name]
    crashed: bool = False

    @property
    def unsupported_ops(self) -> set[str]:
        return {op for _, op, _ in self.unsupported}


def _parse_one(trt, logger, path: str) -> dict:
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    ok = bool(parser.parse_from_file(path))
    errors = [str(parser.get_error(i).desc()) for i in range(parser.num_errors)]
    error_ops = [str(parser.get_error(i).node_operator()) for i in range(parser.num_errors)]
    model = onnx.load(path)
    check_network = builder.create_network(0)  # referenced until the checker is done with it
    checker = trt.OnnxParser(check_network, logger)
    checker.supports_model_v2(model.SerializeToString(), path)
    covered = set()
    for i in range(checker.num_subgraphs):
        if checker.is_subgraph_supported(i):
            covered.update(int(n) for n in checker.get_subgraph_nodes(i))
    unsupported = [[i, n.op_type, n.name] for i, n in enumerate(model.graph.node) if i not in covered]
    del checker, check_network, parser, network, builder  # parsers before their networks, builder last
    return {"path": path, "ok": ok, "errors": errors, "error_ops": error_ops, "unsupported": unsupported}


@command(catch=(ModuleNotFoundError,), one_line=False)  # no TensorRT here: one line naming the package
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m export.trt_parse", description=__doc__.split("\n\n")[0])
    p.add_argument("--target", choices=("tensorrt", "tensorrt-rtx"))
    p.add_argument("--plugin", type=Path, help="plugin library to load first")
    p.add_argument("graphs", nargs="+")
    args = p.parse_args(argv)
    _, trt = import_target(args.target)
    logger = process_logger(trt)
    if hasattr(trt, "init_libnvinfer_plugins"):
        trt.init_libnvinfer_plugins(logger, "")
    if args.plugin and trt.get_plugin_registry().load_library(str(args.plugin)) is None:
        return error(f"--plugin: {args.plugin} could not be loaded by {trt.__name__}")
    for path in args.graphs:
        print(json.dumps(_parse_one(trt, logger, path)), flush=True)
    return 0


def parse_graphs(paths: list, target: str | None = None, plugin: Path | None = None,
                 timeout: float = 600) -> dict[str, ParseResult]:
    """{path: ParseResult} from a child process per run (see the module docstring)."""
    todo = [str(p) for p in paths]
    results: dict[str, ParseResult] = {}
    with tempfile.TemporaryDirectory(prefix="fgsa-trt-parse-") as folder:
        env = trt_rtx.loader_env(Path(folder)) if trt_rtx.versioned_library() else None
        while todo:
            cmd = [sys.executable, "-m", "export.trt_parse", *(["--target", target] if target else []),
                   *(["--plugin", str(plugin)] if plugin else []), *todo]
            proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout)
            for line in proc.stdout.splitlines():
                if line.startswith("{"):
                    r = json.loads(line)
                    results[r["path"]] = ParseResult(**r)
            todo = [p for p in todo if p not in results]
            if proc.returncode == 2 and "error: " in proc.stderr:
                raise RuntimeError(proc.stderr.strip().splitlines()[-1])
            if todo:  # the child died on todo[0]
                results[todo[0]] = ParseResult(todo[0], False, [f"the parser crashed (exit {proc.returncode}): "
                                                                 f"{proc.stderr.strip()[-500:]}"], crashed=True)
                todo = todo[1:]
    return results


if __name__ == "__main__":
    sys.exit(main())
