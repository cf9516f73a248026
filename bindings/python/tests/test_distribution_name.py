"""The distribution name: ours is mission-control-observability (the PyPI name
mission-control belongs to an unrelated package that also ships a `mission_control` module),
every install hint uses it, and the clash is named when the other package is in the way."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import mission_control as mc

PACKAGE = Path(mc.__file__).resolve().parent
BINDINGS = Path(__file__).resolve().parents[1]
OTHER_METADATA = "Metadata-Version: 2.1\nName: mission-control\nVersion: 0.0.4\nSummary: Something else entirely\n"


def test_the_distribution_and_every_install_hint_use_the_free_name():
    assert mc.DISTRIBUTION == "mission-control-observability"
    pyproject = (BINDINGS / "pyproject.toml").read_text()
    assert re.search(r'^name = "mission-control-observability"$', pyproject, re.M)
    for extra in ("arrow", "otel", "openai", "anthropic"):
        assert re.search(rf"^{extra} = \[", pyproject, re.M), extra
    sources = list((BINDINGS / "python" / "mission_control").glob("*.py")) + [BINDINGS / "README.md"]
    for path in sources:
        text = path.read_text()
        assert not re.search(r"mission-control\[", text), f"{path} names the other package's extras"
        for hint in re.findall(r"pip install '?(mission-control[\w-]*)", text):
            assert hint == "mission-control-observability", f"{path}: {hint}"


def run_import(tmp_path, native):
    """Imports mission_control from a copy of this package in a directory that also holds the
    other package's metadata (as after `pip install mission-control` into the same environment):
    a whole copy, or (``native=False``) its Python files only, as when the native module is gone."""
    site = tmp_path / "site"
    (site / "mission_control-0.0.4.dist-info").mkdir(parents=True)
    (site / "mission_control-0.0.4.dist-info" / "METADATA").write_text(OTHER_METADATA)
    if native:
        shutil.copytree(PACKAGE, site / "mission_control", ignore=shutil.ignore_patterns("__pycache__"))
    else:
        (site / "mission_control").mkdir()
        for path in PACKAGE.glob("*.py"):
            shutil.copy(path, site / "mission_control" / path.name)
    env = dict(os.environ, PYTHONPATH=str(site))
    return subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-c",
                           "import mission_control; print(mission_control.__file__)"],
                          env=env, capture_output=True, text=True, timeout=120)


def test_the_other_mission_control_package_is_named_when_it_is_in_the_way(tmp_path):
    broken = run_import(tmp_path / "a", native=False)
    assert broken.returncode != 0
    assert "ImportError: mission_control's native module is missing" in broken.stderr
    assert "pip uninstall mission-control mission-control-observability" in broken.stderr
    beside = run_import(tmp_path / "b", native=True)
    assert beside.returncode != 0
    assert "RuntimeWarning" in beside.stderr and "'mission-control' is installed beside" in beside.stderr
    # Without the other package's metadata, the same copy imports quietly.
    shutil.rmtree(tmp_path / "b" / "site" / "mission_control-0.0.4.dist-info")
    alone = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-c",
                            "import mission_control; print(mission_control.__file__)"],
                           env=dict(os.environ, PYTHONPATH=str(tmp_path / "b" / "site")),
                           capture_output=True, text=True, timeout=120)
    assert alone.returncode == 0, alone.stderr
    assert alone.stdout.strip() == str(tmp_path / "b" / "site" / "mission_control" / "__init__.py")


def test_the_quickstart_names_the_clash_when_the_other_package_is_what_got_imported(tmp_path):
    """`pip install mission-control` after ours replaces our __init__.py with its empty one:
    `import mission_control` then succeeds with the other package, and the quick start says so."""
    site = tmp_path / "site"
    (site / "mission_control-0.0.4.dist-info").mkdir(parents=True)
    (site / "mission_control-0.0.4.dist-info" / "METADATA").write_text(OTHER_METADATA)
    (site / "mission_control").mkdir()
    (site / "mission_control" / "__init__.py").write_text("")
    quickstart = BINDINGS.parents[1] / "examples" / "python" / "quickstart.py"
    done = subprocess.run([sys.executable, str(quickstart), "--threads", "1", "--store", str(tmp_path / "s")],
                          env=dict(os.environ, PYTHONPATH=str(site)), cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "which is not Mission Control" in done.stderr
    assert "pip uninstall mission-control mission-control-observability" in done.stderr
    assert not (tmp_path / "s").exists()
