"""A plan never chooses the native code we load: the plugin library comes from the user (plugin_library= /
--plugin-library, $FGSA_PLUGIN_LIBRARY) or this project's build tree, never from the plan's sidecar or the
working directory; the sidecar's SHA-256 only confirms the chosen library.

The stand-in TensorRT (fake_tensorrt.py) dlopens in ``load_library`` as TensorRT does, and the library is a
real one compiled here whose constructor appends to a marker file: no marker = its code never ran.
"""

import json
import shutil
import subprocess
import sys

import pytest

from runtime import Engine, EngineError
from runtime.backends import plan as plan_mod
from runtime.backends.plan import PLUGIN_ENV, PLUGIN_NAME, file_sha256
from runtime.backends.plan import default_plugin_candidates as project_candidates
from runtime.backends.tensorrt import TensorRTRunner
from tests.runtime import fake_tensorrt as fake

MARKER_ENV = "FGSA_TEST_LOAD_MARKER"
SOURCE = r"""
#include <stdio.h>
#include <stdlib.h>
__attribute__((constructor)) static void mark_loaded(void) {
    const char *path = getenv("FGSA_TEST_LOAD_MARKER");
    FILE *f = path ? fopen(path, "a") : NULL;
    if (f) { fputs("loaded\n", f); fclose(f); }
}
"""


@pytest.fixture(scope="module")
def marker_build(tmp_path_factory):
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("g++")
    if cc is None:
        pytest.skip("no C compiler to build the marker library")
    folder = tmp_path_factory.mktemp("marker_lib")
    (folder / "marker.c").write_text(SOURCE)
    out = folder / "libmarker.so"
    subprocess.run([cc, "-shared", "-fPIC", "-x", "c", str(folder / "marker.c"), "-o", str(out)], check=True,
                   capture_output=True, timeout=120)
    return out


@pytest.fixture
def env(marker_build, tmp_path, monkeypatch):
    """Fake TensorRT installed, no $FGSA_PLUGIN_LIBRARY, no build tree; returns (trt, make_library, marker)."""
    trt, cudart = fake.make_modules()
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setattr("runtime.backends.tensorrt.import_cudart", lambda: cudart)
    monkeypatch.delenv(PLUGIN_ENV, raising=False)
    monkeypatch.setattr(plan_mod, "default_plugin_candidates", lambda: [])
    marker = tmp_path / "loaded.marker"
    monkeypatch.setenv(MARKER_ENV, str(marker))

    def make_library(folder, name=PLUGIN_NAME):
        """A new copy (another file, so dlopen runs its constructor again)."""
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(marker_build, folder / name)
        return folder / name

    return trt, make_library, marker


def _plan(folder, **sidecar):
    folder.mkdir(parents=True, exist_ok=True)
    plan = folder / "model.plan"
    plan.write_bytes(fake.PLAN_BYTES)
    side = {"trt_version": "10.13.0.35", "gpu": {"name": "Fake GPU 9000", "compute_capability": "9.0"},
            "precision": "fp32", "io": [], "plugin_library": None, "plugin_sha256": None,
            "metadata": {"attention": "plugin"}, **sidecar}
    plan.with_name("model.plan.json").write_text(json.dumps(side))
    return plan


def test_a_library_named_only_by_the_sidecar_is_never_loaded(env, tmp_path):
    trt, make_library, marker = env
    shipped = make_library(tmp_path / "shipped")
    digest = file_sha256(shipped)
    next_to_plan = make_library(tmp_path / "plans")
    for recorded, sha in ((str(shipped), digest), (str(shipped), None), (PLUGIN_NAME, digest), (PLUGIN_NAME, None)):
        plan = _plan(tmp_path / "plans", plugin_library=recorded, plugin_sha256=sha)
        with pytest.raises(EngineError, match=f"no {PLUGIN_NAME} was chosen.*never chooses the library.*"
                                              "--plugin-library.*FGSA_PLUGIN_LIBRARY"):
            TensorRTRunner(plan).activate()
    assert not marker.exists() and trt.loaded_libraries == []
    assert next_to_plan.is_file()  # it was there all along


def test_a_library_only_in_the_working_directory_is_never_loaded(env, tmp_path, monkeypatch):
    trt, make_library, marker = env
    in_cwd = make_library(tmp_path / "cwd")
    monkeypatch.chdir(tmp_path / "cwd")
    plan = _plan(tmp_path / "plans", plugin_library=PLUGIN_NAME, plugin_sha256=file_sha256(in_cwd))
    with pytest.raises(EngineError, match="was chosen"):
        TensorRTRunner(plan).activate()
    with pytest.raises(EngineError, match="was chosen"):  # nor through the Engine
        Engine(plan, "tensorrt")
    assert not marker.exists() and trt.loaded_libraries == []


