"""The machine-readable plugin spec (kernels/plugin/fgsa_plugins.json) agrees with the C++ plugin sources."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest

from fgsa.errors import InputError
from kernels import spec

PLUGIN_DIR = Path(spec.__file__).resolve().parent / "plugin"
README = PLUGIN_DIR.parent / "README.md"
ROLE_NAMES = {"kValue": "value", "kCoord": "coord", "kIndex": "index"}
OP_SOURCES = {spec.MSDA_OP: "msda_plugin.cpp", spec.ATTENTION_OP: "fgsa_attention_plugin.cpp"}


def _constants() -> dict[str, str]:
    text = (PLUGIN_DIR / "plugin_names.h").read_text()
    return dict(re.findall(r'constexpr char (\w+)\[\] = "([^"]*)";', text))


def _input_table(source: str) -> list[tuple[str, int, str]]:
    text = (PLUGIN_DIR / source).read_text()
    return [(n, int(r), ROLE_NAMES[k]) for n, r, k in re.findall(r'\{"(\w+)", (\d+), InputRole::(\w+)\}', text)]


def test_names_version_namespace_match_the_cpp_constants():
    c, s = _constants(), spec.load_plugin_spec()
    assert set(s["ops"]) == {c["kMsdaPluginName"], c["kFgsaAttentionPluginName"]} == set(OP_SOURCES)
    assert s["plugin_version"] == c["kPluginVersion"] == "1"
    assert s["plugin_namespace"] == c["kPluginNamespace"]
    for op in s["ops"].values():
        assert [a["name"] for a in op["attributes"]] == [c["kSpatialShapesField"]]


@pytest.mark.parametrize("op", sorted(OP_SOURCES))
def test_inputs_match_the_plugin_input_table(op):
    declared = [(i["name"], len(i["shape"]), i["role"]) for i in spec.load_plugin_spec()["ops"][op]["inputs"]]
    assert declared == _input_table(OP_SOURCES[op])


@pytest.mark.parametrize("op", sorted(OP_SOURCES))
def test_inputs_are_the_python_reference_arguments(op):
    entry = spec.load_plugin_spec()["ops"][op]
    module, _, name = entry["python_reference"].rpartition(".")
    params = inspect.signature(getattr(importlib.import_module(module), name)).parameters
    names = [i["name"] for i in entry["inputs"]]
    assert [p for p in params if p in names] == names  # same names, same order


def test_exported_entry_points_match_the_spec():
    text = (PLUGIN_DIR / "registration.cpp").read_text()
    exported = re.findall(r"^FGSA_PLUGIN_EXPORT [\w:* ]*?\b(\w+)\(", text, flags=re.M)
    assert sorted(exported) == sorted(spec.load_plugin_spec()["library"]["entry_points"])


def test_type_rules_cover_every_role():
    s = spec.load_plugin_spec()
    roles = {i["role"] for op in s["ops"].values() for i in op["inputs"] + op["outputs"]}
    assert roles <= set(s["type_rules"]) - {"rule"}


def test_readme_states_the_same_names():
    text, s = README.read_text(), spec.load_plugin_spec()
    for op, entry in s["ops"].items():
        assert f"`{op}`" in text
        for i in entry["inputs"]:
            assert f"`{i['name']}`" in text
    assert f"`{s['onnx_domain']}`" in text


def test_onnx_node_attributes():
    attrs = spec.onnx_node_attributes(spec.ATTENTION_OP, [(8, 8), (16, 16), (32, 32)])
    assert attrs == {"plugin_version": "1", "plugin_namespace": "", "spatial_shapes": [8, 8, 16, 16, 32, 32]}
    with pytest.raises(InputError, match="op: expected one of"):
        spec.onnx_node_attributes("MultiscaleDeformableAttnPlugin_TRT", [(8, 8)])
