"""Mission Control: observability that lives inside an AI agent's process.

Record agent runs (threads), LLM calls, tool calls, logs and permission decisions in well under
a microsecond each; they are stored as Parquet (DuckDB, pyarrow and Polars read it as it is),
aggregated live, exported over OTLP when asked, and answerable over MCP.

    import mission_control as mc

    control = mc.init(store="./mission-data", service="support-bot")
    with control.thread(agent="support-bot", user_id="u-42") as thread:
        with thread.llm_call(model="gpt-4o-mini", provider="openai") as call:
            call.record_usage(input_tokens=812, output_tokens=64)
        with thread.tool_call("web_search", arguments={"q": "weather"}) as tool:
            tool.set_result(size=3)
    control.log("warn", "retrying", attempt=2)

    @control.tool("lookup_order")          # sync or async functions
    async def lookup_order(order_id): ...

    @mc.observe                            # any function: sync, async, generators, nested
    def plan(question): ...

    @control.callback("page_me")           # a directive's { action = "callback", name = "page_me" }
    def page_me(alert): print(alert["state"], alert["summary"])

    table = control.query(thread_id=thread.id)   # a pyarrow.Table
    control.stats(); control.health(); control.flush(); control.shutdown()

    with control.subscribe(kind="llm_call") as live:   # the live stream: `for` or `async for`
        for event in live: print(event["model"], event["cost_usd"])
    control.add_sink(lambda batch: print(len(batch)))  # batches on a worker thread
    print(control.serve_dashboard().url)               # the dashboard, on loopback

    mc.instrument_openai()                 # every openai / anthropic client call is an LLM
    mc.instrument_anthropic()              # call, with tokens by kind and cost

Installed as the distribution ``mission-control-observability`` (``pip install
mission-control-observability``; extras ``[arrow]``, ``[otel]``, ``[openai]``, ``[anthropic]``).
The unrelated PyPI package ``mission-control`` also ships a ``mission_control`` module: with
both installed, importing raises an ``ImportError`` or warns, naming the clash.

Everything recorded is flushed at interpreter exit. After ``os.fork()`` the child process gets an
instance of its own.
"""

from __future__ import annotations

import atexit
import datetime as _dt
import functools
import inspect
import logging
import os
import time
import warnings
import weakref
from typing import Any, Callable, Mapping, Optional, Sequence, Tuple, TypeVar, Union

DISTRIBUTION = "mission-control-observability"
"""This package's name on PyPI (the import name is ``mission_control``)."""


def _other_distribution_installed() -> bool:
    """Whether the unrelated PyPI package ``mission-control`` (which also ships a
    ``mission_control`` module) is installed in the directory this package is in: only there
    can its files replace ours (elsewhere on the path it either shadows us entirely or is
    shadowed). One directory listing, so importing stays cheap."""
    site = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        names = os.listdir(site)
    except OSError:
        return False
    for name in names:
        if not (name.startswith("mission_control-") and name.endswith((".dist-info", ".egg-info"))):
            continue
        metadata = os.path.join(site, name, "METADATA" if name.endswith(".dist-info") else "PKG-INFO")
        try:
            with open(metadata, encoding="utf-8", errors="replace") as f:
                summary = next((line[len("Summary:"):].strip() for line in f if line.startswith("Summary:")), "")
        except OSError:
            summary = ""
        # Builds of this package made before it was renamed were called mission-control too.
        if not summary.startswith("Observability that lives inside an AI agent's process"):
            return True
    return False


try:
    from . import _native
except ImportError as _e:
    _clash = _other_distribution_installed()
    raise ImportError(
        "mission_control's native module is missing: "
        + (
            "the unrelated PyPI package 'mission-control' is installed and shares the "
            "'mission_control' module directory; run 'pip uninstall mission-control "
            f"{DISTRIBUTION}' then 'pip install {DISTRIBUTION}'"
            if _clash
            else f"reinstall Mission Control with 'pip install --force-reinstall {DISTRIBUTION}'"
        )
    ) from _e
if _other_distribution_installed():
    warnings.warn(
        "the unrelated PyPI package 'mission-control' is installed beside "
        f"{DISTRIBUTION} and ships a 'mission_control' module too: its files may have "
        f"replaced ours; run 'pip uninstall mission-control {DISTRIBUTION}' then "
        f"'pip install {DISTRIBUTION}'",
        RuntimeWarning,
        stacklevel=2,
    )
from ._native import (
    BudgetExceeded,
    ConfigError,
    DashboardServer,
    FlushError,
    InternalError,
    MissionControlError,
    OtlpReceiver,
    ServeError,
    ShutdownError,
    SinkHandle,
    SqlError,
    Span,
    StoreError,
    Thread,
    ThreadStopped,
    __version__,
)
from . import _instrument  # noqa: E402 - after the check that the native module is ours

__all__ = [
    "UnreadableDataWarning",
    "Control",
    "Thread",
    "Span",
    "MissionHandler",
    "Subscription",
    "SinkHandle",
    "DashboardServer",
    "OtlpReceiver",
    "init",
    "observe",
    "current_span",
    "MissionControlError",
    "ConfigError",
    "StoreError",
    "SqlError",
    "TruncatedResultWarning",
    "ShutdownError",
    "FlushError",
    "ServeError",
    "InternalError",
    "BudgetExceeded",
    "ThreadStopped",
    "Budget",
    "instrument_openai",
    "uninstrument_openai",
    "instrument_anthropic",
    "uninstrument_anthropic",
    "DISTRIBUTION",
    "__version__",
]

F = TypeVar("F", bound=Callable[..., Any])


