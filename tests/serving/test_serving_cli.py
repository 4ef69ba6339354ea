"""runtime.triton / runtime.serve argument errors: one line `error: ...` naming the flag, exit 2, no server."""

from __future__ import annotations

import json

import pytest


def _one_error_line(capsys, *words):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    for w in words:
        assert w in err[0], err[0]


def test_triton_refuses_bad_support_sets(graphs, tmp_path, capsys):
    from runtime.triton import main

    spec = tmp_path / "spec.json"
    spec.write_text("{not json")
    assert main(["--engine", str(graphs), "--support-set", str(spec), "--out", str(tmp_path / "r")]) == 2
    _one_error_line(capsys, "--support-set", "valid JSON")
    spec.write_text(json.dumps({"categories": [{"name": "a", "shots": [{"image": "missing.png"}]}]}))
    assert main(["--engine", str(graphs), "--support-set", str(spec), "--out", str(tmp_path / "r")]) == 2
    _one_error_line(capsys, "--support-set", "shots")
    assert not (tmp_path / "r").exists()


def test_triton_needs_split_graphs(graphs, support_spec, tmp_path, capsys):
    from runtime.triton import main

    assert main(["--engine", str(graphs / "model.onnx"), "--support-set", str(support_spec),
                 "--out", str(tmp_path / "r")]) == 2
    _one_error_line(capsys, "--engine", "--split")


def test_serve_refuses_a_folder_that_is_not_a_repository(tmp_path, capsys):
    from runtime.serve import main

    assert main(["--repository", str(tmp_path)]) == 2
    _one_error_line(capsys, "--repository", "config.pbtxt")


def test_serve_request_needs_image_and_category(tmp_path, capsys):
    from runtime.serve import main

    with pytest.raises(SystemExit) as info:
        main(["--repository", str(tmp_path), "--request", "no-equals-sign"])
    assert info.value.code == 2
    assert "IMAGE=CATEGORY" in capsys.readouterr().err
