"""The live surfaces from Python: `control.subscribe(...)` (sync and async iteration, filters,
lag, tenant scope), `control.add_sink(...)` (batches on a worker thread, failures and drops
counted in health, never blocking the agent) and `control.serve_dashboard(...)` (HTTP on
loopback, the Rust dashboard's token rules).

No test depends on speed: waits are explicit, on a condition, with a generous deadline."""

import asyncio
import json
import threading
import time
import urllib.error
import urllib.request

import pytest

import mission_control as mc

DEADLINE = 60.0


def wait_until(condition, what, deadline=DEADLINE):
    """Waits until `condition()` holds (checked between short pauses), at most `deadline` s."""
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


@pytest.fixture
def quiet(tmp_path):
    """An instance without the models, whose derived events would join the stream."""
    c = mc.init(store=tmp_path / "store", service="live-agent", tenant="acme", models=False)
    yield c
    if not c.is_shut_down:
        c.shutdown()


def take(sub, n):
    """The next `n` events of `sub` (each waited for at most DEADLINE)."""
    out = []
    for _ in range(n):
        event = sub.next_event(timeout=DEADLINE)
        assert event is not None, f"only {len(out)} of {n} events came"
        out.append(event)
    return out


# --- subscribe ----------------------------------------------------------------------------


def test_subscribe_sees_recorded_events_in_order_with_their_fields(quiet):
    with quiet.subscribe(agent="support-bot") as sub:
        with quiet.thread(agent="support-bot", user_id="u-1") as thread:
            with thread.llm_call(model="gpt-4o-mini", provider="openai") as call:
                call.record_usage(input_tokens=812, output_tokens=64, cached_input_tokens=512)
            for i in range(5):
                with thread.tool_call(f"tool-{i}") as tool:
                    tool.set_attribute("step", i)
            thread.log("warn", "retrying", attempt=2)
        events = take(sub, 1 + 5 + 1 + 1)  # the LLM call, five tools, the log, the thread's root
    llm, tools, log = events[0], events[1:6], events[6]
    assert llm["kind"] == "llm_call"
    assert (llm["model"], llm["provider"]) == ("gpt-4o-mini", "openai")
    assert (llm["input_tokens"], llm["cached_input_tokens"], llm["output_tokens"]) == (812, 512, 64)
    assert llm["cost_usd"] > 0
    assert llm["thread_id"] == thread.id and llm["tenant"] == "acme" and llm["agent"] == "support-bot"
    assert llm["parent_span_id"] == thread.root.span_id and llm["span_id"] != llm["parent_span_id"]
    assert isinstance(llm["time_ns"], int) and llm["duration_ns"] >= 0 and llm["status"] in ("unset", "ok")
    assert [t["name"] for t in tools] == [f"tool-{i}" for i in range(5)]
    assert [t["attributes"]["step"] for t in tools] == list(range(5))
    assert (log["kind"], log["level"], log["message"]) == ("log", "warn", "retrying")
    assert log["attributes"]["attempt"] == 2
    assert events[7]["kind"] == "agent_step" and events[7]["span_id"] == thread.root.span_id
    assert sub.lagged == 0 and sub.ended  # closed by the `with`


def test_filters_by_kind_agent_and_thread(quiet):
    tools = quiet.subscribe(kind="tool_call")
    several = quiet.subscribe(kind=["log", "llm_call"])
    bot_b = quiet.subscribe(agent="bot-b")
    with quiet.thread(agent="bot-a") as a:
        one_thread = quiet.subscribe(thread_id=a.id.upper())  # hex case does not matter
        with a.tool_call("search"):
            pass
        with a.llm_call(model="m"):
            pass
        a.log("info", "from a")
    with quiet.thread(agent="bot-b") as b:
        with b.tool_call("fetch"):
            pass
        b.log("info", "from b")
    # Each subscription's last expected event is waited for, then nothing else is queued:
    # the hub handed every subscriber the same batches, in order.
    assert [e["name"] for e in take(tools, 2)] == ["search", "fetch"]
    assert [(e["kind"], e["agent"]) for e in take(several, 3)] == [
        ("llm_call", "bot-a"), ("log", "bot-a"), ("log", "bot-b")]
    assert [e["kind"] for e in take(bot_b, 3)] == ["tool_call", "log", "agent_step"]
    assert [e["kind"] for e in take(one_thread, 4)] == ["tool_call", "llm_call", "log", "agent_step"]
    quiet.flush()
    for sub in (tools, several, bot_b, one_thread):
        assert sub.try_next() is None
        sub.close()