class Budget(dict):
    """What a thread may spend: ``Budget(tokens=10_000, cost_usd=0.5, hard=True)``, given as
    ``control.thread(budget=...)`` or ``thread.child_thread(budget=...)`` (a plain dict with
    the same keys works too). Each limit is optional: ``turns`` (LLM calls), ``tokens`` (input
    plus output), ``cost_usd``, ``wall_time_s``, ``context_tokens`` (the largest input of one
    call). At ``warn_share`` of a limit (default 0.8) a ``mission.budget.warning`` is recorded;
    at the limit ``thread.should_stop()`` turns true, and with ``hard=True`` ``llm_call`` and
    ``tool_call`` raise ``BudgetExceeded``. A child's spending counts against its own budget
    and every ancestor's. Raises ``ValueError`` (or ``TypeError``) naming a field out of range.
    """

    def __init__(
        self,
        *,
        turns: Optional[int] = None,
        tokens: Optional[int] = None,
        cost_usd: Optional[float] = None,
        wall_time_s: Optional[float] = None,
        context_tokens: Optional[int] = None,
        warn_share: Optional[float] = None,
        hard: bool = False,
    ) -> None:
        given = dict(
            turns=turns,
            tokens=tokens,
            cost_usd=cost_usd,
            wall_time_s=wall_time_s,
            context_tokens=context_tokens,
            warn_share=warn_share,
            hard=hard,
        )
        super().__init__(_native._budget({k: v for k, v in given.items() if v is not None}))

    def __repr__(self) -> str:
        return "Budget(" + ", ".join(f"{k}={v!r}" for k, v in self.items()) + ")"
TimeLike = Union[None, float, int, _dt.datetime, _dt.timedelta]


def current_span() -> Optional[Span]:
    """The innermost span open in this context (task, thread), or None."""
    return _native.CURRENT_SPAN.get()


_LAST_CONTROL: "Optional[weakref.ReferenceType[Control]]" = None
_OBSERVE_KINDS = ("step", "tool", "retrieval", "llm")


class _Observation:
    """One call of an observed function: a span under the current one, or, outside any
    thread, a thread of its own with the span in it."""

    __slots__ = ("span", "thread")

    def __init__(self, name: str, kind: str, control: "Optional[Control]") -> None:
        self.span: Optional[Span] = None
        self.thread: Optional[Thread] = None
        parent: Any = _native.CURRENT_SPAN.get()
        if parent is None or parent.ended:
            if control is None and _LAST_CONTROL is not None:
                control = _LAST_CONTROL()
            if control is None or control.is_shut_down:
                return  # nothing to record into: the function runs unobserved
            self.thread = parent = control.thread()
        if kind == "tool":
            self.span = parent.tool_call(name)
        elif kind == "retrieval":
            self.span = parent.retrieval(name)
        elif kind == "llm":
            self.span = parent.llm_call()
        else:
            self.span = parent.step(name)

    def finish(self, exc: Optional[BaseException] = None) -> None:
        for guard in (self.span, self.thread):
            if guard is None:
                continue
            try:
                if exc is not None:
                    guard.__exit__(type(exc), exc, exc.__traceback__)
                else:
                    guard.end()
            except MissionControlError:
                pass  # shut down meanwhile: counted as dropped, never raised into the app


def _run_in(span: Optional[Span], step: Callable[[], Any]) -> Any:
    """Runs one step of a generator with ``span`` current, without leaking it to the caller."""
    if span is None:
        return step()
    token = _native.CURRENT_SPAN.set(span)
    try:
        return step()
    finally:
        _native.CURRENT_SPAN.reset(token)


def observe(
    fn: Optional[F] = None,
    *,
    name: Optional[str] = None,
    kind: str = "step",
    control: "Optional[Control]" = None,
) -> Any:
    """Decorator: each call of the function is a span named after it (``name`` to choose),
    whatever the function is — sync, ``async``, a generator or an async generator (the span
    covers the whole iteration) — and nested observed functions nest.

    ``@mission_control.observe`` or ``@mission_control.observe(name="plan", kind="tool")``;
    ``kind`` is ``"step"`` (default), ``"tool"``, ``"retrieval"`` or ``"llm"`` (an LLM call
    whose model and usage the function sets through ``current_span()``). Inside a thread the
    span is a child of the current span; outside any, each call is a thread of its own in
    ``control`` (default: the instance ``init`` made last; with none, the function runs
    unobserved). An exception is recorded with its type and message and re-raised unchanged;
    a generator closed early is not an error. Arguments and results are not recorded.
    """
    if kind not in _OBSERVE_KINDS:
        raise ValueError(f"kind must be one of {', '.join(_OBSERVE_KINDS)}, not {kind!r}")
    if name is not None and not isinstance(name, str):
        raise TypeError(f"name must be a str, not {type(name).__name__}")

    def decorate(f: F) -> F:
        qualname = getattr(f, "__qualname__", None) or getattr(f, "__name__", None) or "function"
        span_name = name or qualname.rsplit("<locals>.", 1)[-1]  # `Class.method`, `function`

        if inspect.isasyncgenfunction(f):

            @functools.wraps(f)
            async def async_gen_wrapper(*args: Any, **kwargs: Any) -> Any:
                obs = _Observation(span_name, kind, control)
                agen = f(*args, **kwargs)
                pending: Optional[BaseException] = None
                sent: Any = None
                try:
                    while True:
                        token = _native.CURRENT_SPAN.set(obs.span) if obs.span is not None else None
                        try:
                            if pending is not None:
                                exc, pending = pending, None
                                item = await agen.athrow(exc)
                            else:
                                item = await agen.asend(sent)
                        except StopAsyncIteration:
                            break
                        finally:
                            if token is not None:
                                _native.CURRENT_SPAN.reset(token)
                        try:
                            sent = yield item
                        except GeneratorExit:
                            await agen.aclose()
                            raise
                        except BaseException as e:  # thrown in by the caller: pass it on
                            pending = e
                except GeneratorExit:
                    obs.finish()
                    raise
                except BaseException as e:
                    obs.finish(e)
                    raise
                obs.finish()

            return async_gen_wrapper  # type: ignore[return-value]

        if inspect.isgeneratorfunction(f):

            @functools.wraps(f)
            def gen_wrapper(*args: Any, **kwargs: Any) -> Any:
                obs = _Observation(span_name, kind, control)
                gen = f(*args, **kwargs)
                pending: Optional[BaseException] = None
                sent: Any = None
                try:
                    while True:
                        try:
                            if pending is not None:
                                exc, pending = pending, None
                                item = _run_in(obs.span, lambda: gen.throw(exc))
                            else:
                                item = _run_in(obs.span, lambda: gen.send(sent))
                        except StopIteration as stop:
                            result = stop.value
                            break
                        try:
                            sent = yield item
                        except GeneratorExit:
                            gen.close()
                            raise
                        except BaseException as e:
                            pending = e
                except GeneratorExit:
                    obs.finish()
                    raise
                except BaseException as e:
                    obs.finish(e)
                    raise
                obs.finish()
                return result

            return gen_wrapper  # type: ignore[return-value]

        if inspect.iscoroutinefunction(f):

            @functools.wraps(f)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                obs = _Observation(span_name, kind, control)
                token = _native.CURRENT_SPAN.set(obs.span) if obs.span is not None else None
                try:
                    result = await f(*args, **kwargs)
                except BaseException as e:
                    obs.finish(e)
                    raise
                finally:
                    if token is not None:
                        _native.CURRENT_SPAN.reset(token)
                obs.finish()
                return result

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(f)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            obs = _Observation(span_name, kind, control)
            token = _native.CURRENT_SPAN.set(obs.span) if obs.span is not None else None
            try:
                result = f(*args, **kwargs)
            except BaseException as e:
                obs.finish(e)
                raise
            finally:
                if token is not None:
                    _native.CURRENT_SPAN.reset(token)
            obs.finish()
            return result

        return wrapper  # type: ignore[return-value]

    if fn is not None:
        if not callable(fn):
            raise TypeError(f"observe decorates a function, not {type(fn).__name__}")
        return decorate(fn)
    return decorate


