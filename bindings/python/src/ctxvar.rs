//! The current span's `contextvars.ContextVar`, read and written through CPython's C API.
//!
//! Every span's `__enter__`/`__exit__` sets and resets the variable and every child span reads
//! it: through Python method calls (`var.set(...)`) that is an attribute lookup and a call each,
//! a third of a `with` span's cost. `PyContextVar_Get/Set/Reset` are exported by every CPython
//! since 3.7 (the ones this wheel supports); this is the crate's only `unsafe` code.
#![allow(unsafe_code)]

use std::os::raw::c_int;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyDict;

// Documented in CPython's C API (Context Variables Objects) since 3.7, but outside the limited
// API, so pyo3-ffi leaves them out of abi3 builds; the interpreter loading this module exports
// them.
unsafe extern "C" {
    fn PyContextVar_Get(
        var: *mut ffi::PyObject,
        default_value: *mut ffi::PyObject,
        value: *mut *mut ffi::PyObject,
    ) -> c_int;
    fn PyContextVar_Set(var: *mut ffi::PyObject, value: *mut ffi::PyObject) -> *mut ffi::PyObject;
    fn PyContextVar_Reset(var: *mut ffi::PyObject, token: *mut ffi::PyObject) -> c_int;
}

static CURRENT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// `contextvars.ContextVar("mission_control_current_span", default=None)`, made once.
pub(crate) fn var(py: Python<'_>) -> PyResult<&Bound<'_, PyAny>> {
    CURRENT
        .get_or_try_init(py, || {
            let kwargs = PyDict::new(py);
            kwargs.set_item("default", py.None())?;
            Ok::<_, PyErr>(
                py.import("contextvars")?
                    .getattr("ContextVar")?
                    .call(("mission_control_current_span",), Some(&kwargs))?
                    .unbind(),
            )
        })
        .map(|v| v.bind(py))
}

/// The variable's value in the current context (None when unset).
pub(crate) fn get(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    let var = var(py)?;
    let mut value: *mut ffi::PyObject = std::ptr::null_mut();
    // SAFETY: `var` is a live ContextVar (made above, kept alive by CURRENT); a null default
    // asks for the variable's own default; on success `value` is a new (owned) reference,
    // which `from_owned_ptr` takes over.
    let status = unsafe { PyContextVar_Get(var.as_ptr(), std::ptr::null_mut(), &mut value) };
    if status < 0 || value.is_null() {
        return Err(PyErr::fetch(py));
    }
    // SAFETY: `value` is a non-null owned reference (checked above).
    Ok(unsafe { Bound::from_owned_ptr(py, value) })
}

/// Sets the variable to `value` in the current context; returns the token that undoes it.
pub(crate) fn set<'py>(py: Python<'py>, value: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let var = var(py)?;
    // SAFETY: both pointers are live objects for the call; the result is a new reference or
    // null with an exception set, which `from_owned_ptr_or_err` handles.
    unsafe { Bound::from_owned_ptr_or_err(py, PyContextVar_Set(var.as_ptr(), value.as_ptr())) }
}

/// Restores the value `token` replaced.
pub(crate) fn reset(py: Python<'_>, token: &Bound<'_, PyAny>) -> PyResult<()> {
    let var = var(py)?;
    // SAFETY: both pointers are live objects for the call; -1 means an exception is set.
    let status = unsafe { PyContextVar_Reset(var.as_ptr(), token.as_ptr()) };
    if status < 0 { Err(PyErr::fetch(py)) } else { Ok(()) }
}
