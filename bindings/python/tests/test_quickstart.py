"""The Python quick start (examples/python/quickstart.py) runs to its end with and without
pyarrow installed (without it, ``control.query`` returns an Arrow stream, not a Table)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

QUICKSTART = Path(__file__).resolve().parents[3] / "examples" / "python" / "quickstart.py"

# A sitecustomize that makes `import pyarrow` fail as if it were not installed.
HIDE_PYARROW = '''
import sys

class _NoPyarrow:
    def find_spec(self, name, path=None, target=None):
        if name == "pyarrow" or name.startswith("pyarrow."):
            raise ModuleNotFoundError(f"No module named {name!r} (hidden by the test)", name=name)
        return None

sys.meta_path.insert(0, _NoPyarrow())
'''


def run_quickstart(tmp_path, hide_pyarrow):
    env = dict(os.environ)
    if hide_pyarrow:
        site = tmp_path / "site"
        site.mkdir()
        (site / "sitecustomize.py").write_text(HIDE_PYARROW)
        env["PYTHONPATH"] = os.pathsep.join([str(site)] + [p for p in [env.get("PYTHONPATH")] if p])
    # The blocker works: in that environment pyarrow is (not) importable.
    probe = subprocess.run(
        [sys.executable, "-c", "import importlib\ntry:\n    importlib.import_module('pyarrow')\n"
         "    print('pyarrow')\nexcept ImportError:\n    print('none')"],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert probe.stdout.strip() == ("none" if hide_pyarrow else "pyarrow"), probe.stderr
    return subprocess.run(
        [sys.executable, str(QUICKSTART), "--threads", "40", "--store", str(tmp_path / "store")],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )


@pytest.mark.parametrize("hide_pyarrow", [True, False], ids=["without-pyarrow", "with-pyarrow"])
def test_the_quickstart_runs_to_its_end(tmp_path, hide_pyarrow):
    if not hide_pyarrow:
        pytest.importorskip("pyarrow")
    done = run_quickstart(tmp_path, hide_pyarrow)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Recorded 40 conversations" in out
    assert "LLM calls: " in out and "cost $" in out
    assert "Failed tool calls: " in out
    assert "dropped 0" in out
    assert f"Store: {tmp_path / 'store'}" in out