def _to_ns(name: str, value: TimeLike) -> Optional[int]:
    """A time as ns since the Unix epoch: a datetime, epoch seconds, or a timedelta ago."""
    if value is None:
        return None
    if isinstance(value, _dt.timedelta):
        return time.time_ns() - int(value.total_seconds() * 1e9)
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            raise ValueError(f"{name} must be timezone-aware (e.g. datetime.now(timezone.utc))")
        return int(value.timestamp() * 1e9)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"{name} must not be negative, not {value}")
        return int(value * 1e9)
    raise TypeError(f"{name} must be a datetime, a timedelta or epoch seconds, not {type(value).__name__}")


class TruncatedResultWarning(UserWarning):
    """Warned by ``Control.sql`` when more rows matched than ``max_rows``: the table holds the
    first ``max_rows`` rows only (``sql(arrow=False).truncated`` says the same)."""


class UnreadableDataWarning(UserWarning):
    """Warned by ``Control.query`` when files of the store could not be read and were skipped:
    the result is incomplete. The message names each file, why it was skipped and how many rows
    it held; the same list is on the raw result (``query(arrow=False).unreadable``). Turn it into
    an error with ``warnings.simplefilter("error", mission_control.UnreadableDataWarning)``."""


def _delivered(stream: Any, arrow: bool) -> Any:
    """A query's or SQL answer's stream as the caller asked for it (a ``pyarrow.Table``, or the
    stream itself with ``arrow=False`` or without pyarrow), after warning about the store files
    it could not read (``stacklevel`` points at the caller of ``query``/``sql``)."""
    skipped = stream.unreadable
    if skipped:
        warnings.warn(
            f"incomplete result: {len(skipped)} unreadable file(s) of the store were skipped: "
            + "; ".join(skipped),
            UnreadableDataWarning,
            stacklevel=3,
        )
    if not arrow:
        return stream
    try:
        import pyarrow as pa
    except ImportError:
        return stream
    return pa.RecordBatchReader.from_stream(stream).read_all()


def _wake(future: "asyncio.Future[None]") -> None:
    if not future.done():
        future.set_result(None)


def _check_seconds(name: str, value: Any) -> Optional[float]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
    if not 0 <= value <= 1e9:
        raise ValueError(f"{name} must be between 0 and 1e9 seconds, not {value}")
    return float(value)


