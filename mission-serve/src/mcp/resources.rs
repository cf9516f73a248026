//! Resources — `mission://health` and `mission://threads/{id}` — and change notifications for
//! them over `subscriptions/listen`.

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant};

use mission_store::Store;
use rmcp::model::{
    ListResourceTemplatesResult, ListResourcesResult, Notification, ReadResourceResult, Resource,
    ResourceContents, ResourceTemplate, ResourceUpdatedNotificationParam, ServerNotification,
};
use rmcp::service::{RequestContext, SubscriptionContext};
use rmcp::{ErrorData, RoleServer};

use super::health::health;
use super::tools::load_thread;
use super::{MAX_RESOURCE_BYTES, MissionMcp, Source, internal, invalid, scope_of};
use mission_core::{EventFilter, Subscription};

/// The health resource.
pub const HEALTH_URI: &str = "mission://health";
/// The prefix of thread resources; the id follows.
pub const THREAD_URI_PREFIX: &str = "mission://threads/";
/// Most resources one listen request may watch.
pub(crate) const MAX_SUBSCRIPTIONS: usize = 64;
/// Most live subscriptions a session keeps opened ahead of their listen requests.
pub(crate) const MAX_EARLY_WATCHES: usize = 8;
/// Recent threads listed as resources: at most this many, of the last 24 hours.
const LISTED_THREADS: usize = 20;
const LISTED_WINDOW_NS: u64 = 24 * 3_600 * 1_000_000_000;
/// Shortest time between two notifications for the same resource.
const NOTIFY_EVERY: Duration = Duration::from_millis(200);
/// How often a server over a store on disk looks for changes.
const POLL_EVERY: Duration = Duration::from_secs(1);

/// A resource URI of ours.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Uri {
    Health,
    Thread(String),
}

impl Uri {
    pub(crate) fn parse(uri: &str) -> Result<Self, ErrorData> {
        if uri == HEALTH_URI {
            return Ok(Self::Health);
        }
        if let Some(id) = uri.strip_prefix(THREAD_URI_PREFIX)
            && id.parse::<mission_core::ThreadId>().is_ok()
        {
            return Ok(Self::Thread(id.to_owned()));
        }
        Err(ErrorData::resource_not_found(
            format!(
                "no resource {uri:?}: expected {HEALTH_URI} or {THREAD_URI_PREFIX}<32 hex digits>"
            ),
            None,
        ))
    }
}

pub(crate) fn templates() -> ListResourceTemplatesResult {
    ListResourceTemplatesResult::with_all_items(vec![
        ResourceTemplate::new(format!("{THREAD_URI_PREFIX}{{thread_id}}"), "thread")
            .with_title("An agent thread")
            .with_description(
                "One thread as a span tree (JSON): timings, tokens, cost, errors, logs and \
                 permission decisions. Subscribe to follow it live.",
            )
            .with_mime_type("application/json"),
    ])
}

/// The health resource and the most recent threads.
pub(crate) fn list(source: &Source, scope: Option<&str>) -> Result<ListResourcesResult, ErrorData> {
    let mut resources = vec![
        Resource::new(HEALTH_URI, "health")
            .with_title("Mission Control health")
            .with_description("Recorder accounting, drops, sinks, exporter, store files (JSON)")
            .with_mime_type("application/json"),
    ];
    if source.root.as_ref().is_some_and(|r| mission_store::store_exists(r)) {
        let store = source.store(scope)?;
        // Recent threads only: listing must not scan a store's whole history.
        let now = mission_core::Timestamp::now().0;
        let q = store.query().time_range(
            mission_core::Timestamp(now.saturating_sub(LISTED_WINDOW_NS)),
            mission_core::Timestamp(now + 1),
        );
        for t in store.threads(q).map_err(internal)?.into_iter().take(LISTED_THREADS) {
            resources.push(
                Resource::new(
                    format!("{THREAD_URI_PREFIX}{}", t.thread_id),
                    format!("thread {}", t.thread_id),
                )
                .with_description(format!(
                    "{} thread: {} spans, {} errors, {}",
                    t.agent,
                    t.spans,
                    t.errors,
                    super::format::usd_text(t.cost_usd)
                ))
                .with_mime_type("application/json"),
            );
        }
    }
    Ok(ListResourcesResult::with_all_items(resources))
}

