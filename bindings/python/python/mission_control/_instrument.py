"""What ``instrument_openai()`` and ``instrument_anthropic()`` share: where an instrumented
call's span goes, ending it once, observing a stream without changing what the caller reads,
and patching methods so that they can be restored.

A call inside a span open in this context (``with thread.step(...)``, ``@control.tool``...) is
an LLM call child of that span; outside any, it is a thread of its own of the instance given to
``instrument_*()`` or, by default, of the last one ``init()`` made. Recording never fails the
caller: an error of ours is logged at debug level (logger ``mission_control.instrument``) and
the client's answer or exception reaches the caller unchanged.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import weakref
from typing import Any, Callable, Dict, Iterable, Optional, Tuple

from . import _native

_log = logging.getLogger("mission_control.instrument")

#: Longest content attribute kept (characters) when the tenant captures content.
MAX_CONTENT_CHARS = 64 * 1024

_default_control: Optional["weakref.ReferenceType[Any]"] = None

# (class, method name) -> the original function, for every method patched.
_originals: Dict[Tuple[type, str], Callable[..., Any]] = {}


def set_default_control(control: Any) -> None:
    """Makes ``control`` the instance that calls outside any span are recorded by."""
    global _default_control
    _default_control = weakref.ref(control)


def _control(control: Any) -> Any:
    if control is not None:
        return control
    return _default_control() if _default_control is not None else None


def safely(fn: Callable[..., Any], *args: Any) -> Any:
    """Calls ``fn``; an exception (a bug of ours, an unexpected answer) is logged, never raised."""
    try:
        return fn(*args)
    except Exception:  # recording never fails the host
        _log.debug("recording an instrumented call failed", exc_info=True)
        return None


def content(value: Any) -> str:
    """``value`` as JSON (pydantic models by ``model_dump``), cut at ``MAX_CONTENT_CHARS``."""

    def plain(v: Any) -> Any:
        dump = getattr(v, "model_dump", None)
        return dump(exclude_none=True) if callable(dump) else str(v)

    text = value if isinstance(value, str) else json.dumps(value, default=plain, ensure_ascii=False)
    return text if len(text) <= MAX_CONTENT_CHARS else text[:MAX_CONTENT_CHARS] + "…[truncated]"


# The native context variable's getter, looked up once (every call reads it).
_current_span = _native.CURRENT_SPAN.get


class Call:
    """One instrumented LLM call: its span and, outside any span, the thread made for it."""

    __slots__ = ("span", "thread", "capture", "_first_token")

    def __init__(self, control: Any, model: Any, provider: str) -> None:
        self.thread: Any = None
        self._first_token = False
        if control is None and _default_control is not None:
            control = _default_control()
        parent = _current_span()
        if parent is None or parent.ended:
            if control is None or control.is_shut_down:
                self.span: Any = None
                self.capture = False
                return
            self.thread = parent = control.thread()
        self.span = parent.llm_call(model if isinstance(model, str) else "", provider)
        self.capture = control is not None and control.captures_content

    def set(self, key: str, value: Any) -> None:
        """Sets an attribute when ``value`` is a str, int, float or bool (else nothing)."""
        if isinstance(value, (str, int, float)) and self.span is not None:
            self.span.set_attribute(key, value)

    def first_token(self) -> None:
        """Marks the first streamed token (once)."""
        if not self._first_token:
            self._first_token = True
            self.span.first_token()

    def fail(self, exc: BaseException) -> None:
        """Ends the call (and its own thread) failed with ``exc``'s type and message."""
        status = getattr(exc, "status_code", None)
        if isinstance(status, int):
            self.set("http.response.status_code", status)
        if self.span is not None and not self.span.ended:
            safely(self.span.__exit__, type(exc), exc, None)
        if self.thread is not None:
            safely(self.thread.__exit__, type(exc), exc, None)
            self.thread = None

    def end(self) -> None:
        """Ends the call and its own thread, if not ended yet."""
        if self.span is not None and not self.span.ended:
            safely(self.span.__exit__, None, None, None)
        self.end_thread()

    def end_thread(self) -> None:
        """Ends the thread made for the call, if any (its span has ended)."""
        if self.thread is not None:
            safely(self.thread.end)
            self.thread = None