class Subscription:
    """Live events of one instance as they are recorded (:meth:`Control.subscribe` makes it).

    Iterate it with ``for`` or ``async for``: each event is a dict with ``time_ns``, ``kind``,
    ``tenant``, ``agent``, ``thread_id``, ``span_id``, ``parent_span_id``, ``name``,
    ``attributes`` (a dict) and the fields of its kind — spans: ``duration_ns``, ``status``,
    ``error``, and for LLM calls ``model``, ``provider``, ``input_tokens``, ``output_tokens``,
    ``cached_input_tokens``, ``reasoning_tokens``, ``cost_usd``; logs: ``level``, ``target``,
    ``message``; metrics: ``metric_kind``, ``value``, ``unit``; permissions: ``actor``,
    ``action``, ``resource``, ``decision``, ``policy``; anomalies: ``detector``, ``score``,
    ``value``, ``expected``, ``lower``, ``upper``; scores: ``value``, ``label``, ``comment``,
    ``source``. Content is redacted as for every other consumer.

    Iteration ends when the subscription is closed, the instance shuts down (after the events
    queued before it), or — with a ``timeout`` — when no event came for that long. Waiting
    never holds the interpreter lock, and ``async for`` never blocks the event loop. At most
    ``capacity`` events wait; when the reader falls further behind, the oldest are dropped and
    counted in :attr:`lagged`. Use it as a context manager, or call :meth:`close`.
    """

    __slots__ = ("_native", "_timeout")

    def __init__(self, native: Any, timeout: Optional[float]) -> None:
        self._native = native
        self._timeout = timeout

    def __iter__(self) -> "Subscription":
        return self

    def __next__(self) -> dict:
        event = self._native.next_event(self._timeout)
        if event is None:
            raise StopIteration
        return event

    def __aiter__(self) -> "Subscription":
        return self

    async def __anext__(self) -> dict:
        event = await self.next_event_async(self._timeout)
        if event is None:
            raise StopAsyncIteration
        return event

    def next_event(self, timeout: Optional[float] = None) -> Optional[dict]:
        """The next event, waiting at most ``timeout`` seconds (``None``: until one comes);
        ``None`` if none came in time or the subscription ended (:attr:`ended`)."""
        return self._native.next_event(timeout)

    async def next_event_async(self, timeout: Optional[float] = None) -> Optional[dict]:
        """:meth:`next_event` for ``asyncio``: awaits without blocking the event loop."""
        import asyncio

        timeout = _check_seconds("timeout", timeout)
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            event = self._native.try_next()
            if event is not None:
                return event
            if self._native.ended:
                return None
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return None
            future = loop.create_future()
            self._native._arm(loop, future, functools.partial(_wake, future))
            try:
                await asyncio.wait_for(future, remaining)
            except asyncio.TimeoutError:
                return None

    def try_next(self) -> Optional[dict]:
        """The next event if one is waiting, else ``None``; never waits."""
        return self._native.try_next()

    def close(self) -> None:
        """Ends the subscription: waiting events are discarded and iteration stops."""
        self._native.close()

    @property
    def lagged(self) -> int:
        """Events this subscription lost because it fell more than ``capacity`` behind."""
        return self._native.lagged

    @property
    def pending(self) -> int:
        """Events waiting to be read."""
        return self._native.pending

    @property
    def capacity(self) -> int:
        """The most events kept waiting."""
        return self._native.capacity

    @property
    def closed(self) -> bool:
        """Whether no more events will come (closed, or the instance shut down)."""
        return self._native.closed

    @property
    def ended(self) -> bool:
        """Whether it is closed and every event was read: iteration is over."""
        return self._native.ended

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    async def __aenter__(self) -> "Subscription":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"Subscription({state}, pending={self.pending}, lagged={self.lagged})"


