"""The servers read a store in a bucket as they read it on disk: the fixture store uploaded with
`mission-ctl upload` to the loopback S3 server, then `mission-ctl mcp --store s3://…` (driven by the
official MCP client) and `mission-ctl dashboard s3://…` (its JSON API) answer exactly as they do
over the local copy; a tenant-scoped dashboard token on the bucket sees only its tenant."""

import asyncio
import json
import os
import queue
import subprocess
import threading
import urllib.request

import mcp
import pytest

from conftest import ctl_binary, upload_store, write_fixture_store

VIEWER = "tenant-0-viewer-token-01"


@pytest.fixture(scope="module")
def stores(tmp_path_factory, s3_server):
    """(local directory, s3 URL, what was recorded): 120 threads, uploaded, local copy kept."""
    directory = tmp_path_factory.mktemp("bucket-surfaces")
    recorded = write_fixture_store(directory, 120)
    upload_store(s3_server, directory, s3_server.bucket, "surfaces/data")
    return directory, f"s3://{s3_server.bucket}/surfaces/data", recorded


def _mcp(store, env, scenario):
    params = mcp.StdioServerParameters(command=ctl_binary(), args=["mcp", "--store", str(store)],
                                       env=env)

    async def main():
        async with mcp.Client(params) as client:
            return await scenario(client)

    return asyncio.run(main())


def test_mcp_over_the_bucket_answers_as_over_the_disk(stores, s3_server):
    directory, url, recorded = stores

    async def scenario(client):
        answers = {}
        for tool, args in (("list_threads", {"limit": 200}),
                           ("operation_stats", {"since_minutes": 100000, "group_by": ["operation"]})):
            result = await client.call_tool(tool, args)
            assert not result.is_error, (tool, result.content)
            answers[tool] = result.structured_content
        return answers

    remote = _mcp(url, s3_server.env(), scenario)
    local = _mcp(directory, {}, scenario)
    # A rate is events over the window up to now, and the two calls run at different nows.
    for row in local["operation_stats"]["rows"]:
        row["per_second"] = pytest.approx(row["per_second"], rel=1e-6)
    assert remote == local
    assert remote["list_threads"]["total"] == len(recorded["threads"])
    assert {r["thread_id"] for r in remote["list_threads"]["rows"]} == set(recorded["threads"])


class Dashboard:
    def __init__(self, store, env, *tokens):
        args = [ctl_binary(), "dashboard", str(store), "--addr", "127.0.0.1:0"]
        for token in tokens:
            args += ["--tenant-token", token]
        base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                        env={**base, **env}, text=True)
        lines = queue.Queue()
        threading.Thread(target=lambda: lines.put(self.process.stdout.readline()), daemon=True).start()
        line = lines.get(timeout=60)  # a deadline for a slow start, not a pause
        assert line.startswith("Mission Control dashboard on "), line
        self.url = line.split(" on ", 1)[1].split(" ", 1)[0]

    def get(self, path, token=None):
        request = urllib.request.Request(self.url.rstrip("/") + path)
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())

    def close(self):
        self.process.kill()
        self.process.wait()
        self.process.stdout.close()


def test_the_dashboard_over_the_bucket_answers_as_over_the_disk(stores, s3_server):
    directory, url, recorded = stores
    remote = Dashboard(url, s3_server.env())
    local = Dashboard(directory, {})
    try:
        threads = remote.get("/api/threads?limit=500")
        assert threads == local.get("/api/threads?limit=500")
        assert {t["thread_id"] for t in threads["threads"]} == set(recorded["threads"])
        assert threads["unreadable"] == []
    finally:
        remote.close()
        local.close()


def test_a_tenant_token_on_the_bucket_sees_only_its_tenant(stores, s3_server):
    _, url, recorded = stores
    scoped = Dashboard(url, s3_server.env(), f"{VIEWER}:tenant-0")
    try:
        threads = scoped.get("/api/threads?limit=500", VIEWER)["threads"]
        want = {t for t, row in recorded["threads"].items() if row["tenant"] == "tenant-0"}
        assert want and {t["thread_id"] for t in threads} == want
    finally:
        scoped.close()