/// A resource's JSON.
pub(crate) fn read(
    source: &Source,
    uri: &str,
    scope: Option<&str>,
) -> Result<ReadResourceResult, ErrorData> {
    let mut value = match Uri::parse(uri)? {
        Uri::Health => health(source, scope)?,
        Uri::Thread(id) => {
            let view = load_thread(&source.store(scope)?, &id)?;
            serde_json::to_value(view).map_err(internal)?
        }
    };
    // In the tools' units: ms, RFC 3339 times, rounded dollars.
    super::format::normalize(&mut value);
    let text = serde_json::to_string(&value).map_err(internal)?;
    if text.len() > MAX_RESOURCE_BYTES {
        return Err(invalid(format!(
            "{uri} is {} bytes, over the {MAX_RESOURCE_BYTES}-byte bound: read it page by page with the get_thread tool",
            text.len()
        )));
    }
    Ok(ReadResourceResult::new(vec![
        ResourceContents::text(text, uri).with_mime_type("application/json"),
    ]))
}

/// A live subscription opened for the URIs of a listen request before it is acknowledged.
#[derive(Debug)]
pub(crate) struct EarlyWatch {
    uris: Vec<String>,
    subscription: Subscription,
}

/// The capacity of a watch's live subscription.
const WATCH_CAPACITY: usize = 4096;

/// The live events a watch of `uris` hears: one thread's when one thread is watched.
fn watch_filter(uris: &[Uri]) -> EventFilter {
    match uris {
        [Uri::Thread(id)] => EventFilter { thread_id: Some(id.clone()), ..EventFilter::all() },
        _ => EventFilter::all(),
    }
}

/// Inside an agent, subscribes to its live events for the (accepted) `uris` of a listen
/// request now, before the SDK acknowledges the request: a client that changes a resource as
/// soon as it reads the acknowledgment must hear of that change.
pub(crate) fn open_early_watch(server: &MissionMcp, uris: &[String]) {
    let Some(live) = &server.source.live else { return };
    let parsed: Vec<Uri> = uris.iter().filter_map(|u| Uri::parse(u).ok()).collect();
    if parsed.is_empty() {
        return;
    }
    let subscription = live.hub.subscribe(watch_filter(&parsed), WATCH_CAPACITY);
    let mut early = server.session.early_watches.lock().unwrap_or_else(|p| p.into_inner());
    if early.len() >= MAX_EARLY_WATCHES {
        early.pop_front();
    }
    early.push_back(EarlyWatch { uris: uris.to_vec(), subscription });
}

/// The early subscription opened for exactly these URIs, if there is one.
fn take_early_watch(server: &MissionMcp, uris: &[String]) -> Option<Subscription> {
    let mut early = server.session.early_watches.lock().unwrap_or_else(|p| p.into_inner());
    let at = early.iter().position(|w| w.uris == uris)?;
    early.remove(at).map(|w| w.subscription)
}

/// Answers `subscriptions/listen` (protocol 2026-07-28): sends
/// `notifications/resources/updated` for the subscribed resources as they change, until the
/// client cancels.
pub(crate) async fn listen(
    server: &MissionMcp,
    context: SubscriptionContext,
) -> Result<(), ErrorData> {
    let accepted: Vec<String> =
        context.accepted().resource_subscriptions.iter().flatten().cloned().collect();
    let uris: Vec<Uri> = accepted.iter().filter_map(|u| Uri::parse(u).ok()).collect();
    let early = take_early_watch(server, &accepted);
    let scope = scope_of(&context.request_context().extensions);
    let sink = context.sink().clone();
    let send = move |uri: String| {
        let sink = sink.clone();
        async move {
            let notification = ServerNotification::ResourceUpdatedNotification(Notification::new(
                ResourceUpdatedNotificationParam::new(uri),
            ));
            sink.send(notification).await.is_ok()
        }
    };
    watch(server, uris, early, scope, context.cancelled(), || false, send).await;
    Ok(())
}

