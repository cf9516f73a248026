//! Scores and feedback from Python: `thread.score(...)`, `span.score(...)` and
//! `control.score_thread(...)` all build one score event here.

use mission_core::{EventBody, Score, ScoreSource, SpanId, ThreadContext};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::errors;
use crate::instance::Core;

/// What a Python caller passed for one score.
pub(crate) struct ScoreArgs<'a> {
    pub(crate) name: &'a str,
    pub(crate) value: f64,
    pub(crate) label: Option<&'a str>,
    pub(crate) comment: Option<&'a str>,
    pub(crate) source: &'a str,
}

/// Records the score `args` on `span_id` (none: the whole thread) of `ctx`; returns whether
/// the event was accepted.
///
/// # Errors
/// `ValueError` for a value that is not finite, an empty name or an unknown source;
/// `ShutdownError` after shutdown.
pub(crate) fn record(
    core: &Core,
    ctx: &ThreadContext,
    span_id: SpanId,
    args: &ScoreArgs<'_>,
) -> PyResult<bool> {
    if core.is_closed() {
        return Err(errors::shut_down());
    }
    let invalid = |e: mission_core::InvalidScore| PyValueError::new_err(e.to_string());
    let name = mission_core::score_name(args.name).map_err(invalid)?;
    let source: ScoreSource = args.source.parse().map_err(invalid)?;
    let mut score = Score::new(args.value).map_err(invalid)?.with_source(source);
    if let Some(label) = args.label {
        score = score.with_label(label);
    }
    if let Some(comment) = args.comment {
        score = score.with_comment(comment);
    }
    Ok(core.recorder.record(ctx.event(name, span_id, EventBody::Score(score))))
}
