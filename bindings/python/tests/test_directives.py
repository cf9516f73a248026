"""Directives from Python: callbacks called with a dict off the recording path, acknowledging a
firing incident, the log level a firing directive lowers, and files that cannot be loaded."""

import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import mission_control as mc
from conftest import rows as rows_of

FAILING = """
[[directive]]
name = "tool-failing"
when = "2 failures in a row"
where = { kind = "tool_call" }
group_by = ["operation"]
then = [
  { action = "alert" },
  { action = "callback", name = "page_me" },
  { action = "callback", name = "broken" },
  { action = "set_log_level", level = "debug" },
]
"""


def fail_twice(control, tool="search"):
    with control.thread(agent="support-bot") as thread:
        for _ in range(2):
            with thread.tool_call(tool) as call:
                call.set_error("upstream returned 503")


def succeed(control, tool="search"):
    with control.thread(agent="support-bot") as thread:
        with thread.tool_call(tool):
            pass


@pytest.fixture
def failing(tmp_path):
    path = tmp_path / "failing.toml"
    path.write_text(FAILING)
    c = mc.init(store=tmp_path / "store", service="cb", directives=[path], models=False, log_level="info")
    yield c
    if not c.is_shut_down:
        c.shutdown()


def alert_states(control):
    rows = rows_of(control.query(kind="log", name="mission.alert"))
    return [dict(r["attributes"])["mission.alert.state"] for r in sorted(rows, key=lambda r: r["time"])]


def test_callbacks_get_a_dict_per_firing_and_resolve_on_a_thread_of_their_own(failing):
    c = failing
    seen = []

    @c.callback("page_me")
    def page_me(alert):
        seen.append((alert, threading.get_ident()))
        c.flush()  # flushing from a callback does not wait for itself

    @c.callback()
    def broken(alert):
        raise RuntimeError("boom in a callback")

    fail_twice(c)
    c.flush()
    assert len(seen) == 1, seen
    alert, ident = seen[0]
    assert ident != threading.get_ident(), "not on the recording thread"
    assert alert["state"] == "firing" and alert["directive"] == "tool-failing"
    assert alert["dedup_key"] == "tool-failing:operation=search"
    assert alert["group"] == {"operation": "search"}
    assert alert["tenant"] == "default" and alert["agent"] == "support-bot"
    assert alert["value"] == 2 and alert["threshold"] == 2
    assert isinstance(alert["time_ns"], int) and "failed 2 times" in alert["summary"]
    stats = c.directive_stats()
    py = stats["python_callbacks"]
    assert (py["registered"], py["run"], py["failed"], py["dropped"]) == (2, 1, 1, 0), py
    assert "boom in a callback" in py["last_error"]
    assert stats["callbacks_panicked"] == 0 and stats["fired"] == 1

    succeed(c)
    c.flush()
    assert [a["state"] for a, _ in seen] == ["firing", "resolved"]
    assert c.directive_stats()["python_callbacks"]["failed"] == 2
    assert c.unregister_callback("broken") is True
    assert c.unregister_callback("broken") is False
    with pytest.raises(TypeError):
        c.register_callback("x", "not callable")


def test_a_slow_callback_never_blocks_recording(failing):
    c = failing
    release = threading.Event()
    entered = threading.Event()

    @c.callback("page_me")
    def page_me(alert):
        entered.set()
        release.wait(10)

    fail_twice(c)
    assert entered.wait(10), "the callback was called"
    started = time.monotonic()
    for i in range(1000):
        c.log("warn", f"still recording {i}")
    with c.thread() as thread:
        thread.step("while the callback waits").end()
    assert time.monotonic() - started < 2, "recording went on while the callback waited"
    release.set()
    c.flush()
    assert c.directive_stats()["python_callbacks"]["run"] == 1


def test_acknowledging_an_incident_from_python(failing):
    c = failing
    calls = []
    c.register_callback("page_me", lambda alert: calls.append(alert["state"]))
    with pytest.raises(ValueError, match="no firing incident"):
        c.acknowledge("tool-failing", "jo")
    fail_twice(c)
    c.flush()
    acked = c.acknowledge("tool-failing:operation=search", "jo@ops", note="on it")
    assert [(a["state"], a["dedup_key"]) for a in acked] == [("acknowledged", "tool-failing:operation=search")]
    assert c.acknowledge("tool-failing", "jo@ops") == [], "acknowledged once"
    firing = next(d for d in c.directives() if d["name"] == "tool-failing")["firing"][0]
    assert firing["acknowledged"]["by"] == "jo@ops" and firing["acknowledged"]["note"] == "on it"
    succeed(c)
    c.flush()
    assert calls == ["firing", "resolved"], "no callback for the acknowledgement"
    assert alert_states(c) == ["firing", "acknowledged", "resolved"]
    assert c.directive_stats()["acknowledged"] == 1


