//! The host's incident analyser ([`MissionControl::register_analyser`]): each new incident,
//! with the context pack `explain_anomaly` gives for its first anomaly (when the agent keeps a
//! store and the `mcp` feature is on), goes to a host callback on a worker thread of its own,
//! through a queue of [`ANALYSER_QUEUE`] (a full queue drops and counts); the narrative it
//! returns is kept with the incident and recorded. Mission Control never calls a model
//! provider itself: the callback may (it is the host's code, off every recording path).

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};

use mission_govern::directives::{Directives, Incident};

use crate::MissionControl;

/// Incidents waiting for the analyser, at most.
pub const ANALYSER_QUEUE: usize = 16;

/// What the analyser is given.
#[derive(Clone, Debug)]
pub struct AnalysisRequest {
    /// The incident as it opened.
    pub incident: Incident,
    /// The `explain_anomaly` context pack of its first anomaly (summary, ranked causes,
    /// baseline and anomalous windows, exemplar thread, slowest threads, instructions), or the
    /// incident itself as JSON when there is no anomaly or no store to read.
    pub context: serde_json::Value,
}

/// What the analyser did ([`MissionControl::analyser_stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct AnalyserStats {
    /// Incidents the callback finished with (narrated, declined or panicked).
    pub analysed: u64,
    /// Narratives kept.
    pub narrated: u64,
    /// Incidents dropped because the queue was full.
    pub dropped: u64,
    /// Callbacks that panicked (caught).
    pub panicked: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    analysed: AtomicU64,
    narrated: AtomicU64,
    dropped: AtomicU64,
    panicked: AtomicU64,
}

impl Counters {
    pub(crate) fn stats(&self) -> AnalyserStats {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        AnalyserStats {
            analysed: l(&self.analysed),
            narrated: l(&self.narrated),
            dropped: l(&self.dropped),
            panicked: l(&self.panicked),
        }
    }
}

/// The context of `incident`: its first anomaly's pack, else the incident as JSON.
type Context = Box<dyn Fn(&Incident) -> serde_json::Value + Send>;

/// Starts the worker and hooks it to `directives`; the worker ends when the directives drop
/// their hook (the instance shuts down).
pub(crate) fn start(
    directives: &Directives,
    counters: Arc<Counters>,
    context: Context,
    analyser: impl Fn(&AnalysisRequest) -> Option<String> + Send + 'static,
) -> std::io::Result<()> {
    let (sender, receiver) = sync_channel::<Incident>(ANALYSER_QUEUE);
    let narrate = directives.clone();
    let worker_counters = counters.clone();
    std::thread::Builder::new().name("mission-analyser".into()).spawn(move || {
        for incident in receiver {
            let request = AnalysisRequest { context: context(&incident), incident };
            let answer = std::panic::catch_unwind(AssertUnwindSafe(|| analyser(&request)));
            match answer {
                Ok(Some(text)) => {
                    let i = &request.incident;
                    if narrate.narrate(&i.tenant, &i.id, &text) {
                        worker_counters.narrated.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Ok(None) => {}
                Err(_) => {
                    worker_counters.panicked.fetch_add(1, Ordering::Relaxed);
                }
            }
            // Counted last, so a reader that sees it sees what the analysis did.
            worker_counters.analysed.fetch_add(1, Ordering::Relaxed);
        }
    })?;
    let sender: SyncSender<Incident> = sender;
    directives.on_incident(move |incident| match sender.try_send(incident.clone()) {
        Ok(()) => {}
        Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
            counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
    });
    Ok(())
}

/// The id of the incident's first anomaly, if it has one.
#[cfg(feature = "mcp")]
pub(crate) fn first_anomaly(incident: &Incident) -> Option<&str> {
    use mission_govern::directives::MemberKind;
    incident.members.iter().find(|m| m.kind == MemberKind::Anomaly).map(|m| m.id.as_str())
}

impl MissionControl {
    /// Registers the host's analyser: each new incident (anomalies, alerts and remedies on one
    /// cause) is handed to `analyser` with the context pack `explain_anomaly` gives for its
    /// first anomaly, on a worker thread of its own (a queue of [`ANALYSER_QUEUE`]; a full
    /// queue drops and counts). The narrative it returns is kept with the incident (recorded as
    /// a `mission.incident` event in state `narrated`, shown by `list_incidents`,
    /// `similar_incidents` and `explain_anomaly`). A panic is caught and counted. Registering
    /// again replaces the analyser.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let control = mission_sdk::MissionControl::builder().build()?;
    /// control.register_analyser(|request| {
    ///     // Ask the host's own model here, with request.context as the prompt's evidence.
    ///     Some(format!("{} looks like the cause", request.incident.cause))
    /// })?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Io`](crate::Error::Io) if the worker thread cannot start.
    pub fn register_analyser(
        &self,
        analyser: impl Fn(&AnalysisRequest) -> Option<String> + Send + 'static,
    ) -> crate::Result<()> {
        #[cfg(feature = "mcp")]
        let context: Context = {
            let mcp = self.mcp_server();
            Box::new(move |incident: &Incident| {
                first_anomaly(incident)
                    .and_then(|id| mcp.context_pack(id, Some(&incident.tenant)).ok())
                    .unwrap_or_else(|| serde_json::to_value(incident).unwrap_or_default())
            })
        };
        #[cfg(not(feature = "mcp"))]
        let context: Context =
            Box::new(|incident: &Incident| serde_json::to_value(incident).unwrap_or_default());
        start(self.directives(), self.analyser_counters.clone(), context, analyser)
            .map_err(|source| crate::Error::Io { path: "mission-analyser thread".into(), source })
    }

    /// What the analyser did.
    pub fn analyser_stats(&self) -> AnalyserStats {
        self.analyser_counters.stats()
    }
}
