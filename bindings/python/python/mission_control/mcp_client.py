"""An agent's own MCP tool calls, traced (MCP SEP-414).

``call_tool`` calls a tool through the official ``mcp`` package's client (``mcp.ClientSession``
or ``mcp.Client``: anything whose ``call_tool`` takes ``meta=``), records the call as a tool
span of the agent, and hands the server the span's W3C trace context in the request's
``params._meta.traceparent``. A server that continues it (Mission Control's own MCP server
does) records its work in the same trace, under the agent's span::

    from mission_control.mcp_client import call_tool

    with control.thread(agent="planner") as thread:
        result = await call_tool(session, "lookup_order", {"id": 42}, parent=thread)

The span is named after the tool and carries ``mcp.method.name = "tools/call"``,
``gen_ai.tool.name``, ``gen_ai.operation.name = "execute_tool"`` and, when ``session_id`` is
given (the ``Mcp-Session-Id`` of a streamable HTTP session), ``mcp.session.id`` as a digest
(``sha256:`` and 32 hex digits; a session id is a capability). A result with ``isError``
marks the span failed with the result's text; an exception (a JSON-RPC error, a transport
failure) marks it failed and propagates. Arguments and results are not recorded.
"""

from __future__ import annotations

import hashlib
from typing import Any, Mapping, Optional, Union

from . import _native

__all__ = ["call_tool", "session_digest"]

Parent = Union["_native.Thread", "_native.Span"]


def session_digest(session_id: str) -> str:
    """What a span records of an MCP session id: ``sha256:`` and the first 32 hex digits."""
    return "sha256:" + hashlib.sha256(session_id.encode("utf-8")).hexdigest()[:32]


def _error_text(result: Any) -> str:
    for block in getattr(result, "content", None) or []:
        text = getattr(block, "text", None)
        if isinstance(text, str) and text:
            return text
    return "the tool reported an error"


async def call_tool(
    session: Any,
    name: str,
    arguments: Optional[Mapping[str, Any]] = None,
    *,
    parent: Optional[Parent] = None,
    session_id: Optional[str] = None,
    meta: Optional[Mapping[str, Any]] = None,
    **kwargs: Any,
) -> Any:
    """``session.call_tool(name, arguments, meta=...)`` recorded as a tool span.

    ``parent`` is the thread or span the call belongs to; without it, the span open in this
    context (``mission_control.current_span()``). ``meta`` is merged into the request's
    ``_meta`` (its ``traceparent`` is the call's span). Other keyword arguments go to
    ``session.call_tool`` as they are. Returns what it returns.

    Raises ``ValueError`` when there is neither a ``parent`` nor an open span.
    """
    if parent is None:
        parent = _native.CURRENT_SPAN.get()
    if parent is None:
        raise ValueError(
            "call_tool needs the thread or span the call belongs to: pass parent=thread, or "
            "call it inside an open span"
        )
    span = parent.tool_call(name)
    with span:
        span.set_attribute("mcp.method.name", "tools/call")
        span.set_attribute("gen_ai.tool.name", name)
        span.set_attribute("gen_ai.operation.name", "execute_tool")
        if session_id:
            span.set_attribute("mcp.session.id", session_digest(session_id))
        request_meta = dict(meta or {})
        request_meta["traceparent"] = span.traceparent
        result = await session.call_tool(
            name, dict(arguments) if arguments is not None else None, meta=request_meta, **kwargs
        )
        if getattr(result, "is_error", False):
            span.set_error(_error_text(result))
        else:
            span.set_ok()
        return result
