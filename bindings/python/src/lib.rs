//! `mission_control._native`: the Rust core of the `mission_control` Python package.
//!
//! Python agents get the same recorder, store, statistics, OTLP export and MCP server as Rust
//! hosts. The Pythonic surface (`mc.init`, the `@control.tool` decorator, the logging and
//! OpenTelemetry bridges, `atexit` and fork handling) lives in `python/mission_control/`; this
//! crate holds what must be fast or must be Rust:
//!
//! | Python | here |
//! |---|---|
//! | `Control` | one embedded [`mission_sdk::MissionControl`], rebuilt in a forked child |
//! | `Thread`, `Span` | guards that time an operation and record one event when they end |
//! | `QueryResult` | query results as an Arrow C stream (`__arrow_c_stream__`), read without a copy |
//! | `Subscription` | `control.subscribe(...)`: one bounded hub subscription, read without the interpreter lock; `async for` woken by a small thread of its own |
//! | Python sinks | `control.add_sink(...)`: a bounded queue the pipeline fills (never waits), a worker thread that calls Python with batches; failures counted |
//! | `DashboardServer` | `control.serve_dashboard(...)`: the live dashboard served from the process |
//! | directive callbacks | Python functions a directive calls, from a thread of their own (never the recording path or the pipeline thread); exceptions caught and counted |
//!
//! Spans are plain Rust values behind a Python object: starting one reads the clock and makes
//! an id; ending it moves one 128-byte event into the calling thread's lock-free buffer. The
//! interpreter lock is released around everything that waits (flush, query, shutdown, start).
//! The current span lives in a `contextvars.ContextVar`, so parents are right across `await`,
//! `asyncio.gather` and `contextvars.copy_context()`.
//!
//! ```python
//! import mission_control as mc
//! control = mc.init(store="./mission-data", service="support-bot")
//! with control.thread(agent="support-bot", user_id="u-42") as thread:
//!     with thread.llm_call(model="gpt-4o-mini", provider="openai") as call:
//!         call.record_usage(input_tokens=812, output_tokens=64)
//! table = control.query(thread_id=thread.id)   # a pyarrow.Table
//! ```

mod bridge;
mod budget;
mod callbacks;
mod control;
mod ctxvar;
mod dashboard;
mod errors;
mod instance;
mod json;
mod live;
mod query;
mod receiver;
mod score;
mod servers;
mod sink;
mod span;

use pyo3::prelude::*;

/// The native module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<control::Control>()?;
    m.add_class::<span::Thread>()?;
    m.add_class::<span::Span>()?;
    m.add_class::<query::QueryResult>()?;
    m.add_class::<live::Subscription>()?;
    m.add_class::<sink::SinkHandle>()?;
    m.add_class::<dashboard::Dashboard>()?;
    m.add_class::<receiver::OtlpReceiver>()?;
    errors::register(m)?;
    m.add("CURRENT_SPAN", ctxvar::var(py)?)?;
    m.add_function(wrap_pyfunction!(control::_panic_for_test, m)?)?;
    m.add_function(wrap_pyfunction!(bridge::_semconv_agent_keys, m)?)?;
    m.add_function(wrap_pyfunction!(budget::_budget, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