def test_bad_filters_and_numbers_are_typed_errors_naming_the_argument(quiet):
    for arg, bad, error in [
        ("kind", "llm_calls", ValueError), ("kind", 3, TypeError), ("thread_id", "not-hex", ValueError),
        ("capacity", 0, ValueError), ("capacity", 10**12, ValueError), ("capacity", True, TypeError),
        ("capacity", 2.5, TypeError), ("timeout", -1, ValueError), ("timeout", "1", TypeError),
    ]:
        with pytest.raises(error, match=arg):
            quiet.subscribe(**{arg: bad})
    with quiet.subscribe() as sub, pytest.raises(ValueError, match="timeout"):
        sub.next_event(timeout=float("nan"))


def test_lag_is_counted_when_the_reader_falls_behind(quiet):
    sub = quiet.subscribe(kind="metric", capacity=4)
    for _ in range(100):
        quiet.record("ticks")
    quiet.flush()  # every metric went through the hub: 4 kept, 96 dropped
    assert (sub.pending, sub.capacity, sub.lagged) == (4, 4, 96)
    assert len([e for e in iter(lambda: sub.try_next(), None)]) == 4
    quiet.record("ticks")
    assert take(sub, 1)[0]["name"] == "ticks" and sub.lagged == 96
    sub.close()


def test_iteration_ends_on_close_timeout_and_shutdown(quiet):
    sub = quiet.subscribe(kind="metric", timeout=0)
    assert list(sub) == []  # nothing waiting: a zero timeout ends at once
    assert not sub.closed
    quiet.record("a")
    quiet.record("b")
    quiet.flush()
    assert [e["name"] for e in sub] == ["a", "b"]

    closer = quiet.subscribe(kind="metric")
    t = threading.Thread(target=closer.close)
    t.start()
    assert list(closer) == []  # blocked waiting until the close on the other thread
    t.join()
    assert closer.ended

    last = quiet.subscribe(kind="metric")
    quiet.record("before-shutdown")
    quiet.shutdown()
    assert [e["name"] for e in last] == ["before-shutdown"]  # queued events first, then the end
    assert last.closed and last.ended
    with pytest.raises(mc.ShutdownError):
        quiet.subscribe()


def test_waiting_releases_the_interpreter_lock(quiet):
    sub = quiet.subscribe(kind="metric")
    got = []
    reader = threading.Thread(target=lambda: got.extend(take(sub, 1)))
    reader.start()
    # The reader blocks in Rust; this thread still runs Python and records.
    quiet.record("from-main")
    reader.join(DEADLINE)
    assert [e["name"] for e in got] == ["from-main"]
    sub.close()


def test_async_iteration(quiet):
    async def main():
        sub = quiet.subscribe(kind=["tool_call", "log"])
        seen = []

        async def consume():
            async for event in sub:
                seen.append(event["name"] if event["kind"] == "tool_call" else event["message"])
                if len(seen) == 3:
                    break

        task = asyncio.ensure_future(consume())
        await asyncio.sleep(0)  # the consumer is waiting before anything is recorded

        def record():
            with quiet.thread(agent="async-bot") as thread:
                with thread.tool_call("first"):
                    pass
                thread.log("info", "middle")
                with thread.tool_call("last"):
                    pass

        # Recorded from another thread while the loop awaits: nothing blocks the loop.
        await asyncio.get_running_loop().run_in_executor(None, record)
        await asyncio.wait_for(task, DEADLINE)
        assert seen == ["first", "middle", "last"]

        # A timeout ends `async for` when nothing comes; close() ends it too.
        assert await sub.next_event_async(timeout=0) is None
        closing = asyncio.ensure_future(sub.next_event_async())
        await asyncio.sleep(0)
        sub.close()
        assert await asyncio.wait_for(closing, DEADLINE) is None
        assert [e async for e in sub] == []

        # Cancelling a waiting read loses no event: the next read gets it.
        again = quiet.subscribe(kind="metric")
        waiting = asyncio.ensure_future(again.next_event_async())
        await asyncio.sleep(0)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        quiet.record("after-cancel")
        event = await asyncio.wait_for(again.next_event_async(), DEADLINE)
        assert event["name"] == "after-cancel"
        again.close()

    asyncio.run(main())


def test_timed_out_async_reads_leave_nothing_behind(quiet):
    async def main():
        sub = quiet.subscribe(kind="metric")
        for _ in range(50):
            assert await sub.next_event_async(timeout=0.001) is None  # nothing is recorded
        # Each timed-out read armed a wake-up; the done ones are forgotten on the next arm.
        assert sub._native._armed <= 1
        quiet.record("after")
        event = await asyncio.wait_for(sub.next_event_async(), DEADLINE)
        assert event["name"] == "after"
        sub.close()

    asyncio.run(main())