class Control(_native.Control):
    """One embedded Mission Control instance. Make it with :func:`init`."""

    def tool(self, name: Optional[str] = None) -> Callable[[F], F]:
        """Decorator: each call of the function is a tool call span (sync or async).

        Inside a thread (a ``with control.thread()`` block, in this context) the span is a child
        of the current span; outside any thread, each call is a thread of its own. Exceptions
        are recorded (type and message) and re-raised unchanged.
        """
        if name is not None and not isinstance(name, str):
            if callable(name):
                raise TypeError("use @control.tool() or @control.tool('name'), with parentheses")
            raise TypeError(f"name must be a str, not {type(name).__name__}")

        def decorate(fn: F) -> F:
            tool_name = name or fn.__name__

            if inspect.iscoroutinefunction(fn):

                @functools.wraps(fn)
                async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                    parent = _native.CURRENT_SPAN.get()
                    if parent is not None and not parent.ended:
                        with parent.tool_call(tool_name):
                            return await fn(*args, **kwargs)
                    with self.thread() as thread, thread.tool_call(tool_name):
                        return await fn(*args, **kwargs)

                return async_wrapper  # type: ignore[return-value]

            @functools.wraps(fn)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                parent = _native.CURRENT_SPAN.get()
                if parent is not None and not parent.ended:
                    with parent.tool_call(tool_name):
                        return fn(*args, **kwargs)
                with self.thread() as thread, thread.tool_call(tool_name):
                    return fn(*args, **kwargs)

            return wrapper  # type: ignore[return-value]

        return decorate

    def callback(self, name: Optional[str] = None) -> Callable[[F], F]:
        """Decorator: registers the function as the directive callback ``name`` (default: the
        function's name), called for ``{ action = "callback", name = "<name>" }``.

        It receives one dict per firing and per resolve (not for an acknowledgement):
        ``directive``, ``state`` (``"firing"`` or ``"resolved"``), ``dedup_key``, ``severity``,
        ``summary``, ``value``, ``threshold``, ``group`` (a dict), ``tenant``, ``agent``,
        ``operation``, ``time_ns``. Callbacks run on a thread of their own, never on the
        recording path; an exception is caught and counted in ``directive_stats()``.
        ``flush()`` waits for the callbacks of what it delivered.
        """
        if name is not None and not isinstance(name, str):
            if callable(name):
                raise TypeError("use @control.callback() or @control.callback('name'), with parentheses")
            raise TypeError(f"name must be a str, not {type(name).__name__}")

        def decorate(fn: F) -> F:
            self.register_callback(name or fn.__name__, fn)
            return fn

        return decorate

    def query(
        self,
        *,
        thread_id: Optional[str] = None,
        agent: Optional[str] = None,
        kind: Optional[str] = None,
        name: Optional[str] = None,
        status: Optional[str] = None,
        tenant: Optional[str] = None,
        since: TimeLike = None,
        until: TimeLike = None,
        columns: Optional[list] = None,
        limit: Optional[int] = None,
        arrow: bool = True,
    ) -> Any:
        """Events matching every filter given, as a ``pyarrow.Table`` (flushes to the store first,
        so what was just recorded is included; it never waits for OTLP export). ``since``/``until`` take a timezone-aware datetime, epoch
        seconds, or a timedelta meaning "that long ago". With ``arrow=False`` (or without
        pyarrow), returns an object with ``__arrow_c_stream__`` that Polars
        (``pl.DataFrame(result)``) and DuckDB read without a copy. When files of the store cannot
        be read, they are skipped and an ``UnreadableDataWarning`` names them.
        """
        if limit is not None and (not isinstance(limit, int) or limit < 0):
            raise ValueError(f"limit must be a non-negative int, not {limit!r}")
        stream = self._query_stream(
            thread_id=thread_id,
            agent=agent,
            kind=kind,
            name=name,
            status=status,
            tenant=tenant,
            since_ns=_to_ns("since", since),
            until_ns=_to_ns("until", until),
            columns=columns,
            limit=limit,
        )
        return _delivered(stream, arrow)

    def sql(
        self,
        query: str,
        *,
        tenant: Optional[str] = None,
        max_rows: int = 10_000,
        timeout: float = 60.0,
        arrow: bool = True,
        store: Union[str, os.PathLike, None] = None,
    ) -> Any:
        """Read-only SQL (Apache DataFusion) over the store, as a ``pyarrow.Table``.

        Tables: ``events`` (every stored column, plus the partitions ``tenant``, ``date`` and
        ``hour``) and the views ``spans``, ``llm_calls``, ``tool_calls``, ``logs``, ``metrics``,
        ``decisions``, ``anomalies``, ``scores`` and ``threads``. With ``tenant``, only that
        tenant's partitions are readable, whatever the query says. Only queries run: DDL, DML,
        ``COPY`` and ``SET`` raise ``SqlError``, as do invalid SQL and a query running past
        ``timeout`` seconds. At most ``max_rows`` rows are returned; ``result.truncated`` (on
        the stream, ``arrow=False``) says whether more matched. Flushes to the store first.
        ``store`` reads another store instead: a directory, or a bucket such as the one
        ``store_upload`` fills (``"s3://bucket/prefix"``, credentials from the ``AWS_*``
        environment).
        """
        if not isinstance(query, str):
            raise TypeError(f"query must be a str, not {type(query).__name__}")
        if not isinstance(max_rows, int) or isinstance(max_rows, bool) or not 1 <= max_rows <= 10_000_000:
            raise ValueError(f"max_rows must be an int from 1 to 10000000, not {max_rows!r}")
        stream = self._sql_stream(query, tenant=tenant, max_rows=max_rows, timeout_s=float(timeout),
                                  store=os.fspath(store) if store is not None else None)
        if stream.truncated:
            warnings.warn(
                f"the answer was cut at max_rows={max_rows}; more rows matched",
                TruncatedResultWarning,
                stacklevel=2,
            )
        return _delivered(stream, arrow)

    def subscribe(
        self,
        *,
        kind: Union[str, Sequence[str], None] = None,
        agent: Optional[str] = None,
        thread_id: Optional[str] = None,
        tenant: Optional[str] = None,
        capacity: int = 1024,
        timeout: Optional[float] = None,
    ) -> Subscription:
        """Live events as they are recorded, from now on: a :class:`Subscription` to iterate
        with ``for`` or ``async for``.

        Filters (all optional, combined): ``kind`` (``"llm_call"``, ``"tool_call"``, ``"log"``,
        ... or a list of them), ``agent``, ``thread_id`` and ``tenant`` (only that tenant's
        events). At most ``capacity`` events (1 to 1,000,000) wait to be read; a reader that
        falls further behind loses the oldest, counted in ``lagged`` — it never slows the
        agent. With ``timeout`` (seconds), iteration ends when no event came for that long.
        """
        timeout = _check_seconds("timeout", timeout)
        native = self._subscribe(kind=kind, agent=agent, thread_id=thread_id, tenant=tenant, capacity=capacity)
        return Subscription(native, timeout)

    def add_sink(
        self,
        sink: Any,
        *,
        name: Optional[str] = None,
        kind: Union[str, Sequence[str], None] = None,
        agent: Optional[str] = None,
        thread_id: Optional[str] = None,
        tenant: Optional[str] = None,
        batch_size: int = 100,
        max_queue: int = 10_000,
        max_delay: float = 1.0,
    ) -> SinkHandle:
        """Sends every event recorded from now on (or those matching ``kind``, ``agent``,
        ``thread_id``, ``tenant``) to ``sink``, in batches: ``sink`` is a callable taking a list
        of event dicts (the dicts :class:`Subscription` yields), or an object with
        ``write(batch)`` and optionally ``close()`` (called once when the sink stops).

        It is called on a worker thread of its own, never on the agent's threads or the
        pipeline's: a batch holds up to ``batch_size`` events (1 to 100,000), and is sent
        sooner once its oldest event waited ``max_delay`` seconds (0 to 3600) or when
        :meth:`flush` asks. At most ``max_queue`` events (1 to 10,000,000) wait; past that
        they are dropped, so a slow sink never blocks the agent. Exceptions are caught; drops
        and failures are counted in ``health()["python_sinks"]`` (and in the sink's entry of
        ``health()["recorder"]["sinks"]``). Returns a :class:`SinkHandle` (``stats()``, ``remove()``); the
        sink stops when the instance shuts down, after the last events were delivered.
        """
        write = getattr(sink, "write", None)
        close = None
        if callable(write):
            close = getattr(sink, "close", None)
            if not callable(close):
                close = None
        elif callable(sink):
            write = sink
        else:
            raise TypeError(f"sink must be callable or have a write(batch) method, not {type(sink).__name__}")
        if name is None:
            name = getattr(sink, "__qualname__", None) or type(sink).__name__
        elif not isinstance(name, str):
            raise TypeError(f"name must be a str, not {type(name).__name__}")
        return self._add_sink(
            write,
            close,
            name=name,
            kind=kind,
            agent=agent,
            thread_id=thread_id,
            tenant=tenant,
            batch_size=batch_size,
            max_queue=max_queue,
            max_delay=max_delay,
        )

    def serve_dashboard(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        token: Optional[str] = None,
        tokens: Union[Mapping[str, Optional[str]], Sequence[Any], None] = None,
        allowed_hosts: Optional[Sequence[str]] = None,
    ) -> DashboardServer:
        """Serves the live dashboard (threads, latency, cost, anomalies and logs in a browser)
        from this process on ``host:port`` (port 0 picks a free one) until the returned
        :class:`DashboardServer` is closed or the instance shuts down; its ``url`` is the page.

        The same rules as the Rust agents' dashboard: without tokens it serves on a loopback
        address only; with ``token`` (sees every tenant) or ``tokens`` (a dict or pairs of
        ``token -> tenant``, ``None`` for every tenant) each API request needs
        ``Authorization: Bearer <token>``, a token scoped to a tenant sees that tenant's data
        only, and tokens are at least 16 characters. ``allowed_hosts`` are ``Host`` header
        values accepted besides the address itself (a name clients use to reach it). Raises
        :class:`ServeError` when the settings are refused or the address cannot be bound.
        """
        pairs, hosts = _server_access(host, token, tokens, allowed_hosts)
        return self._serve_dashboard(host, port, pairs, hosts)

    def serve_otlp(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        token: Optional[str] = None,
        tokens: Union[Mapping[str, Optional[str]], Sequence[Any], None] = None,
        allowed_hosts: Optional[Sequence[str]] = None,
        max_body_bytes: Optional[int] = None,
        queue_capacity: Optional[int] = None,
        grpc_port: Optional[int] = None,
        max_in_flight: Optional[int] = None,
    ) -> OtlpReceiver:
        """Receives OpenTelemetry (OTLP/HTTP: ``/v1/traces``, ``/v1/logs``, ``/v1/metrics``;
        protobuf or JSON; gzip) into this instance on ``host:port`` (port 0 picks a free one),
        so the agent's subprocesses and services report to it with any OpenTelemetry SDK's
        standard exporter (``OTEL_EXPORTER_OTLP_ENDPOINT`` = the returned receiver's
        ``endpoint``). What arrives goes through this instance's pipeline (redaction, sampling,
        models, the store); GenAI attributes of every convention land on the typed fields.

        The same rules as the dashboard: without tokens only on a loopback address; with
        ``token`` or ``tokens`` (``token -> tenant``, ``None`` for any) every request needs
        ``Authorization: Bearer <token>`` and a tenant token's data is that tenant's.
        ``max_body_bytes`` (1 KiB to 256 MiB, default 8 MiB) and ``queue_capacity`` (events
        waiting for the recorder, 1 to 10,000,000, default 65,536; a full queue answers 429)
        bound it, and ``max_in_flight`` (requests read at once, HTTP and gRPC together, 1 to
        4096, default 32; one more answers 429) bounds the bodies held at once to
        ``max_in_flight * max_body_bytes``. With ``grpc_port`` (0 picks a free one) it also serves OTLP/gRPC on that port
        of ``host`` (the receiver's ``grpc_endpoint``), with the same tokens (metadata
        ``authorization: Bearer <token>``), limits and queue. Runs until the receiver is closed
        or the instance shuts down (which first records what was acknowledged). Raises
        :class:`ServeError` when the settings are refused or an address cannot be bound."""
        pairs, hosts = _server_access(host, token, tokens, allowed_hosts)
        return self._serve_otlp(
            host,
            port,
            pairs,
            hosts,
            max_body_bytes,
            queue_capacity,
            grpc_port,
            max_in_flight,
        )

    def handler(self, level: int = logging.NOTSET) -> "MissionHandler":
        """A ``logging.Handler`` recording standard-library log records here."""
        return MissionHandler(self, level)

    def __enter__(self) -> "Control":
        return self

    def __exit__(self, *exc: Any) -> None:
        if not self.is_shut_down:
            self.shutdown()

    def __repr__(self) -> str:
        state = "shut down" if self.is_shut_down else "recording"
        return f"Control(service={self.service!r}, store={self.store_root!r}, {state})"