def test_a_firing_directive_lowers_the_log_level_until_it_resolves(failing):
    c = failing
    c.log("debug", "before")
    fail_twice(c)
    c.flush()
    c.log("debug", "during")
    with c.thread() as thread:
        thread.log("debug", "during, in a thread")
        thread.log("trace", "too verbose even now")
    succeed(c)
    c.flush()
    c.log("debug", "after")
    c.log("info", "info is always kept")
    messages = sorted(c.query(kind="log", name="log").column("log_message").to_pylist())
    assert messages == ["during", "during, in a thread", "info is always kept"], messages


def test_a_bad_log_level_is_a_config_error(tmp_path):
    with pytest.raises(mc.ConfigError, match="log_level"):
        mc.init(store=tmp_path / "store", log_level="loud")


@pytest.mark.parametrize(
    "argument, text",
    [
        ("policy_file", 'default = "allow"\n[[rule]]\nname = "x"\neffect = "maybe"\n'),
        ("redaction_file", 'key = "a-python-redaction-key-0123"\n[default]\nemail = true\n'),
        ("directives", '[[directive]]\nname = "x"\nwhen = "p97(duration) > 1s over 5m"\n'),
    ],
)
def test_missing_or_malformed_files_raise_config_error(tmp_path, argument, text):
    def init(path):
        value = [path] if argument == "directives" else path
        return mc.init(store=tmp_path / "store", models=False, **{argument: value})

    missing = tmp_path / f"missing-{argument}.toml"
    with pytest.raises(mc.ConfigError, match=f"missing-{argument}.toml") as err:
        init(missing)
    assert not isinstance(err.value, mc.StoreError)
    assert isinstance(err.value, mc.MissionControlError)

    bad = tmp_path / f"bad-{argument}.toml"
    bad.write_text(text)
    with pytest.raises(mc.ConfigError, match=f"bad-{argument}.toml") as err:
        init(bad)
    assert "line" in str(err.value), str(err.value)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_keeps_its_callbacks(tmp_path):
    path = tmp_path / "failing.toml"
    path.write_text(FAILING)
    script = textwrap.dedent(f"""
        import os, sys
        import mission_control as mc
        control = mc.init(store={str(tmp_path / "store")!r}, directives=[{str(path)!r}], models=False)
        seen = []
        control.register_callback("page_me", lambda alert: seen.append((os.getpid(), alert["state"])))
        pid = os.fork()
        with control.thread() as thread:
            for _ in range(2):
                with thread.tool_call("child" if pid == 0 else "parent") as call:
                    call.set_error("503")
        control.flush()
        ok = seen == [(os.getpid(), "firing")]
        if not ok:
            print(os.getpid(), seen, control.directive_stats(), file=sys.stderr)
        control.shutdown()
        if pid == 0:
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        sys.exit(0 if ok and os.waitstatus_to_exitcode(status) == 0 else 1)
    """)
    done = subprocess.run([sys.executable, "-c", script], timeout=60)
    assert done.returncode == 0, "parent or child missed its callback"


def test_an_https_webhook_is_signed_and_trusts_its_ca_file(tmp_path, https_receiver):
    import hashlib
    import hmac

    path = tmp_path / "webhook.toml"
    path.write_text(textwrap.dedent(f"""
        [[directive]]
        name = "tool-failing"
        when = "2 failures in a row"
        where = {{ kind = "tool_call" }}
        group_by = ["operation"]
        then = [
          {{ action = "alert" }},
          {{ action = "webhook", url = "{https_receiver.url}/hook", secret = "s3cret", ca_file = "{https_receiver.ca_file}" }},
        ]
        """))
    c = mc.init(store=tmp_path / "store", service="wh", directives=[path], models=False)
    try:
        fail_twice(c)
        c.flush()
        succeed(c)
        c.flush()
        deadline = time.monotonic() + 10
        while len(https_receiver.requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
            c.flush()
    finally:
        c.shutdown()
    assert [p for p, _, _ in https_receiver.requests] == ["/hook", "/hook"]
    states = []
    for _, headers, body in https_receiver.requests:
        expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
        assert headers["x-mission-signature"] == expected
        states.append(__import__("json").loads(body)["state"])
    assert states == ["firing", "resolved"]


def test_a_webhook_ca_file_that_cannot_be_read_is_a_config_error(tmp_path):
    path = tmp_path / "webhook.toml"
    path.write_text(textwrap.dedent("""
        [[directive]]
        name = "x"
        when = "2 failures in a row"
        then = [{ action = "webhook", url = "https://127.0.0.1:9/hook", ca_file = "/no/such/ca.pem" }]
        """))
    with pytest.raises(mc.ConfigError, match="ca_file"):
        mc.init(store=tmp_path / "store", directives=[path], models=False)
