"""init(store_upload="s3://bucket/prefix"): the store's finalized files go to object storage, here
the project's loopback S3 server (tests/s3-server, built by scripts/test and named by
MISSION_S3_SERVER), once each; the bucket then holds every span recorded (read with pyarrow) and
the local directory none, and Control.sql(store="s3://…") reads it; a bad URL is a ConfigError."""

import os
import subprocess
import threading
from pathlib import Path

import pyarrow.dataset as ds
import pytest

import mission_control as mc

ACCESS = "mission-py-access"
SECRET = "mission-py-secret-0123456789"


def _server_binary() -> Path:
    binary = os.environ.get("MISSION_S3_SERVER")
    if binary is None:
        here = Path(__file__).resolve().parents[3]
        binary = here / "target" / "debug" / "mission-s3-server"
    binary = Path(binary)
    assert binary.is_file(), (
        f"the loopback S3 server is not built: {binary} does not exist "
        "(cargo build -p mission-s3-server, or set MISSION_S3_SERVER)"
    )
    return binary


@pytest.fixture
def s3_server(tmp_path, monkeypatch):
    root = tmp_path / "s3"
    process = subprocess.Popen(
        [str(_server_binary()), "--root", str(root), "--addr", "127.0.0.1:0", "--bucket", "agents",
         "--access-key", ACCESS, "--secret-key", SECRET],
        stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
    )
    line = []
    reader = threading.Thread(target=lambda: line.append(process.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout=60)  # an explicit deadline for a slow start, not a pause
    assert line and line[0].startswith("listening on "), f"the S3 server did not start: {line}"
    endpoint = line[0].strip().removeprefix("listening on ")
    for key, value in {
        "AWS_ENDPOINT_URL": endpoint, "AWS_ALLOW_HTTP": "true", "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": ACCESS, "AWS_SECRET_ACCESS_KEY": SECRET,
    }.items():
        monkeypatch.setenv(key, value)
    yield root / "agents"
    process.kill()
    process.wait()


def test_an_agents_store_goes_to_the_bucket_once(tmp_path, s3_server):
    local = tmp_path / "data"
    control = mc.init(store=local, service="py-agent", tenant="acme", models=False,
                      store_upload="s3://agents/py")
    for i in range(12):
        with control.thread(agent="support-bot") as thread:
            thread.tool_call(f"tool-{i % 3}").end()
    control.shutdown()

    objects = sorted((s3_server / "py" / "events").rglob("*.parquet"))
    assert objects, "nothing was uploaded"
    table = ds.dataset([str(p) for p in objects], format="parquet").to_table()
    kinds = table.column("kind").to_pylist()
    assert kinds.count("tool_call") == 12
    assert not list((local / "events").rglob("*.parquet")), "uploaded files leave the directory"

    # Control.sql reads the bucket (a reader instance that keeps no store of its own).
    reader = mc.init(use_store=False, models=False)
    try:
        answer = reader.sql("SELECT name, count(*) AS n FROM tool_calls GROUP BY name ORDER BY name",
                            store="s3://agents/py")
        scoped = reader.sql("SELECT count(*) AS n FROM events", store="s3://agents/py", tenant="globex")
    finally:
        reader.shutdown()
    assert answer.to_pylist() == [{"name": f"tool-{i}", "n": 4} for i in range(3)]
    assert scoped.column("n").to_pylist() == [0], "another tenant's principal sees nothing"


def test_a_bad_upload_url_is_a_config_error(tmp_path):
    with pytest.raises(mc.ConfigError, match="ftp://nowhere"):
        mc.init(store=tmp_path / "data", models=False, store_upload="ftp://nowhere/x")