def _server_access(host: Any, token: Any, tokens: Any, allowed_hosts: Any) -> Tuple[Optional[list], Optional[list]]:
    """A server's ``host``, ``token``/``tokens`` and ``allowed_hosts`` checked: the
    ``(token, tenant or None)`` pairs (None when there are none) and the hosts list."""
    if not isinstance(host, str):
        raise TypeError(f"host must be a str, not {type(host).__name__}")
    pairs = []
    if token is not None:
        if not isinstance(token, str):
            raise TypeError(f"token must be a str, not {type(token).__name__}")
        pairs.append((token, None))
    if tokens is not None:
        items = tokens.items() if isinstance(tokens, Mapping) else tokens
        for item in items:
            if isinstance(item, str):
                item = (item, None)
            t, tenant = item
            if not isinstance(t, str) or not (tenant is None or isinstance(tenant, str)):
                raise TypeError("tokens must map str tokens to a str tenant or None")
            pairs.append((t, tenant))
    hosts = None
    if allowed_hosts is not None:
        if isinstance(allowed_hosts, str):
            raise TypeError("allowed_hosts must be a list of str, not a str")
        hosts = list(allowed_hosts)
    return pairs or None, hosts


_LEVELS = [
    (logging.ERROR, "error"),
    (logging.WARNING, "warn"),
    (logging.INFO, "info"),
    (logging.DEBUG, "debug"),
]


