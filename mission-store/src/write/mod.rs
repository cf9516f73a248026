//! The write side: the Parquet sink ([`sink`]) and its settings ([`config`]), events to Arrow
//! ([`encode`]), the write-ahead log and recovery ([`wal`], [`recover`]), retention
//! ([`retention`]), erasure ([`erasure`]), compaction ([`compact`]) and atomic replace ([`atomic`]).

pub mod atomic;
pub mod compact;
pub(crate) mod config;
pub(crate) mod encode;
pub(crate) mod erasure;
pub(crate) mod recover;
pub(crate) mod retention;
pub(crate) mod sink;
pub mod wal;
