//! The messages handles send to the pipeline thread.

use std::sync::{Arc, mpsc};

use crate::health::{FlushError, ShutdownReport, SinkStatus};
use crate::sink::Sink;

/// Messages from handles to the pipeline thread.
pub(crate) enum Control {
    AddSink(Box<dyn Sink>, Arc<SinkStatus>),
    /// Deliver everything, then flush every sink (`Finish::Flush`) or only what reads need
    /// (`Finish::Reads`).
    Flush(mpsc::SyncSender<Result<(), FlushError>>, Finish),
    Shutdown(mpsc::SyncSender<ShutdownReport>),
}

/// What a sink is asked to do once every earlier event reached it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Finish {
    /// [`Sink::flush`].
    Flush,
    /// [`Sink::flush_for_reads`].
    Reads,
    /// [`Sink::shutdown`].
    Shutdown,
}
