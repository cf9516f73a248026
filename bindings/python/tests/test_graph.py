"""The relationship graph from Python: artefacts and relations the host registers
(`control.register_artefact`, `control.register_relation`) join the graph the live dashboard's
`/api/graph` draws from the recorded calls, in their tenant only; malformed ones are ValueErrors."""

import json
import urllib.request

import pytest

import mission_control as mc

DEADLINE = 30


def graph(server, token):
    request = urllib.request.Request(server.url + "api/graph?minutes=10")
    request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=DEADLINE) as response:
        return json.loads(response.read())


def edges(g):
    return {(e["from"], e["kind"], e["to"]): (e["calls"], e.get("label", "")) for e in g["edges"]}


def test_registered_artefacts_join_the_graph_in_their_tenant(tmp_path):
    control = mc.init(store=tmp_path / "store", service="billing", tenant="acme", models=False)
    try:
        with control.thread(agent="billing") as thread:
            for _ in range(2):
                with thread.tool_call("refund"):
                    pass
        assert control.register_artefact("datastore", "ledger", {"engine": "postgres"})
        assert control.register_relation("agent:billing", "datastore:ledger", "writes")
        assert control.register_artefact("datastore", "globex-vault", tenant="globex")
        with pytest.raises(ValueError, match="kind"):
            control.register_artefact("Not A Kind", "x")
        with pytest.raises(ValueError, match="kind:name"):
            control.register_relation("billing", "datastore:ledger", "writes")
        control.flush()
        admin, acme = "admin-token-0123456789", "acme-token-0123456789"
        with control.serve_dashboard(token=admin, tokens={acme: "acme"}) as server:
            g = graph(server, acme)
            assert edges(g) == {
                ("agent:billing", "calls_tool", "tool:refund"): (2, ""),
                ("agent:billing", "relation", "datastore:ledger"): (0, "writes"),
            }
            ledger = next(n for n in g["nodes"] if n["id"] == "datastore:ledger")
            assert ledger["registered"] and ledger["attributes"] == {"engine": "postgres"}
            assert "globex" not in json.dumps(g)
            assert any(n["id"] == "datastore:globex-vault" for n in graph(server, admin)["nodes"])
    finally:
        control.shutdown()
