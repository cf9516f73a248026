"""Governance over MCP with the official Python client, against a running agent: permission
decisions are queryable within a tenant; the policy is read by operators and replaced only by
an admin of every tenant (audited); a data subject's events are erased by an admin, in their own
tenant only when the token is scoped, with the erasure in the audit trail as a digest; and the
trail still verifies with `mission-ctl audit verify`."""

import hashlib
import json
import os
import pathlib
import subprocess
import time

import duckdb
import pytest

from test_mcp_http import ACME, ACME_ADMIN, ADMIN, OPERATOR, all_rows, attempt, run, start_agent

ROOT = pathlib.Path(__file__).resolve().parents[2]

NO_REFUNDS = """
default = "allow"

[[rule]]
name = "no-refunds"
effect = "deny"
action = "refund"
reason = "refunds go through a human"
"""


@pytest.fixture(scope="module")
def agent(tmp_path_factory):
    proc, info = start_agent(tmp_path_factory.mktemp("governance-store"), 300)
    yield proc, info
    proc.stdin.close()
    proc.wait(timeout=30)


def command(proc, line):
    proc.stdin.write(line + "\n")
    proc.stdin.flush()
    return proc.stdout.readline().strip()


def user_rows(store, tenant, user):
    return duckdb.sql(
        f"SELECT count(*) FROM read_parquet('{store}/events/**/*.parquet', hive_partitioning = true) "
        f"WHERE tenant = '{tenant}' AND attributes['user.id'] = '{user}'"
    ).fetchall()[0][0]


def test_policy_is_read_by_operators_and_replaced_by_an_admin_then_denials_are_queryable(agent):
    proc, info = agent
    url = info["url"]

    async def viewer(client):
        return await attempt(client, "get_policy", {})

    async def operator(client):
        refused = await attempt(client, "set_policy", {"toml": NO_REFUNDS})
        result = await client.call_tool("get_policy", {})
        return refused, result.structured_content

    async def scoped_admin(client):
        return await attempt(client, "set_policy", {"toml": NO_REFUNDS})

    async def admin(client):
        bad = await attempt(client, "set_policy", {"toml": "default = \"allow\"\n[[rule]]\nname = \"x\"\neffect = \"maybe\"\n"})
        result = await client.call_tool("set_policy", {"toml": NO_REFUNDS})
        assert not result.is_error, result.content
        return bad, result.structured_content

    is_error, text, _ = run(url, ACME, viewer)
    assert is_error and "operator" in text, text
    (refused, _, _), policy = run(url, OPERATOR, operator)
    assert refused, "an operator cannot replace the policy"
    assert policy["default"] == "allow" and policy["rules"] == []
    is_error, text, _ = run(url, ACME_ADMIN, scoped_admin)
    assert is_error and "every tenant" in text, text
    (bad_error, bad_text, _), changed = run(url, ADMIN, admin)
    assert bad_error and "line" in bad_text, bad_text
    assert changed == {"rules": 1, "replaced_rules": 0}

    decision = json.loads(command(proc, "permit agent:billing refund order-17"))
    assert decision == {"allowed": False, "rule": "no-refunds", "reason": "denied by rule `no-refunds`: refunds go through a human"}
    assert json.loads(command(proc, "permit agent:billing lookup order-17"))["allowed"]

    async def denials(client):
        deadline = time.time() + 10
        while True:
            rows, _ = await all_rows(client, "list_permission_decisions", {"decision": "deny", "rule": "no-refunds"})
            if rows or time.time() > deadline:
                return rows
            time.sleep(0.3)

    rows = run(url, ADMIN, denials)
    assert len(rows) == 1, rows
    assert rows[0]["permission_actor"] == "agent:billing"
    assert rows[0]["permission_resource"] == "order-17"
    assert rows[0]["tenant"] == "tenant-0"

    # The tenant-1 viewer sees tenant-1's decisions only (the simulated workload's), never
    # tenant-0's denial.
    async def acme(client):
        return (await all_rows(client, "list_permission_decisions", {}))[0]

    acme_rows = run(url, ACME, acme)
    assert acme_rows and {r["tenant"] for r in acme_rows} == {"tenant-1"}

    audit = (pathlib.Path(info["store"]) / "audit" / "audit.jsonl").read_text().splitlines()
    changes = [json.loads(l) for l in audit if json.loads(l)["kind"] == "policy_change"]
    assert changes and changes[-1]["actor"] == "mcp:admin" and changes[-1]["detail"]["rules"] == ["no-refunds"]


def test_erasure_by_subject_is_scoped_audited_and_verifiable(agent):
    proc, info = agent
    url, store = info["url"], info["store"]
    # A user the simulated workload gave threads in both tenants.
    users = duckdb.sql(
        f"SELECT attributes['user.id'] AS u FROM read_parquet('{store}/events/**/*.parquet', hive_partitioning = true) "
        "WHERE attributes['user.id'] IS NOT NULL GROUP BY u HAVING count(DISTINCT tenant) = 2 ORDER BY u LIMIT 1"
    ).fetchall()
    assert users, "the workload spreads users over both tenants"
    user = users[0][0]
    before = {t: user_rows(store, t, user) for t in ("tenant-0", "tenant-1")}
    assert before["tenant-0"] > 0 and before["tenant-1"] > 0

    async def viewer(client):
        return await attempt(client, "erase_subject", {"key": "user.id", "value": user})

    async def scoped_admin(client):
        elsewhere = await attempt(client, "erase_subject", {"key": "user.id", "value": user, "tenant": "tenant-0"})
        empty = await attempt(client, "erase_subject", {"key": "user.id", "value": ""})
        result = await client.call_tool("erase_subject", {"key": "user.id", "value": user})
        assert not result.is_error, result.content
        return elsewhere, empty, result.structured_content

    is_error, text, _ = run(url, ACME, viewer)
    assert is_error and "admin" in text, text
    (elsewhere_error, elsewhere_text, _), (empty_error, _, _), report = run(url, ACME_ADMIN, scoped_admin)
    assert elsewhere_error and "scoped to tenant tenant-1" in elsewhere_text, elsewhere_text
    assert empty_error
    assert report["events"] == before["tenant-1"]
    assert report["tenant"] == "tenant-1"
    assert report["value_sha256"] == hashlib.sha256(user.encode()).hexdigest()

    assert user_rows(store, "tenant-1", user) == 0
    assert user_rows(store, "tenant-0", user) == before["tenant-0"], "another tenant's data is untouched"

    audit = (pathlib.Path(store) / "audit" / "audit.jsonl").read_text()
    erasures = [json.loads(l) for l in audit.splitlines() if json.loads(l)["kind"] == "erasure"]
    assert erasures[-1]["actor"] == "mcp:admin@tenant-1"
    assert erasures[-1]["detail"]["value_sha256"] == report["value_sha256"]
    assert f'"{user}"' not in audit, "the trail keeps a digest, not the value"

    ctl = os.environ.get("MISSION_CTL") or str(ROOT / "target" / "debug" / "mission-ctl")
    verified = subprocess.run([ctl, "audit", "verify", store, "--json"], capture_output=True, text=True)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert json.loads(verified.stdout)["problem"] is None
