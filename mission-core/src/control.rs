//! The messages handles send to the pipeline thread.

use std::sync::{Arc, mpsc};

use crate::health::{FlushError, ShutdownReport, SinkStatus};
use crate::sink::Sink;

/// Messages from handles to the pipeline thread.
pub(crate) enum Control {
    AddSink(Box<dyn Sink>, Arc<SinkStatus>),
    Flush(mpsc::SyncSender<Result<(), FlushError>>),
    Shutdown(mpsc::SyncSender<ShutdownReport>),
}