class MissionHandler(logging.Handler):
    """Sends ``logging`` records to Mission Control: inside a span (in this context) the record
    belongs to that span's thread; otherwise it is a log of the service. The logger's name,
    module and line travel as attributes."""

    def __init__(self, control: Control, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self.control = control

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level = next((name for threshold, name in _LEVELS if record.levelno >= threshold), "trace")
            message = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                message = f"{message}: {type(record.exc_info[1]).__name__}: {record.exc_info[1]}"
            fields = {"logger": record.name, "module": record.module, "line": record.lineno}
            span = _native.CURRENT_SPAN.get()
            if span is not None and not span.ended:
                span.log(level, message, **fields)
            elif not self.control.is_shut_down:
                self.control.log(level, message, **fields)
        except Exception:  # a logging handler must never raise into the application
            self.handleError(record)


def _shutdown_at_exit(ref: "weakref.ReferenceType[Control]") -> None:
    control = ref()
    if control is not None and not control.is_shut_down:
        try:
            control.shutdown()
        except MissionControlError:
            pass


def _tenants(capture: Union[Sequence[str], bool, None]) -> Optional[list]:
    if capture is None or capture is False:
        return None if capture is None else []
    if capture is True:
        return ["*"]
    if isinstance(capture, str):
        raise TypeError("capture_content must be a list of tenants or True, not a str")
    return list(capture)


def init(
    store: Union[str, os.PathLike, None] = None,
    service: Optional[str] = None,
    *,
    tenant: Optional[str] = None,
    use_store: Optional[bool] = None,
    otlp_endpoint: Optional[str] = None,
    otlp_protocol: Optional[str] = None,
    otlp_headers: Optional[Mapping[str, str]] = None,
    otlp_ca_file: Union[str, os.PathLike, None] = None,
    ring_capacity: Optional[int] = None,
    backpressure: Optional[str] = None,
    prices_file: Union[str, os.PathLike, None] = None,
    config_file: Union[str, os.PathLike, None] = None,
    models: Optional[bool] = None,
    directives: Optional[Sequence[Union[str, os.PathLike]]] = None,
    policy_file: Union[str, os.PathLike, None] = None,
    redaction_file: Union[str, os.PathLike, None] = None,
    log_level: Optional[str] = None,
    compliance: Optional[Sequence[str]] = None,
    redaction_key: Optional[str] = None,
    capture_content: Union[Sequence[str], bool, None] = None,
    otlp_traces: Optional[bool] = None,
    otlp_logs: Optional[bool] = None,
    otlp_metrics: Optional[bool] = None,
    otlp_spill_dir: Union[str, os.PathLike, None] = None,
    otlp_spill_max_bytes: Optional[int] = None,
    store_upload: Optional[str] = None,
    model_baseline: Union[str, os.PathLike, None] = None,
) -> Control:
    """Starts Mission Control in this process and returns the instance.

    Every argument is optional: unset ones come from ``MISSION_*`` environment variables, then
    ``config_file`` (TOML or JSON), then the defaults — a Parquet store in ``./mission-data``
    and nothing to run beside it. ``otlp_endpoint`` (with ``otlp_protocol`` ``"http"`` or
    ``"grpc"``) also exports spans over OTLP, ``https://`` included; ``otlp_headers`` are sent
    with every request (a hosted backend's API key) and ``otlp_ca_file`` is a PEM file of CA
    certificates trusted besides the system's (a collector behind a private CA).
    ``otlp_traces``, ``otlp_logs`` and ``otlp_metrics`` (default on, unless the standard
    ``OTEL_TRACES_EXPORTER`` / ``OTEL_LOGS_EXPORTER`` / ``OTEL_METRICS_EXPORTER`` is ``none``)
    switch each signal's export; a backend that takes only traces (Arize Phoenix) is used with
    ``otlp_logs=False, otlp_metrics=False``. A signal the backend refuses is counted in
    ``health()["otlp"]`` and never makes ``flush()`` fail; ``flush()`` does not wait on a failing
    backend (at most 5 s). ``otlp_spill_dir`` (or ``MISSION_OTLP_SPILL_DIR``) keeps span batches the
    backend does not take on disk, at most ``otlp_spill_max_bytes`` (default 256 MiB; 64 KiB to
    1 TiB; the oldest dropped and counted past it), and replays them in order when it returns:
    exactly once within the process, at least once across restarts on the same directory
    (counted in ``health()["otlp"]["traces"]``: ``spilled``, ``replayed``, ``spill_queued``...).
    Log records and metrics are not spilled. ``store_upload`` (or ``MISSION_STORE_UPLOAD``), e.g.
    ``"s3://bucket/prefix"``, uploads each finalized store file to object storage exactly once
    from a background thread (credentials and endpoint from the ``AWS_*`` environment), the store
    directory holding what is not up yet; shutdown gives the last files up to 10 s (the rest go
    up at the next start). ``backpressure`` is ``"drop_newest"`` (default:
    never block the agent; drops are counted) or ``"block:5ms"``. ``models`` (default on) runs
    anomaly detection with root-cause attribution and memory sampling off the agent's threads;
    anomalies are stored and queryable like any event (``kind="anomaly"``). ``directives`` are
    directive files (TOML/JSON) or ``"preset:<name>"``; ``policy_file`` decides
    ``control.permit(actor, action, resource)``; ``redaction_file`` redacts every event before
    it is stored, exported or streamed. ``log_level`` (``"trace"``, ``"debug"``, ``"info"``,
    ``"warn"`` or ``"error"``; default every level) is the least severe log record kept; a
    firing directive with ``set_log_level`` keeps more verbose records while it fires.
    ``compliance`` applies packs (``"soc2"``, ``"hipaa"``, ``"pci"`` or a pack file; ``"NAME@TENANT"``
    for one tenant): tighter redaction, shorter retention, access auditing; without a
    ``redaction_file`` they need ``redaction_key`` (or ``MISSION_REDACTION_KEY``).
    Prompt and completion content (``gen_ai.input.messages``, ``gen_ai.prompt.*``, keys ending in
    ``.content``...) is replaced by ``"[content omitted]"`` before anything is stored, exported
    or streamed, except for the tenants in ``capture_content`` (``True`` or ``["*"]``: every
    tenant; or ``MISSION_CAPTURE_CONTENT``). ``model_baseline`` (or ``MISSION_MODEL_BASELINE``)
    is a learned model baseline (``mission-ctl pack import`` writes ``models/baseline.json``):
    anomaly streams this agent has not learned yet start from its detectors instead of cold.

    A policy, redaction, directive, price or configuration file that is missing or malformed
    raises :class:`ConfigError` naming the file (and, for a malformed one, the line and field).

    Everything recorded is delivered at interpreter exit; after ``os.fork()`` the child gets an
    instance of its own (the parent's buffers are flushed first, so nothing is lost or doubled).
    """
    for arg, value in (("service", service), ("tenant", tenant), ("otlp_endpoint", otlp_endpoint),
                       ("otlp_protocol", otlp_protocol), ("backpressure", backpressure),
                       ("log_level", log_level), ("redaction_key", redaction_key),
                       ("store_upload", store_upload)):
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{arg} must be a str, not {type(value).__name__}")
    for arg, value in (("otlp_traces", otlp_traces), ("otlp_logs", otlp_logs), ("otlp_metrics", otlp_metrics)):
        if value is not None and not isinstance(value, bool):
            raise TypeError(f"{arg} must be a bool, not {type(value).__name__}")
    if otlp_spill_max_bytes is not None and (
        isinstance(otlp_spill_max_bytes, bool) or not isinstance(otlp_spill_max_bytes, int)
    ):
        raise TypeError(f"otlp_spill_max_bytes must be an int, not {type(otlp_spill_max_bytes).__name__}")
    if ring_capacity is not None and (isinstance(ring_capacity, bool) or not isinstance(ring_capacity, int)):
        raise TypeError(f"ring_capacity must be an int, not {type(ring_capacity).__name__}")
    if ring_capacity is not None and ring_capacity <= 0:
        raise ValueError(f"ring_capacity must be positive, not {ring_capacity}")
    control = Control(
        store=os.fspath(store) if store is not None else None,
        use_store=use_store,
        service=service,
        tenant=tenant,
        ring_capacity=ring_capacity,
        backpressure=backpressure,
        prices_file=os.fspath(prices_file) if prices_file is not None else None,
        config_file=os.fspath(config_file) if config_file is not None else None,
        otlp_endpoint=otlp_endpoint,
        otlp_protocol=otlp_protocol,
        otlp_headers=dict(otlp_headers) if otlp_headers is not None else None,
        otlp_ca_file=os.fspath(otlp_ca_file) if otlp_ca_file is not None else None,
        models=models,
        directives=[os.fspath(d) for d in directives] if directives is not None else None,
        policy_file=os.fspath(policy_file) if policy_file is not None else None,
        redaction_file=os.fspath(redaction_file) if redaction_file is not None else None,
        log_level=log_level,
        compliance=list(compliance) if compliance is not None else None,
        redaction_key=redaction_key,
        capture_content=_tenants(capture_content),
        otlp_traces=otlp_traces,
        otlp_logs=otlp_logs,
        otlp_metrics=otlp_metrics,
        otlp_spill_dir=os.fspath(otlp_spill_dir) if otlp_spill_dir is not None else None,
        otlp_spill_max_bytes=otlp_spill_max_bytes,
        store_upload=store_upload,
        model_baseline=os.fspath(model_baseline) if model_baseline is not None else None,
    )
    ref = weakref.ref(control)
    global _LAST_CONTROL
    _LAST_CONTROL = ref
    _instrument.set_default_control(control)
    atexit.register(_shutdown_at_exit, ref)
    if hasattr(os, "register_at_fork"):

        def before() -> None:
            c = ref()
            if c is not None:
                c._before_fork()

        def in_child() -> None:
            c = ref()
            if c is not None:
                c._after_fork_in_child()

        os.register_at_fork(before=before, after_in_child=in_child)
    return control


def instrument_openai(control: Optional[Control] = None, *, stream_usage: bool = True) -> None:
    """Records every call of the official ``openai`` client (``chat.completions.create`` and
    ``responses.create``, sync and async, streaming or not) as an LLM call: request and
    response model, input/cached/output/reasoning tokens, cost from the price table, finish
    reasons, time to first token, the tool calls the model asked for, errors with their type.
    A call inside a span open in this context is its child; outside any, a thread of its own of
    ``control`` (default: the last instance :func:`init` made). Content is collected only when
    the tenant captures it. Streaming Chat Completions without ``stream_options`` ask for usage
    and keep the extra usage chunk from the caller (``stream_usage=False``: never ask, for a
    compatible server that refuses ``stream_options``; such streams then have no tokens).
    Calling it again re-targets ``control``. Needs ``openai``
    (``pip install 'mission-control-observability[openai]'``)."""
    from . import _openai

    _openai.instrument(control, stream_usage)


def uninstrument_openai() -> None:
    """Restores the ``openai`` client's methods patched by :func:`instrument_openai`."""
    from . import _openai

    _openai.uninstrument()


def instrument_anthropic(control: Optional[Control] = None) -> None:
    """Records every call of the official ``anthropic`` client's ``messages.create`` (sync and
    async, ``stream=True`` included) as an LLM call, like :func:`instrument_openai`; tokens
    read from and written to Anthropic's prompt cache are priced at their own prices. Needs
    ``anthropic`` (``pip install 'mission-control-observability[anthropic]'``)."""
    from . import _anthropic

    _anthropic.instrument(control)


def uninstrument_anthropic() -> None:
    """Restores the ``anthropic`` client's methods patched by :func:`instrument_anthropic`."""
    from . import _anthropic

    _anthropic.uninstrument()
