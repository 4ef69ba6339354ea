"""Polygraphy on real episodes: the commands of runtime/README.md run as written (ONNX Runtime backend) on a small
graph, the loader's feeds are calibration's episodes bit for bit, and bad arguments give one error line."""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import MICRO

ROOT = Path(__file__).resolve().parents[2]
MARKER = "<!-- polygraphy-onnxrt:"


@pytest.fixture(scope="module")
def data(synthetic):
    return synthetic


@pytest.fixture(scope="module")
def graphs(micro, factory):
    """The micro model's FP32 graph and its FP16 graph, portable form (what Polygraphy's ONNX Runtime runner
    runs as is)."""
    fp16 = factory.export(MICRO, seed=0, attention="portable", precision="fp16").files["full"]
    return {"fp32": micro.folder / "model.onnx", "fp16": fp16}


def documented_commands() -> tuple[str, list[str]]:
    """(the FGSA_POLYGRAPHY_DATA value, the `polygraphy run` lines) of the README block the marker names."""
    text = (ROOT / "runtime" / "README.md").read_text()
    block = text[text.index(MARKER):]
    block = block[block.index("```bash") + 7: block.index("```", block.index("```bash") + 7)]
    env = re.search(r'^export FGSA_POLYGRAPHY_DATA="(.*)"$', block, re.M).group(1)
    runs = [line for line in block.splitlines() if line.startswith("polygraphy run ")]
    return env, runs


def polygraphy(line: str, env_value: str, tmp: Path, graphs: dict, data: Path):
    subst = {"out/fp32/model.onnx": str(graphs["fp32"]), "out/fp16/model.onnx": str(graphs["fp16"]),
             "fp32_outputs.json": str(tmp / "fp32_outputs.json")}
    args = [subst.get(a, a) for a in shlex.split(line)]
    args[0] = str(Path(sys.executable).with_name("polygraphy"))
    env = dict(os.environ, FGSA_POLYGRAPHY_DATA=env_value.replace("DIR", str(data)).replace("--pairs 4",
                                                                                            "--pairs 2"),
               PYTHONPATH=str(ROOT))
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_documented_onnxrt_commands_pass_on_real_episodes(tmp_path, graphs, data):
    env_value, runs = documented_commands()
    assert len(runs) == 2 and all("--onnxrt" in r and "runtime/polygraphy_data.py:load_data" in r for r in runs)
    save, compare = runs
    done = polygraphy(save, env_value, tmp_path, graphs, data)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert (tmp_path / "fp32_outputs.json").is_file()
    done = polygraphy(compare, env_value, tmp_path, graphs, data)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    assert "Passed: 2/2 iterations" in out and "PASSED" in out
    # the comparison can fail: FP16 is not FP32 to 1e-9 (so the pass above measured something)
    strict = compare.replace("--atol 1e-3", "--atol 1e-9")
    assert strict != compare
    done = polygraphy(strict, env_value, tmp_path, graphs, data)
    assert done.returncode != 0 and "FAILED" in done.stdout + done.stderr


def test_loader_feeds_are_calibration_episodes(data):
    from calibration.episodes import load_episodes
    from runtime.polygraphy_data import episode_feeds

    ours = list(episode_feeds(str(data), "test", 3))
    theirs = load_episodes(data, "test", 3, progress=False)
    assert len(ours) == len(theirs) == 3
    for i, feed in enumerate(ours):
        want = theirs.feed(i)
        assert feed.keys() == want.keys()
        for k in feed:
            assert feed[k].dtype == want[k].dtype and np.array_equal(feed[k], want[k]), k


def _load(env_value: str):
    code = ("import sys\nfrom runtime.polygraphy_data import load_data\n"
            "feeds = list(load_data())\nprint(len(feeds), sorted(feeds[0]), 'torch' in sys.modules)")
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, FGSA_POLYGRAPHY_DATA=env_value, PYTHONPATH=str(ROOT)))


def test_loader_is_torch_free_and_keeps_a_graphs_inputs(data, graphs, tmp_path):
    import onnx

    done = _load(f"--data {data} --pairs 2")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("] ")[-1].strip() == "False" and done.stdout.startswith("2 ")
    # --onnx: only that graph's inputs (a graph without `query` stands in for support_encoder.onnx)
    model = onnx.load(graphs["fp32"])
    enc = onnx.helper.make_model(onnx.helper.make_graph([], "enc", [i for i in model.graph.input if i.name != "query"],
                                                        []))
    onnx.save(enc, tmp_path / "enc.onnx")
    done = _load(f"--data {data} --pairs 1 --onnx {tmp_path / 'enc.onnx'}")
    assert done.returncode == 0, done.stderr
    assert "'query'" not in done.stdout and "'support'" in done.stdout


@pytest.mark.parametrize("value, names", [
    ("--pairs 2", "--data"), ("--data {data} --subset nope", "--subset"), ("--data /no/such/dir", "--data"),
    ("--data {data} --bogus 1", "--bogus"), ("--data {data} --pairs 0", "--pairs"),
    ("--data {data} --episodes 2", "--pairs")])
def test_loader_bad_arguments_are_one_line(value, names, data):
    done = _load(value.format(data=data))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert lines[0].startswith("error: FGSA_POLYGRAPHY_DATA") and names in lines[0]