class StreamObserver:
    """What a provider's stream handler does with each item and at the end. ``item`` returns
    ``True`` when the item carries the first generated token, ``HIDE`` for an item the caller
    did not ask for (OpenAI's usage-only chunk when we asked for usage)."""

    HIDE = "hide"

    def item(self, item: Any) -> Any:  # pragma: no cover - overridden
        return None

    def finish(self, call: Call) -> None:  # pragma: no cover - overridden
        pass


def _observe(call: Call, observer: StreamObserver, item: Any) -> bool:
    verdict = safely(observer.item, item)
    if verdict is True:
        safely(call.first_token)
    return verdict != StreamObserver.HIDE


def _finish(call: Call, observer: StreamObserver, error: Optional[BaseException]) -> None:
    safely(observer.finish, call)
    if error is not None:
        call.fail(error)
    else:
        call.end()


def observe_stream(stream: Any, call: Call, observer: StreamObserver) -> Any:
    """Observes an OpenAI or Anthropic ``Stream``/``AsyncStream`` (sync or async) in place: the
    caller gets the same object, and the call ends when the stream is read to its end, fails,
    or is closed. A result that is not such a stream (a raw response) ends the call now."""
    inner = getattr(stream, "_iterator", None)
    if inner is None:
        call.end()
        return stream
    if hasattr(inner, "__anext__"):

        async def observed_async() -> Any:
            error: Optional[BaseException] = None
            try:
                async for item in inner:
                    if _observe(call, observer, item):
                        yield item
            except GeneratorExit:
                raise
            except BaseException as e:
                error = e
                raise
            finally:
                _finish(call, observer, error)

        stream._iterator = observed_async()
        return stream

    def observed() -> Any:
        error: Optional[BaseException] = None
        try:
            for item in inner:
                if _observe(call, observer, item):
                    yield item
        except GeneratorExit:
            close = getattr(inner, "close", None)
            if close is not None:
                close()
            raise
        except BaseException as e:
            error = e
            raise
        finally:
            _finish(call, observer, error)

    stream._iterator = observed()
    return stream


class Hooks:
    """What instrumenting one API method needs: the provider, ``start`` (request attributes;
    may change the keyword arguments, returns the stream observer for a streaming call) and
    ``answer`` (records a complete answer; returns True when it also ended the call's span)."""

    provider: str = ""

    def start(self, call: Call, kwargs: Dict[str, Any]) -> Optional[StreamObserver]:  # pragma: no cover
        return None

    def answer(self, call: Call, result: Any) -> Any:  # pragma: no cover
        pass


def _begin(control: Any, hooks: Hooks, kwargs: Dict[str, Any]) -> Tuple[Optional[Call], Optional[StreamObserver]]:
    try:
        call = Call(control, kwargs.get("model"), hooks.provider)
    except Exception:  # recording never fails the host
        _log.debug("recording an instrumented call failed", exc_info=True)
        return None, None
    if call.span is None:
        return None, None
    try:
        return call, hooks.start(call, kwargs)
    except Exception:
        _log.debug("recording an instrumented call failed", exc_info=True)
        return call, None


