//! The read side: listing a store ([`store`]), the one decoder and schema check ([`decode`]),
//! queries pruned by path and statistics ([`query`]), following a growing store ([`follow`])
//! and the views built on queries ([`views`], [`scores`]).

pub mod decode;
pub mod follow;
pub(crate) mod query;
pub(crate) mod scores;
pub(crate) mod source;
pub(crate) mod store;
pub(crate) mod views;
