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
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return directory, out
