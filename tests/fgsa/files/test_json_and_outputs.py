"""fgsa.files.jsonfile and fgsa.files.outputs on crafted files."""

from __future__ import annotations

import json
import os

import pytest

from fgsa.errors import InputError
from fgsa.files import outputs
from fgsa.files.jsonfile import MAX_JSON_DEPTH, path_inside, read_json


def test_json_bounds(tmp_path):
    path = tmp_path / "a.json"
    path.write_text(json.dumps({"a": list(range(100))}))
    assert read_json(path, "f")["a"][-1] == 99
    with pytest.raises(InputError, match="at most 100 bytes"):
        read_json(path, "--support-ann", max_bytes=100)
    nested = json.dumps(0)
    for _ in range(MAX_JSON_DEPTH):
        nested = f"[{nested}]"
    path.write_text(nested)
    assert read_json(path, "f") is not None  # exactly at the limit
    path.write_text(f"[{nested}]")
    with pytest.raises(InputError, match=f"nested at most {MAX_JSON_DEPTH} levels"):
        read_json(path, "f")
    path.write_text("[" * 100_000 + "]" * 100_000)  # beyond the parser's recursion limit: no RecursionError
    with pytest.raises(InputError, match="nested"):
        read_json(path, "f")
    path.write_bytes(b'{"a": "\xff"}')
    with pytest.raises(InputError, match="not UTF-8|parse error"):
        read_json(path, "f")


def test_path_inside(tmp_path):
    (tmp_path / "img" / "sub").mkdir(parents=True)
    assert path_inside(tmp_path / "img", "sub/x.jpg", "f") == tmp_path / "img" / "sub" / "x.jpg"
    assert path_inside(tmp_path / "img", "sub/../x.jpg", "f") == tmp_path / "img" / "sub" / ".." / "x.jpg"
    for bad in ("../x.jpg", "/etc/passwd", "", None, 5, "sub/../../x.jpg"):
        with pytest.raises(InputError):
            path_inside(tmp_path / "img", bad, "f")
    os.symlink(tmp_path, tmp_path / "img" / "up")
    with pytest.raises(InputError, match="links out of it"):
        path_inside(tmp_path / "img", "up/secret.png", "f")


def test_a_link_planted_after_the_check_is_replaced_not_followed(tmp_path, monkeypatch):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    target = tmp_path / "out.json"
    real_check = outputs.check_output_path

    def check_then_plant(path, field, extensions=None):
        checked = real_check(path, field, extensions)
        if not target.is_symlink():
            os.symlink(victim, target)  # the race a checker alone cannot win
        return checked

    monkeypatch.setattr(outputs, "check_output_path", check_then_plant)
    outputs.write_files({target: ("--json", b"{}")})
    assert victim.read_text() == "precious" and not target.is_symlink() and target.read_bytes() == b"{}"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_nothing_is_written_when_one_file_cannot_be(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="--json"):
        outputs.write_files({tmp_path / "a" / "pic.png": ("--out", b"png"),
                             tmp_path / "file" / "k.json": ("--json", b"{}")})
    assert not (tmp_path / "a").exists()


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_outputs_follow_the_umask(tmp_path, mask):
    old = os.umask(mask)
    try:
        assert outputs.current_umask() == mask
        (out,) = outputs.write_files({tmp_path / f"r{mask}.json": ("--json", b"{}")})
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o666 & ~mask