def test_an_explicit_library_loads_when_the_sidecar_hash_matches(env, tmp_path, monkeypatch):
    trt, make_library, marker = env
    lib = make_library(tmp_path / "mine")
    other = tmp_path / "other.so"
    other.write_bytes(b"a different build")
    plan = _plan(tmp_path / "plans", plugin_library="/somewhere/else/" + PLUGIN_NAME, plugin_sha256=file_sha256(other))
    with pytest.raises(EngineError, match="is not the one .* was built with"):  # the hash confirms, never overrides
        TensorRTRunner(plan, plugin_library=lib).activate()
    assert not marker.exists()
    plan = _plan(tmp_path / "plans", plugin_library="/somewhere/else/" + PLUGIN_NAME, plugin_sha256=file_sha256(lib))
    with TensorRTRunner(plan, plugin_library=lib) as runner:
        assert runner.infer({"x": fake.np.ones((1, 4), fake.np.float32)})["y"].tolist() == [[6.0, 6.0]]
    assert marker.read_text() == "loaded\n" and trt.loaded_libraries == [str(lib)]
    env_lib = make_library(tmp_path / "from_env")  # $FGSA_PLUGIN_LIBRARY is the user's choice too
    monkeypatch.setenv(PLUGIN_ENV, str(env_lib))
    with TensorRTRunner(plan):
        assert trt.loaded_libraries[-1] == str(env_lib)
    assert marker.read_text() == "loaded\n" * 2


def test_a_relative_explicit_path_loads_that_file(env, tmp_path, monkeypatch):
    trt, make_library, marker = env
    lib = make_library(tmp_path / "mine")
    monkeypatch.chdir(tmp_path / "mine")  # the user names a file here; dlopen alone would search system paths
    with TensorRTRunner(_plan(tmp_path / "plans", plugin_sha256=file_sha256(lib)), plugin_library=PLUGIN_NAME):
        assert trt.loaded_libraries == [str(lib)]
    assert marker.read_text() == "loaded\n"


def test_the_project_build_tree_is_searched_only_in_a_source_checkout(env, tmp_path, monkeypatch):
    trt, make_library, marker = env
    project = tmp_path / "project"
    built = make_library(project / "build" / "kernels")
    monkeypatch.setattr(plan_mod, "REPO_ROOT", project)
    assert project_candidates() == []  # no CMakeLists.txt: an installed package, build/ is not ours
    (project / "CMakeLists.txt").write_text("project(fgsa)\n")
    assert project_candidates() == [built]
    monkeypatch.setattr(plan_mod, "default_plugin_candidates", project_candidates)
    with TensorRTRunner(_plan(tmp_path / "plans", plugin_sha256=file_sha256(built))):
        assert trt.loaded_libraries == [str(built)]
    assert marker.read_text() == "loaded\n"


def test_load_library_returning_none_is_an_error(env, tmp_path):
    trt, _, _ = env
    broken = tmp_path / PLUGIN_NAME
    broken.write_bytes(b"\x7fELF but not a library")
    with pytest.raises(EngineError, match=r"could not load the plugin library .*returned None.*ldd.*make kernels"):
        TensorRTRunner(_plan(tmp_path / "plans"), plugin_library=broken).activate()
    assert trt.loaded_libraries == []


def test_cli_plugin_library_flag_is_the_way_in(env, tmp_path, capsys):
    from runtime.bench import main

    trt, make_library, marker = env
    lib = make_library(tmp_path / "mine")
    plan = _plan(tmp_path / "plans", plugin_library=str(lib), plugin_sha256=file_sha256(lib))
    args = ["--engine", str(plan), "--backend", "tensorrt", "--out", str(tmp_path / "bench")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "--plugin-library" in err[0]
    assert not marker.exists()
    # with the flag the library loads; the fake plan is not FMMP's, so the CLI stops at its inputs
    assert main(args + ["--plugin-library", str(lib)]) == 2
    assert "not FMMP's" in capsys.readouterr().err
    assert marker.read_text() == "loaded\n" and trt.loaded_libraries == [str(lib)]


def test_the_library_is_loaded_once_per_tensorrt_module_and_path(env, tmp_path):
    trt, make_library, marker = env
    lib = make_library(tmp_path / "mine")
    plan = _plan(tmp_path / "plans", plugin_sha256=file_sha256(lib))
    for _ in range(3):  # activation after activation, as an Engine reopened or several runners of one plan
        with TensorRTRunner(plan, plugin_library=lib) as runner:
            assert runner.infer({"x": fake.np.ones((1, 4), fake.np.float32)})["y"].tolist() == [[6.0, 6.0]]
    assert trt.loaded_libraries == [str(lib)]
    other_trt, _ = fake.make_modules()  # another TensorRT module (TensorRT-RTX beside TensorRT) has its own registry
    from runtime.backends.plan import load_plugin_library

    load_plugin_library(other_trt, lib)
    assert other_trt.loaded_libraries == [str(lib)] and trt.loaded_libraries == [str(lib)]
