"""What the framework integrations share: ids in W3C form, times in ns, usage read from
objects or dicts, and agents tracked for open spans (bounded)."""

from __future__ import annotations

import datetime as _dt
import hashlib
import time
from typing import Any, Dict, Iterable, Optional

# Open spans remembered at once (their agent and start); past it, a span is still recorded but
# does not pass its agent on, and is counted.
MAX_OPEN_SPANS = 65536


def w3c_id(value: Any, hex_digits: int) -> str:
    """A framework's id as ``hex_digits`` lowercase hex digits: its hex part when it has
    enough (``trace_<32 hex>``, ``span_<24 hex>``, a UUID), else a hash of it."""
    text = str(value)
    tail = text.rsplit("_", 1)[-1].replace("-", "").lower()
    if len(tail) >= hex_digits and all(c in "0123456789abcdef" for c in tail[:hex_digits]):
        digits = tail[:hex_digits]
        if digits.strip("0"):
            return digits
    return hashlib.blake2b(text.encode(), digest_size=hex_digits // 2).hexdigest()


def iso_ns(value: Optional[str], default: int) -> int:
    """An ISO 8601 time as ns since the Unix epoch (``default`` when absent or unreadable)."""
    if not value:
        return default
    try:
        moment = _dt.datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return default
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.timezone.utc)
    delta = moment - _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
    return (delta.days * 86400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def now_ns() -> int:
    return time.time_ns()


def field(obj: Any, *path: str) -> Any:
    """``obj.a.b`` or ``obj["a"]["b"]``, None where missing."""
    for name in path:
        if obj is None:
            return None
        obj = obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
    return obj


def usage_attributes(usage: Any) -> Dict[str, int]:
    """OpenAI usage (Responses or Chat Completions names, object or dict) as GenAI attributes;
    read by the one convention table (mission_core::semconv)."""
    out: Dict[str, int] = {}
    pairs: Iterable = (
        ("gen_ai.usage.input_tokens", ("input_tokens",), ("prompt_tokens",)),
        ("gen_ai.usage.output_tokens", ("output_tokens",), ("completion_tokens",)),
        ("gen_ai.usage.cache_read.input_tokens", ("input_tokens_details", "cached_tokens"),
         ("prompt_tokens_details", "cached_tokens")),
        ("gen_ai.usage.reasoning.output_tokens", ("output_tokens_details", "reasoning_tokens"),
         ("completion_tokens_details", "reasoning_tokens")),
    )
    for key, *paths in pairs:
        for path in paths:
            value = field(usage, *path)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                out[key] = value
                break
    return out


class OpenSpans:
    """The agent of each open span, so children inherit it; bounded, overflow counted."""

    def __init__(self, capacity: int = MAX_OPEN_SPANS) -> None:
        self.capacity = capacity
        self.agents: Dict[str, Optional[str]] = {}
        self.untracked = 0

    def open(self, span_id: str, agent: Optional[str]) -> None:
        if len(self.agents) < self.capacity:
            self.agents[span_id] = agent
        else:
            self.untracked += 1

    def agent(self, span_id: Optional[str]) -> Optional[str]:
        return self.agents.get(span_id) if span_id is not None else None

    def close(self, span_id: str) -> Optional[str]:
        return self.agents.pop(span_id, None)
