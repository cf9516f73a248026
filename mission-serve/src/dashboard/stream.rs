//! `GET /api/stream`: Server-Sent Events, one per event the token's scope may see as it
//! arrives, and a `stats` event every 500 ms.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tokio::sync::{broadcast, watch};

use super::Shared;
use super::feed::{MissedOwn, Streamed};
use super::row::{stream_json, stream_name};

/// How often the stream carries a `stats` event.
pub(crate) const STATS_EVERY: Duration = Duration::from_millis(500);

struct Client {
    shared: Arc<Shared>,
    rows: broadcast::Receiver<Streamed>,
    stats: tokio::time::Interval,
    stop: watch::Receiver<bool>,
    scope: Option<String>,
    /// Rows this client lost because it fell behind, every tenant's.
    lagged: u64,
    /// The rows of its own tenant a tenant-scoped client did not get.
    missed_own: MissedOwn,
}

impl Client {
    fn stats_event(&self) -> SseEvent {
        let feed = self.shared.feed.stats(self.scope.as_deref());
        let now_ms = i64::try_from(mission_core::Timestamp::now().0 / 1_000_000).unwrap_or(0);
        let data = json!({
            "now_ms": now_ms,
            "events_total": feed.events_total,
            "event_rate": feed.event_rate,
            "active_threads": feed.active_threads,
            "dropped": self.shared.dropped(self.scope.as_deref()),
            // A tenant's principal is told the events of its own tenant it missed (before the
            // feed, and on this stream), never a count that includes other tenants' events.
            "lagged": feed.lagged + if self.scope.is_some() { self.missed_own.missed } else { self.lagged },
        });
        SseEvent::default().event("stats").data(data.to_string())
    }

    /// The next event to send; `None` when the server stops or the feed ends.
    async fn next(&mut self) -> Option<SseEvent> {
        loop {
            tokio::select! {
                received = self.rows.recv() => match received {
                    Ok(Streamed { row, tenant_seq }) => {
                        if self.scope.as_deref().is_some_and(|s| s != row.tenant) {
                            continue;
                        }
                        self.missed_own.seen(tenant_seq);
                        if let Some(name) = stream_name(&row) {
                            let data = stream_json(&row, name).to_string();
                            return Some(SseEvent::default().event(name).data(data));
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => self.lagged += n,
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                _ = self.stats.tick() => return Some(self.stats_event()),
                changed = self.stop.changed() => {
                    if changed.is_err() || *self.stop.borrow() {
                        return None;
                    }
                }
            }
        }
    }
}

/// The stream for a request scoped to `scope`.
pub(crate) fn stream(shared: Arc<Shared>, scope: Option<String>) -> Response {
    let mut stats = tokio::time::interval(STATS_EVERY);
    stats.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let client = Client {
        rows: shared.feed.subscribe(),
        stop: shared.stop.clone(),
        shared,
        stats,
        scope,
        lagged: 0,
        missed_own: MissedOwn::default(),
    };
    let events = futures_util::stream::unfold(client, |mut client| async move {
        let event = client.next().await?;
        Some((Ok::<_, Infallible>(event), client))
    });
    (
        [
            (::http::header::CACHE_CONTROL, "no-cache"),
            (::http::header::HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))),
    )
        .into_response()
}
