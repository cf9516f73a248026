//! Python exceptions: every Rust error becomes a `MissionControlError` subclass.

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

create_exception!(
    mission_control,
    MissionControlError,
    PyException,
    "Base class of every error Mission Control raises."
);
create_exception!(
    mission_control,
    ConfigError,
    MissionControlError,
    "A setting (argument, MISSION_* variable or file) is invalid."
);
create_exception!(
    mission_control,
    StoreError,
    MissionControlError,
    "The store could not be created, written or read."
);
create_exception!(
    mission_control,
    SqlError,
    MissionControlError,
    "A SQL query was invalid, not read-only, ran past its time limit or failed (`Control.sql`)."
);
create_exception!(
    mission_control,
    ShutdownError,
    MissionControlError,
    "The instance was shut down; create a new one with mission_control.init()."
);
create_exception!(
    mission_control,
    FlushError,
    MissionControlError,
    "A flush did not complete in time, or a sink failed."
);
create_exception!(
    mission_control,
    ServeError,
    MissionControlError,
    "A server (MCP over HTTP) could not start, or its settings were refused."
);
create_exception!(
    mission_control,
    BudgetExceeded,
    MissionControlError,
    "A hard budget of the thread (or of an ancestor) is used up: `llm_call`/`tool_call` refused \
     the call. Its attributes: `thread_id`, `owner_id` (whose budget), `resource`, `used`, `limit`."
);
create_exception!(
    mission_control,
    ThreadStopped,
    MissionControlError,
    "The thread (or an ancestor) was cancelled or is paused: `llm_call`/`tool_call` refused the \
     call. Its attributes: `thread_id`, `reason`."
);
create_exception!(
    mission_control,
    InternalError,
    MissionControlError,
    "A bug in Mission Control, caught before it could crash the interpreter."
);

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("MissionControlError", py.get_type::<MissionControlError>())?;
    m.add("ConfigError", py.get_type::<ConfigError>())?;
    m.add("StoreError", py.get_type::<StoreError>())?;
    m.add("SqlError", py.get_type::<SqlError>())?;
    m.add("ShutdownError", py.get_type::<ShutdownError>())?;
    m.add("FlushError", py.get_type::<FlushError>())?;
    m.add("ServeError", py.get_type::<ServeError>())?;
    m.add("BudgetExceeded", py.get_type::<BudgetExceeded>())?;
    m.add("ThreadStopped", py.get_type::<ThreadStopped>())?;
    m.add("InternalError", py.get_type::<InternalError>())?;
    Ok(())
}

/// The Python exception for an SDK error.
pub(crate) fn sdk(e: mission_sdk::Error) -> PyErr {
    match e {
        mission_sdk::Error::Config { .. }
        | mission_sdk::Error::Parse { .. }
        | mission_sdk::Error::Directive(_)
        | mission_sdk::Error::Export(_) => ConfigError::new_err(e.to_string()),
        mission_sdk::Error::Io { .. } | mission_sdk::Error::Store(_) => {
            StoreError::new_err(e.to_string())
        }
        mission_sdk::Error::Flush(_) => FlushError::new_err(e.to_string()),
        mission_sdk::Error::Serve { .. } | mission_sdk::Error::Bind { .. } => {
            ServeError::new_err(e.to_string())
        }
        mission_sdk::Error::BudgetExceeded {
            ref thread_id,
            ref owner_id,
            resource,
            used,
            limit,
        } => {
            let err = BudgetExceeded::new_err(e.to_string());
            with_attributes(err, |v| {
                v.setattr("thread_id", thread_id)?;
                v.setattr("owner_id", owner_id)?;
                v.setattr("resource", resource)?;
                v.setattr("used", used)?;
                v.setattr("limit", limit)
            })
        }
        mission_sdk::Error::ThreadStopped { ref thread_id, ref reason } => {
            let err = ThreadStopped::new_err(e.to_string());
            with_attributes(err, |v| {
                v.setattr("thread_id", thread_id)?;
                v.setattr("reason", reason)
            })
        }
        other => MissionControlError::new_err(other.to_string()),
    }
}

/// `err` with attributes `set` on its value (left without them if setting fails).
fn with_attributes(
    err: PyErr,
    set: impl FnOnce(&Bound<'_, pyo3::exceptions::PyBaseException>) -> PyResult<()>,
) -> PyErr {
    Python::attach(|py| {
        let _ = set(err.value(py));
    });
    err
}

/// The Python exception for a store error.
pub(crate) fn store(e: mission_store::Error) -> PyErr {
    match e {
        mission_store::Error::Invalid { .. } => {
            pyo3::exceptions::PyValueError::new_err(e.to_string())
        }
        other => StoreError::new_err(other.to_string()),
    }
}

/// The error for using an instance after `shutdown()`.
pub(crate) fn shut_down() -> PyErr {
    ShutdownError::new_err(
        "this Mission Control instance was shut down; create a new one with mission_control.init()",
    )
}

/// The Python exception for a SQL error: `ValueError`-like refusals and failures alike are
/// `SqlError` (its message names what was wrong).
pub(crate) fn sql(e: mission_store::sql::SqlError) -> PyErr {
    SqlError::new_err(e.to_string())
}