def answer_of(result: Any) -> Any:
    """What a call answered: ``result`` itself, or for ``with_raw_response`` the object the raw
    response's ``parse()`` makes. The clients cache that object, so the caller's own ``parse()``
    gets the very one observed (for an OpenAI stream: the same ``Stream``, read through the
    observer). Parsed here: openai's ``LegacyAPIResponse``, and anthropic's sync
    ``APIResponse`` once its body is read (``with_streaming_response`` has not read it: parsing
    would take the body from the caller). A raw response left alone, or one that cannot be
    parsed, ends the call without usage."""
    kind = type(result).__name__
    http = getattr(result, "http_response", None)
    if http is None or not (kind == "LegacyAPIResponse"
                            or (kind == "APIResponse" and getattr(http, "_content", None) is not None)):
        return result
    try:
        return result.parse()
    except Exception:
        _log.debug("parsing a raw response for its usage failed", exc_info=True)
        return result


def _end(call: Call, hooks: Hooks, observer: Optional[StreamObserver], result: Any) -> Any:
    answer = answer_of(result)
    if observer is not None:
        observe_stream(answer, call, observer)
        return result
    try:
        ended = hooks.answer(call, answer) is True
    except Exception:
        _log.debug("recording an instrumented call failed", exc_info=True)
        ended = False
    if ended:
        call.end_thread()
    else:
        call.end()
    return result


def wrap(original: Callable[..., Any], hooks: Hooks, control: Any, is_async: bool) -> Callable[..., Any]:
    """``original`` (a client's ``create``, sync or async) recording each call as an LLM call."""
    if is_async:

        @functools.wraps(original)
        async def async_create(self: Any, *args: Any, **kwargs: Any) -> Any:
            call, observer = _begin(control, hooks, kwargs)
            if call is None:
                return await original(self, *args, **kwargs)
            try:
                result = await original(self, *args, **kwargs)
            except BaseException as e:
                call.fail(e)
                raise
            return _end(call, hooks, observer, result)

        return async_create

    # The synchronous path, inlined (it runs around every call): bound hooks, no helper frames.
    start, answer, provider = hooks.start, hooks.answer, hooks.provider

    @functools.wraps(original)
    def create(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            call: Optional[Call] = Call(control, kwargs.get("model"), provider)
        except Exception:  # recording never fails the host
            _log.debug("recording an instrumented call failed", exc_info=True)
            call = None
        if call is None or call.span is None:
            return original(self, *args, **kwargs)
        try:
            observer = start(call, kwargs)
        except Exception:
            _log.debug("recording an instrumented call failed", exc_info=True)
            observer = None
        try:
            result = original(self, *args, **kwargs)
        except BaseException as e:
            call.fail(e)
            raise
        answered = answer_of(result)
        if observer is not None:
            observe_stream(answered, call, observer)
            return result
        try:
            ended = answer(call, answered) is True
        except Exception:
            _log.debug("recording an instrumented call failed", exc_info=True)
            ended = False
        if not ended:
            call.end()
        elif call.thread is not None:
            call.end_thread()
        return result

    return create


def patch(targets: Iterable[Tuple[type, str, Hooks]], control: Any) -> None:
    """Patches each ``(class, method, hooks)``; a method patched already is patched again for
    ``control`` (the last call wins), never wrapped twice."""
    for owner, name, hooks in targets:
        original = _originals.get((owner, name), owner.__dict__[name])
        _originals[(owner, name)] = original
        # The clients' async methods are plain functions returning a coroutine (a decorator
        # checks required arguments first): the class says which they are.
        is_async = inspect.iscoroutinefunction(original) or owner.__name__.startswith("Async")
        setattr(owner, name, wrap(original, hooks, control, is_async))


def unpatch(owners: Iterable[type]) -> None:
    """Restores every patched method of ``owners``."""
    for owner in owners:
        for key in [k for k in _originals if k[0] is owner]:
            setattr(owner, key[1], _originals.pop(key))


def attr(obj: Any, *path: str) -> Any:
    """``obj.a.b...`` (or ``obj["a"]["b"]``), None where a step is missing."""
    for name in path:
        if obj is None:
            return None
        obj = obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
    return obj


def tokens(value: Any) -> int:
    """A token count from an answer: a non-negative int, else 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0
