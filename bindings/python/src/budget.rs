//! Budgets and stop reasons as Python sees them: a budget is a dict (`mission_control.Budget`
//! makes a checked one), a stop reason a dict whose `kind` says why.

use mission_sdk::threads::{Budget, Stop};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyString};

/// The fields a budget dict may have.
const FIELDS: &str = "turns, tokens, cost_usd, wall_time_s, context_tokens, warn_share, hard";

/// A budget from a dict (or a `mission_control.Budget`): `None` values are left out; a
/// `TypeError` or `ValueError` names the field that is wrong.
pub(crate) fn budget_of(value: &Bound<'_, PyAny>) -> PyResult<Budget> {
    let dict = value.cast::<PyDict>().map_err(|_| {
        let type_name = value.get_type().name().map(|n| n.to_string()).unwrap_or_default();
        PyTypeError::new_err(format!(
            "budget must be a dict or a mission_control.Budget, not {type_name}"
        ))
    })?;
    let mut budget = Budget::new();
    for (key, v) in dict.iter() {
        let key = key
            .cast::<PyString>()
            .map_err(|_| PyTypeError::new_err("budget field names must be str"))?
            .to_cow()?
            .into_owned();
        if v.is_none() {
            continue;
        }
        let type_error = |want: &str| -> PyResult<PyErr> {
            Ok(PyTypeError::new_err(format!(
                "budget {key} must be {want}, not {}",
                v.get_type().name()?
            )))
        };
        let is_bool = v.is_instance_of::<PyBool>();
        let count = || -> PyResult<u64> {
            if is_bool || !v.is_instance_of::<PyInt>() {
                return Err(type_error("an int")?);
            }
            let n: i128 = v.extract()?;
            u64::try_from(n).ok().filter(|n| *n >= 1).ok_or_else(|| {
                PyValueError::new_err(format!("budget {key} must be at least 1, not {n}"))
            })
        };
        let number = || -> PyResult<f64> {
            if is_bool || !(v.is_instance_of::<PyInt>() || v.is_instance_of::<PyFloat>()) {
                return Err(type_error("a number")?);
            }
            v.extract::<f64>()
        };
        match key.as_str() {
            "turns" => budget.turns = Some(count()?),
            "tokens" => budget.tokens = Some(count()?),
            "context_tokens" => budget.context_tokens = Some(count()?),
            "cost_usd" => budget.cost_usd = Some(number()?),
            "wall_time_s" => budget.wall_time_s = Some(number()?),
            "warn_share" => budget.warn_share = Some(number()?),
            "hard" => {
                if !is_bool {
                    return Err(type_error("a bool")?);
                }
                budget.hard = v.is_truthy()?;
            }
            other => {
                return Err(PyValueError::new_err(format!(
                    "unknown budget field {other:?}: expected one of {FIELDS}"
                )));
            }
        }
    }
    budget.validate().map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok(budget)
}

/// Checks a budget dict and returns it with only the limits it sets (and `hard`); what
/// `mission_control.Budget` is made of.
#[pyfunction]
pub(crate) fn _budget<'py>(
    py: Python<'py>,
    budget: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    crate::json::to_python(py, &budget_of(budget)?)
}

/// Why a thread should stop, as a dict: `kind` is `cancelled` (with `thread_id`, `by`,
/// `reason`), `paused` (`thread_id`) or `budget` (`owner_id`, `resource`, `used`, `limit`,
/// `hard`).
pub(crate) fn stop_dict<'py>(py: Python<'py>, stop: &Stop) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    match stop {
        Stop::Cancelled { thread_id, by, reason } => {
            d.set_item("kind", "cancelled")?;
            d.set_item("thread_id", thread_id.to_string())?;
            d.set_item("by", by)?;
            d.set_item("reason", reason)?;
        }
        Stop::Paused { thread_id } => {
            d.set_item("kind", "paused")?;
            d.set_item("thread_id", thread_id.to_string())?;
        }
        Stop::Budget { owner, resource, used, limit, hard } => {
            d.set_item("kind", "budget")?;
            d.set_item("owner_id", owner.to_string())?;
            d.set_item("resource", resource.as_str())?;
            d.set_item("used", used)?;
            d.set_item("limit", limit)?;
            d.set_item("hard", hard)?;
        }
    }
    Ok(d)
}