/// Answers the legacy `resources/subscribe` (protocols before 2026-07-28): watches `uri` on a
/// task of its own until `resources/unsubscribe` or the client goes away.
pub(crate) fn subscribe(
    server: &MissionMcp,
    uri: &str,
    context: RequestContext<RoleServer>,
) -> Result<(), ErrorData> {
    let parsed = Uri::parse(uri)?;
    let stop = CancellationTokenLite::default();
    {
        let mut subscriptions =
            server.session.subscriptions.lock().unwrap_or_else(|p| p.into_inner());
        if !subscriptions.contains_key(uri) && subscriptions.len() >= MAX_SUBSCRIPTIONS {
            return Err(invalid(format!(
                "at most {MAX_SUBSCRIPTIONS} subscriptions per session: unsubscribe from one first"
            )));
        }
        if let Some(previous) = subscriptions.insert(uri.to_owned(), stop.clone()) {
            previous.cancel();
        }
    }
    let scope = scope_of(&context.extensions);
    let peer = context.peer.clone();
    let closed_peer = context.peer.clone();
    // Subscribed before the request is answered, so no change after the answer is missed.
    let live = server
        .source
        .live
        .as_ref()
        .map(|l| l.hub.subscribe(watch_filter(std::slice::from_ref(&parsed)), WATCH_CAPACITY));
    let server = server.clone();
    tokio::spawn(async move {
        let send = move |uri: String| {
            let peer = peer.clone();
            async move {
                peer.notify_resource_updated(ResourceUpdatedNotificationParam::new(uri))
                    .await
                    .is_ok()
            }
        };
        watch(
            &server,
            vec![parsed],
            live,
            scope,
            stop.cancelled(),
            move || closed_peer.is_transport_closed(),
            send,
        )
        .await;
    });
    Ok(())
}

/// Answers `resources/unsubscribe`.
pub(crate) fn unsubscribe(server: &MissionMcp, uri: &str) {
    let removed =
        server.session.subscriptions.lock().unwrap_or_else(|p| p.into_inner()).remove(uri);
    if let Some(stop) = removed {
        stop.cancel();
    }
}

/// A cancellation flag a watch task waits on.
#[derive(Clone, Default)]
pub(crate) struct CancellationTokenLite {
    inner: std::sync::Arc<(std::sync::atomic::AtomicBool, tokio::sync::Notify)>,
}

impl std::fmt::Debug for CancellationTokenLite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cancellation").field("cancelled", &self.is_cancelled()).finish()
    }
}

impl CancellationTokenLite {
    pub(crate) fn cancel(&self) {
        self.inner.0.store(true, std::sync::atomic::Ordering::SeqCst);
        self.inner.1.notify_waiters();
    }

    fn is_cancelled(&self) -> bool {
        self.inner.0.load(std::sync::atomic::Ordering::SeqCst)
    }

