//! Python values from Rust's serialisable ones (through JSON: dicts, lists, numbers, strings).

use pyo3::prelude::*;

use crate::errors;

/// `value` as the Python object `json.loads` makes of its JSON.
pub(crate) fn to_python<'py>(
    py: Python<'py>,
    value: &impl serde::Serialize,
) -> PyResult<Bound<'py, PyAny>> {
    let text =
        serde_json::to_string(value).map_err(|e| errors::InternalError::new_err(e.to_string()))?;
    py.import("json")?.call_method1("loads", (text,))
}
