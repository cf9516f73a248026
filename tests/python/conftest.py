"""Shared fixtures: a store written by the Rust side, and what it recorded."""

import json
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def store(tmp_path_factory):
    """(store directory, JSON of what the Rust side recorded) for a simulated workload."""
    directory = tmp_path_factory.mktemp("store")
    exe = os.environ.get("MISSION_STORE_FIXTURE")
    if exe:
        cmd = [exe, str(directory), "400"]
    else:
        cmd = ["cargo", "run", "-q", "-p", "mission-examples", "--example", "store_fixture", "--",
               str(directory), "400"]
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return directory, json.loads(out)


@pytest.fixture(scope="session")
def incident_store(tmp_path_factory):
    """(store directory, quick start output) of the quick start's run with its planted incident."""
    directory = tmp_path_factory.mktemp("incident") / "data"
    exe = os.environ.get("MISSION_QUICKSTART")
    args = ["--store", str(directory), "--threads", "6000"]
    if exe:
        cmd = [exe, *args]
    else:
        cmd = ["cargo", "run", "-q", "-p", "mission-examples", "--example", "quickstart", "--", *args]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, f"quick start exited with {run.returncode}:\n{run.stderr}\n{run.stdout}"
    return directory, run.stdout