    async fn cancelled(&self) {
        loop {
            let notified = self.inner.1.notified();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }
}

/// Calls `send` with the URI of each watched resource as it changes (at most every
/// [`NOTIFY_EVERY`] per resource) until `cancelled` resolves, `closed` says the client is gone
/// or a send fails. Inside an agent, changes come from its live events (a thread changes when
/// one of its events is recorded, health when anything is), heard on `early` when the caller
/// subscribed before answering the request; over a store on disk, from polling the store every
/// second (a change between the answer and the first poll is not told).
async fn watch<F, Fut>(
    server: &MissionMcp,
    uris: Vec<Uri>,
    early: Option<Subscription>,
    scope: Option<String>,
    cancelled: impl Future<Output = ()>,
    closed: impl Fn() -> bool,
    send: F,
) where
    F: Fn(String) -> Fut,
    Fut: Future<Output = bool>,
{
    let cancelled = std::pin::pin!(cancelled);
    if uris.is_empty() {
        cancelled.await;
        return;
    }
    let mut cancelled = cancelled;
    let mut last_sent: HashMap<Uri, Instant> = HashMap::new();
    let mut pending: Vec<Uri> = Vec::new();
    // One thread watched: only its events are copied to this subscriber.
    let subscription = early.or_else(|| {
        server.source.live.as_ref().map(|l| l.hub.subscribe(watch_filter(&uris), WATCH_CAPACITY))
    });
    let mut fingerprints: HashMap<Uri, u64> = HashMap::new();
    if subscription.is_none() {
        fingerprints = poll(server, &uris, scope.clone()).await;
    }
    // Every tick: is the client still there, and (over a store on disk) did anything change?
    let mut check = tokio::time::interval(POLL_EVERY);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let changed: Vec<Uri> = tokio::select! {
            () = &mut cancelled => return,
            _ = check.tick() => {
                if closed() {
                    return;
                }
                if subscription.is_some() {
                    Vec::new()
                } else {
                    let now = poll(server, &uris, scope.clone()).await;
                    let changed =
                        uris.iter().filter(|u| now.get(u) != fingerprints.get(u)).cloned().collect();
                    fingerprints = now;
                    changed
                }
            }
            changed = async {
                let Some(sub) = &subscription else {
                    return std::future::pending().await;
                };
                let mut changed = Vec::new();
                match sub.recv().await {
                    Some(event) => {
                        let in_scope = scope.as_deref().is_none_or(|t| event.tenant.as_str() == t);
                        let id = event.thread_id.to_string();
                        for uri in &uris {
                            match uri {
                                Uri::Health if in_scope => changed.push(Uri::Health),
                                Uri::Health => {}
                                Uri::Thread(t) if in_scope && *t == id => changed.push(uri.clone()),
                                Uri::Thread(_) => {}
                            }
                        }
                    }
                    // The agent shut down: nothing more will change.
                    None => std::future::pending::<()>().await,
                }
                changed
            } => changed,
            () = tokio::time::sleep(NOTIFY_EVERY), if !pending.is_empty() => Vec::new(),
        };
        for uri in changed {
            if !pending.contains(&uri) {
                pending.push(uri);
            }
        }
        let mut still = Vec::new();
        for uri in pending.drain(..) {
            if last_sent.get(&uri).is_some_and(|t| t.elapsed() < NOTIFY_EVERY) {
                still.push(uri);
                continue;
            }
            let text = match &uri {
                Uri::Health => HEALTH_URI.to_owned(),
                Uri::Thread(id) => format!("{THREAD_URI_PREFIX}{id}"),
            };
            if !send(text).await {
                return;
            }
            last_sent.insert(uri, Instant::now());
        }
        pending = still;
    }
}

/// A fingerprint of each watched resource in a store on disk: a thread's event count, the
/// store's files and bytes for health.
async fn poll(server: &MissionMcp, uris: &[Uri], scope: Option<String>) -> HashMap<Uri, u64> {
    let uris = uris.to_vec();
    server
        .blocking(move |source| {
            let Some(root) = &source.root else { return Ok(HashMap::new()) };
            let Ok(store) = Store::open_scoped(root, scope.as_deref()) else {
                return Ok(HashMap::new());
            };
            let mut out = HashMap::new();
            for uri in uris {
                let n = match &uri {
                    Uri::Health => {
                        store.files().iter().map(|f| f.bytes).sum::<u64>()
                            + store.files().len() as u64
                    }
                    Uri::Thread(id) => store.query().thread(id).count().unwrap_or(0),
                };
                out.insert(uri, n);
            }
            Ok(out)
        })
        .await
        .unwrap_or_default()
}