def test_a_subscription_for_a_tenant_sees_only_that_tenant(tmp_path):
    acme = mc.init(store=tmp_path / "store", service="bot", tenant="acme", models=False)
    globex = mc.init(store=tmp_path / "store", service="bot", tenant="globex", models=False)
    try:
        acme_only = acme.subscribe(tenant="acme", kind="metric")
        globex_on_acme = acme.subscribe(tenant="globex", kind="metric")
        globex_own = globex.subscribe(kind="metric")
        for i in range(3):
            acme.record(f"acme-{i}")
        globex.record("globex-0")
        assert [e["name"] for e in take(acme_only, 3)] == ["acme-0", "acme-1", "acme-2"]
        assert [(e["name"], e["tenant"]) for e in take(globex_own, 1)] == [("globex-0", "globex")]
        # acme's hub handed its batches to every subscriber alike: the globex-scoped one got
        # nothing of acme's.
        acme.flush()
        assert globex_on_acme.try_next() is None and globex_on_acme.lagged == 0
        assert acme_only.try_next() is None  # and nothing of globex's instance either
    finally:
        acme.shutdown()
        globex.shutdown()


# --- add_sink -----------------------------------------------------------------------------


def test_a_sink_gets_every_event_in_batches(quiet):
    batches = []
    threads = set()

    def sink(batch):
        threads.add(threading.current_thread().name)
        batches.append([e["name"] for e in batch])

    handle = quiet.add_sink(sink, kind="metric", batch_size=7, max_delay=3600)
    assert handle.name == "test_a_sink_gets_every_event_in_batches.<locals>.sink"
    for i in range(50):
        quiet.record(f"m{i}")
    quiet.flush()  # waits until the sink was handed everything
    assert [name for batch in batches for name in batch] == [f"m{i}" for i in range(50)]
    assert max(len(b) for b in batches) == 7 and all(1 <= len(b) <= 7 for b in batches)
    assert threading.current_thread().name not in threads
    stats = handle.stats()
    assert (stats["delivered"], stats["dropped"], stats["failed_events"], stats["queued"]) == (50, 0, 0, 0)
    assert stats["batches"] == len(batches)
    health = quiet.health()
    assert health["python_sinks"] == [stats]
    pipeline_side = next(s for s in health["recorder"]["sinks"] if s["name"] == "python:" + handle.name)
    assert pipeline_side["state"] == "ok"


def test_a_sink_object_with_write_and_close(quiet):
    class Collector:
        def __init__(self):
            self.events = []
            self.closed = 0

        def write(self, batch):
            self.events.extend(batch)

        def close(self):
            self.closed += 1

    collector = Collector()
    handle = quiet.add_sink(collector, kind="log", name="collector", batch_size=2)
    quiet.log("info", "one")
    quiet.log("error", "two", code=7)
    quiet.shutdown()  # the last events are delivered, then close() is called once
    assert [(e["level"], e["message"]) for e in collector.events] == [("info", "one"), ("error", "two")]
    assert collector.events[1]["attributes"] == {"code": 7}
    assert collector.closed == 1
    assert handle.removed and handle.stats()["state"] == "stopped"


def test_a_raising_sink_is_counted_in_health_and_recording_goes_on(quiet):
    calls = []

    def broken(batch):
        calls.append(len(batch))
        raise RuntimeError("sink is down")

    handle = quiet.add_sink(broken, name="broken", kind="metric", batch_size=10)
    for _ in range(25):
        quiet.record("m")
    quiet.flush()  # does not raise: a failing sink is the sink's problem
    stats = quiet.health()["python_sinks"][0]
    assert stats["state"] == "failing"
    assert stats["failed_batches"] == len(calls) >= 3
    assert stats["failed_events"] == sum(calls) == 25
    assert stats["delivered"] == 0 and "sink is down" in stats["last_error"]
    # The loss reaches the pipeline's own sink health on its next tick.
    wait_until(
        lambda: next(s for s in quiet.health()["recorder"]["sinks"] if s["name"] == "python:broken")["failed_events"] == 25,
        "the pipeline's sink health to count the lost events",
    )
    # Recording and storing carried on.
    assert quiet.query(kind="metric").num_rows == 25
    assert handle.remove() is True and handle.removed


