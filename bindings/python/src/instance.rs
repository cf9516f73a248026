//! `Core`: what spans, threads, sinks and servers need of one instance, shared by all of them
//! (the Python `Control` holds it; a forked child replaces it).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use mission_core::{Level, Recorder, Symbol};
use mission_sdk::{McpHttpServer, MissionControl, ModelPrice, PriceTable};
use pyo3::prelude::*;

use crate::callbacks::Callbacks;
use crate::errors;

/// What spans and threads need of an instance, shared by all of them.
pub(crate) struct Core {
    pub(crate) id: u64,
    pub(crate) recorder: Recorder,
    pub(crate) prices: PriceTable,
    pub(crate) tenant: Symbol,
    pub(crate) service: Symbol,
    pub(crate) control: Mutex<Option<MissionControl>>,
    pub(crate) mcp: Mutex<Option<McpHttpServer>>,
    pub(crate) closed: AtomicBool,
    /// Set in a forked child for the parent's instance: its threads do not exist here, so it
    /// is left alone (never joined or flushed) when dropped.
    pub(crate) abandoned: AtomicBool,
    pub(crate) store_root: Option<PathBuf>,
    pub(crate) models: Option<mission_sdk::ModelStatsReader>,
    /// Whether this instance's tenant keeps prompt and completion content.
    pub(crate) captures_content: bool,
    /// The configured least severe log level, and the directives that may lower it.
    pub(crate) log_level: Level,
    pub(crate) directives: mission_sdk::Directives,
    /// Python functions directives call, and the thread that calls them.
    pub(crate) callbacks: Callbacks,
    /// Python sinks (`add_sink`), each with a worker thread.
    pub(crate) sinks: crate::sink::Sinks,
    /// OTLP receivers serving into this instance (`serve_otlp`).
    pub(crate) receivers: Mutex<Vec<crate::receiver::Slot>>,
    /// Dashboards served from this instance (`serve_dashboard`).
    pub(crate) dashboards: Mutex<Vec<crate::dashboard::Slot>>,
    /// The live threads of the instance (its `MissionControl`'s): trees, states, budgets.
    pub(crate) threads: Arc<mission_sdk::threads::ThreadRegistry>,
    /// Budgets the configuration file gives new threads (`[budget]`), by agent.
    pub(crate) budgets: mission_sdk::BudgetSettings,
    /// The compliance packs' budget, which narrows every thread's (a budget given in code too).
    pub(crate) pack_budget: Option<mission_sdk::Budget>,
}

/// Each instance's number, for the per-thread price cache.
static NEXT_CORE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// (instance, provider, model) and the price that matched.
type PriceEntry = (u64, Symbol, Symbol, Option<ModelPrice>);

thread_local! {
    /// The last few models priced on this thread: the table is searched by string once per
    /// model, not once per call.
    static PRICES: std::cell::RefCell<Vec<PriceEntry>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Models remembered per thread.
const PRICE_CACHE: usize = 16;

impl Core {
    /// The cost of `usage` (of whose input tokens `cache_creation` were written to the
    /// provider's cache) by this instance's price table; `None` when no entry prices it.
    pub(crate) fn cost(&self, usage: &mission_core::LlmUsage, cache_creation: u32) -> Option<f64> {
        PRICES.with(|cache| {
            let mut cache = cache.borrow_mut();
            let key = (self.id, usage.provider, usage.model);
            if let Some((.., price)) = cache.iter().find(|(i, p, m, _)| (*i, *p, *m) == key) {
                return price.as_ref().map(|p| p.cost_with_cache_creation(usage, cache_creation));
            }
            let price = self.prices.find(usage.provider.as_str(), usage.model.as_str()).cloned();
            let cost = price.as_ref().map(|p| p.cost_with_cache_creation(usage, cache_creation));
            if cache.len() >= PRICE_CACHE {
                cache.remove(0);
            }
            cache.push((key.0, key.1, key.2, price));
            cost
        })
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Whether a log record at `level` is recorded now (the configured level, lowered while a
    /// `set_log_level` directive fires). One comparison, at most one atomic load.
    #[inline]
    pub(crate) fn log_enabled(&self, level: Level) -> bool {
        self.directives.log_enabled(level, self.log_level)
    }

    pub(crate) fn with_control<T>(&self, f: impl FnOnce(&MissionControl) -> T) -> PyResult<T> {
        let guard = self.control.lock().unwrap_or_else(|p| p.into_inner());
        guard.as_ref().map(f).ok_or_else(errors::shut_down)
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        if self.abandoned.load(Ordering::Acquire) {
            let control = self.control.get_mut().unwrap_or_else(|p| p.into_inner()).take();
            std::mem::forget(control);
            let mcp = self.mcp.get_mut().unwrap_or_else(|p| p.into_inner()).take();
            std::mem::forget(mcp);
        }
    }
}

impl Core {
    /// The shared state of a new instance around `control`.
    pub(crate) fn new(control: MissionControl) -> Arc<Self> {
        Arc::new(Core {
            id: NEXT_CORE.fetch_add(1, Ordering::Relaxed),
            recorder: control.recorder().clone(),
            prices: control.prices().clone(),
            tenant: Symbol::intern(&control.config().tenant),
            service: Symbol::intern(&control.config().service_name),
            store_root: control.config().store_root.clone(),
            models: control.model_stats_reader(),
            log_level: control.config().log_level,
            captures_content: control.captures_content(),
            directives: control.directives().clone(),
            threads: control.threads().clone(),
            budgets: control.config().budget.clone(),
            pack_budget: control.pack_budget(),
            callbacks: Callbacks::default(),
            sinks: crate::sink::Sinks::default(),
            dashboards: Mutex::new(Vec::new()),
            receivers: Mutex::new(Vec::new()),
            control: Mutex::new(Some(control)),
            mcp: Mutex::new(None),
            closed: AtomicBool::new(false),
            abandoned: AtomicBool::new(false),
        })
    }
}
