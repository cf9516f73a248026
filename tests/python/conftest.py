"""Shared fixtures: a store written by the Rust side, and what it recorded."""

import json
import os
import pathlib
import queue
import subprocess
import threading

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def write_fixture_store(directory, threads, hours=1):
    """Runs the store_fixture example: `threads` threads of the simulated workload over two
    tenants, starting over the `hours` ending ten minutes ago, written to `directory`; returns
    the JSON of what the Rust side recorded."""
    args = [str(directory), str(threads), str(hours)]
    exe = os.environ.get("MISSION_STORE_FIXTURE")
    if exe:
        cmd = [exe, *args]
    else:
        cmd = ["cargo", "run", "-q", "-p", "mission-examples", "--example", "store_fixture", "--", *args]
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


@pytest.fixture(scope="session")
def store(tmp_path_factory):
    """(store directory, JSON of what the Rust side recorded) for a simulated workload."""
    directory = tmp_path_factory.mktemp("store")
    return directory, write_fixture_store(directory, 400)


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


# The keys the loopback S3 server checks (the same as mission-store/tests/integration/s3_server.rs).
S3_ACCESS_KEY = "mission-test-access"
S3_SECRET_KEY = "mission-test-secret-0123456789"
S3_REGION = "us-east-1"


class S3Server:
    """A running `mission-s3-server` (tests/s3-server): `endpoint` is `http://127.0.0.1:PORT`,
    `bucket` the bucket created at start, `root` the directory its objects live in."""

    def __init__(self, process, endpoint, bucket, root):
        self.process = process
        self.endpoint = endpoint
        self.bucket = bucket
        self.root = root

    def env(self):
        """The AWS_* environment a child process (mission-ctl) needs to reach this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ALLOW_HTTP": "true",
            "AWS_REGION": S3_REGION,
            "AWS_ACCESS_KEY_ID": S3_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": S3_SECRET_KEY,
        }


def ctl_binary():
    """`$MISSION_CTL` (scripts/test sets it), else a debug build of mission-ctl."""
    exe = os.environ.get("MISSION_CTL")
    if exe:
        return exe
    subprocess.run(["cargo", "build", "-q", "-p", "mission-ctl"], cwd=ROOT, check=True)
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    return str(target / "debug" / "mission-ctl")


def upload_store(server, local_root, bucket, prefix):
    """Uploads the store's finalized files to `s3://bucket/prefix/` on `server` with our own
    writer, `mission-ctl upload --keep-local` (the local copy stays for the local comparisons);
    returns the keys, as the paths under the root."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    run = subprocess.run(
        [ctl_binary(), "upload", "--store", str(local_root), "--to", f"s3://{bucket}/{prefix}",
         "--keep-local", "--json"],
        capture_output=True, text=True, env={**base, **server.env()})
    assert run.returncode == 0, f"mission-ctl upload exited with {run.returncode}:\n{run.stderr}\n{run.stdout}"
    stats = json.loads(run.stdout)
    assert stats["error"] is None and stats["files_pending"] == 0, stats
    keys = []
    for path in sorted(pathlib.Path(local_root).glob("events/**/*.parquet")):
        relative = path.relative_to(local_root)
        if not any(part.startswith(".") for part in relative.parts):
            keys.append(f"{prefix}/{relative.as_posix()}")
    assert stats["files_uploaded"] == len(keys), (stats, len(keys))
    return keys


def s3_server_binary():
    """`$MISSION_S3_SERVER` (scripts/test sets it), else `target/debug/mission-s3-server`."""
    exe = os.environ.get("MISSION_S3_SERVER")
    return pathlib.Path(exe) if exe else ROOT / "target" / "debug" / "mission-s3-server"


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """The loopback S3 server on a free port, with a temporary root, SigV4 keys and the bucket
    `mission-store`, started as the Rust tests start it; killed at the end of the session."""
    binary = s3_server_binary()
    assert binary.is_file(), (
        f"the loopback S3 server is not built: {binary} does not exist. Build it with "
        "`cargo build -p mission-s3-server` (scripts/test does) or set MISSION_S3_SERVER to its path")
    root = tmp_path_factory.mktemp("s3")
    bucket = "mission-store"
    process = subprocess.Popen(
        [str(binary), "--root", str(root), "--addr", "127.0.0.1:0", "--bucket", bucket,
         "--access-key", S3_ACCESS_KEY, "--secret-key", S3_SECRET_KEY],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
    try:
        # It prints exactly one line once the socket is bound (or exits): wait for that line with
        # a deadline (a debug build on a busy core can be slow to start).
        lines = queue.Queue()
        threading.Thread(target=lambda: lines.put(process.stdout.readline()), daemon=True).start()
        try:
            line = lines.get(timeout=60)
        except queue.Empty:
            pytest.fail(f"{binary} printed no 'listening on' line within 60 s")
        prefix = "listening on "
        assert line.startswith(prefix), f"{binary} did not start: {line!r} (exit: {process.poll()})"
        yield S3Server(process, line[len(prefix):].strip(), bucket, root)
    finally:
        process.kill()
        process.wait()
        process.stdout.close()