def test_a_slow_sink_never_blocks_the_agent_its_drops_are_counted(quiet):
    release = threading.Event()
    received = []

    def slow(batch):
        release.wait(DEADLINE)
        received.extend(batch)

    handle = quiet.add_sink(slow, kind="metric", batch_size=1, max_queue=4, max_delay=0)
    watcher = quiet.subscribe(kind="metric", capacity=1000)
    for _ in range(200):
        quiet.record("m")
    # The pipeline handed all 200 events to every sink and subscriber while the Python sink
    # was stuck in its first call: nothing waited for it.
    assert len(take(watcher, 200)) == 200
    wait_until(lambda: quiet.health()["recorder"]["accounting"]["in_flight"] == 0, "the pipeline to drain")
    stats = handle.stats()
    assert stats["dropped"] >= 200 - 4 - 1  # at most one batch in the call and four queued
    assert stats["queued"] <= 4
    release.set()
    quiet.flush()
    stats = handle.stats()
    assert stats["delivered"] == len(received) and stats["delivered"] + stats["dropped"] == 200
    assert stats["queued"] == 0 and stats["failed_events"] == 0
    watcher.close()


def test_sink_arguments_are_checked(quiet):
    ok = lambda batch: None  # noqa: E731
    with pytest.raises(TypeError, match="sink"):
        quiet.add_sink(42)
    for arg, bad, error in [
        ("batch_size", 0, ValueError), ("batch_size", 100_001, ValueError), ("batch_size", 1.5, TypeError),
        ("max_queue", 0, ValueError), ("max_queue", True, TypeError), ("max_queue", 10**8, ValueError),
        ("max_delay", -0.5, ValueError), ("max_delay", 3601, ValueError), ("max_delay", "1", TypeError),
    ]:
        with pytest.raises(error, match=arg):
            quiet.add_sink(ok, **{arg: bad})
    with pytest.raises(ValueError, match="kind"):
        quiet.add_sink(ok, kind="nope")
    assert quiet.health()["python_sinks"] == []


# --- serve_dashboard ----------------------------------------------------------------------


def get(url, token=None):
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=DEADLINE) as response:
        return response.status, response.headers.get("Content-Type", ""), response.read()


def test_serve_dashboard_answers_on_loopback(quiet):
    with quiet.thread(agent="support-bot") as thread:
        with thread.llm_call(model="gpt-4o-mini", provider="openai") as call:
            call.record_usage(input_tokens=10, output_tokens=5)
    quiet.flush()  # in the store: the dashboard's history
    server = quiet.serve_dashboard()
    assert server.host == "127.0.0.1" and server.port > 0
    assert server.url == f"http://127.0.0.1:{server.port}/"
    status, content_type, body = get(server.url)
    assert status == 200 and "text/html" in content_type and b"<html" in body.lower()
    status, content_type, body = get(server.url + "api/threads")
    assert status == 200 and "application/json" in content_type
    assert thread.id in body.decode()
    server.close()
    assert server.closed
    with pytest.raises(urllib.error.URLError):
        get(server.url + "healthz")


def test_serve_dashboard_with_tokens_refuses_requests_without_one(quiet):
    admin = "admin-token-0123456789"
    viewer = "viewer-token-0123456789"
    with quiet.thread(agent="support-bot") as thread:
        thread.log("info", "hello")
    quiet.flush()
    with quiet.serve_dashboard(token=admin, tokens={viewer: "globex"}) as server:
        with pytest.raises(urllib.error.HTTPError) as refused:
            get(server.url + "api/threads")
        assert refused.value.code == 401
        with pytest.raises(urllib.error.HTTPError) as wrong:
            get(server.url + "api/threads", token="wrong-token-0123456789")
        assert wrong.value.code == 401
        status, _, body = get(server.url + "api/threads", token=admin)
        assert status == 200 and thread.id in body.decode()
        # A token of another tenant sees none of acme's threads.
        status, _, body = get(server.url + "api/threads", token=viewer)
        assert status == 200 and thread.id not in body.decode()
        json.loads(body)
    assert server.closed


def test_serve_dashboard_keeps_the_rust_rules(quiet):
    with pytest.raises(mc.ServeError, match="token"):
        quiet.serve_dashboard(host="0.0.0.0")  # not loopback, no token
    with pytest.raises(mc.ServeError):
        quiet.serve_dashboard(token="short")
    with pytest.raises(ValueError, match="port"):
        quiet.serve_dashboard(port=70000)
    with pytest.raises(TypeError, match="port"):
        quiet.serve_dashboard(port="80")
    with pytest.raises(ValueError, match="host"):
        quiet.serve_dashboard(host="localhost:80")
    server = quiet.serve_dashboard()
    quiet.shutdown()  # stops every dashboard of the instance
    assert server.closed
