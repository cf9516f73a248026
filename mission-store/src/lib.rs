//! Mission Control's storage.
#![doc(test(attr(deny(warnings))))]

mod encode;
mod error;
pub mod layout;
mod query;
pub mod schema;
mod sink;
mod store;
mod views;

pub use encode::encode;
pub use error::{Error, Result};
pub use query::{Query, QueryIter, QueryStats};
pub use sink::{ParquetSink, SinkCounters, StoreConfig};
pub use store::{OpenReport, Store, StoreFile};
pub use views::{GroupBy, OperationStat, SpanNode, ThreadSummary, ThreadView};
