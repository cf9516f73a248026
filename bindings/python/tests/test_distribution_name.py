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


def run_import(tmp_path, with_package_copy):
    """Imports mission_control with the other package's metadata on the path (and, if asked, a
    copy of our pure-Python files without the native module, as when its files replaced ours)."""
    site = tmp_path / "site"
    (site / "mission_control-0.0.4.dist-info").mkdir(parents=True)
    (site / "mission_control-0.0.4.dist-info" / "METADATA").write_text(OTHER_METADATA)
    if with_package_copy:
        (site / "mission_control").mkdir()
        for name in ("__init__.py", "_instrument.py"):
            shutil.copy(PACKAGE / name, site / "mission_control" / name)
    env = dict(os.environ, PYTHONPATH=str(site))
    return subprocess.run([sys.executable, "-W", "error::RuntimeWarning", "-c", "import mission_control"],
                          env=env, capture_output=True, text=True, timeout=120)


def test_the_other_mission_control_package_is_named_when_it_is_in_the_way(tmp_path):
    broken = run_import(tmp_path / "a", with_package_copy=True)
    assert broken.returncode != 0
    assert "ImportError: mission_control's native module is missing" in broken.stderr
    assert "pip uninstall mission-control mission-control-observability" in broken.stderr
    beside = run_import(tmp_path / "b", with_package_copy=False)
    assert beside.returncode != 0
    assert "RuntimeWarning" in beside.stderr and "'mission-control' is installed beside" in beside.stderr
