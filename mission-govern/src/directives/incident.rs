//! Incident memory: anomalies, directive firings, acknowledgements and remedies that share a
//! tenant and a cause form one [`Incident`] (one incident when several streams alarm on one
//! cause). An incident closes once none of its firings still fires and nothing joined it for
//! [`QUIET`]; its resolution is the last remedy that worked or the last acknowledgement's
//! note. Incidents are recorded as `mission.incident` events (opened, narrated, closed), so
//! past ones are found in the store ([`similar`]); the book keeps at most
//! [`MAX_OPEN_INCIDENTS`] open and the latest [`MAX_CLOSED_INCIDENTS`] closed in memory.

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use mission_core::{
    AttrValue, Event, EventBody, LazySymbol, Level, LogRecord, Symbol, Text, Timestamp,
};

use super::action::KEYS;

/// Most incidents open at once; past it a new cause is not tracked (counted in
/// [`DirectiveStats::incidents_dropped`](super::DirectiveStats::incidents_dropped)).
pub const MAX_OPEN_INCIDENTS: usize = 256;
/// Closed incidents kept in memory (all of them are in the store).
pub const MAX_CLOSED_INCIDENTS: usize = 256;
/// Members kept per incident; more are counted in [`Incident::members_dropped`].
pub const MAX_MEMBERS: usize = 32;
/// How far apart (event time) two alarms on one cause may be and still be one incident.
pub const JOIN: Duration = Duration::from_secs(10 * 60);
/// How long an incident with nothing firing must stay quiet (wall clock) before it closes, by
/// default ([`Directives::set_incident_quiet`](super::Directives::set_incident_quiet)).
pub const QUIET: Duration = Duration::from_secs(10 * 60);

/// Name of the log event recording an incident (target `mission.directives`).
pub const INCIDENT_EVENT: &str = "mission.incident";
/// Attribute: the incident's id (16 hex digits).
pub const ATTR_INCIDENT_ID: &str = "mission.incident.id";
/// Attribute: `open`, `narrated` or `closed`.
pub const ATTR_INCIDENT_STATE: &str = "mission.incident.state";
/// Attribute: its cause signature (`model=claude-sonnet-4`, `operation=search`).
pub const ATTR_INCIDENT_CAUSE: &str = "mission.incident.cause";
/// Attribute: its members, a JSON array (at most [`MAX_MEMBERS`]).
pub const ATTR_INCIDENT_MEMBERS: &str = "mission.incident.members";
/// Attribute: what resolved it.
pub const ATTR_INCIDENT_RESOLUTION: &str = "mission.incident.resolution";
/// Attribute: the host analyser's narrative.
pub const ATTR_INCIDENT_NARRATIVE: &str = "mission.incident.narrative";
/// Attribute: when it opened (ns since the Unix epoch, event time).
pub const ATTR_INCIDENT_OPENED: &str = "mission.incident.opened";

struct IncidentKeys {
    event: LazySymbol,
    id: LazySymbol,
    state: LazySymbol,
    cause: LazySymbol,
    members: LazySymbol,
    resolution: LazySymbol,
    narrative: LazySymbol,
    opened: LazySymbol,
}

static IKEYS: IncidentKeys = IncidentKeys {
    event: LazySymbol::new(INCIDENT_EVENT),
    id: LazySymbol::new(ATTR_INCIDENT_ID),
    state: LazySymbol::new(ATTR_INCIDENT_STATE),
    cause: LazySymbol::new(ATTR_INCIDENT_CAUSE),
    members: LazySymbol::new(ATTR_INCIDENT_MEMBERS),
    resolution: LazySymbol::new(ATTR_INCIDENT_RESOLUTION),
    narrative: LazySymbol::new(ATTR_INCIDENT_NARRATIVE),
    opened: LazySymbol::new(ATTR_INCIDENT_OPENED),
};

/// What joined an incident.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberKind {
    /// A model's anomaly.
    Anomaly,
    /// A directive fired.
    Firing,
    /// A directive's incident resolved.
    Resolved,
    /// Someone acknowledged a firing.
    Acknowledgement,
    /// A remedy ran (or failed, or was held back).
    Remedy,
}

/// One thing that joined an incident.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Member {
    /// What it is.
    pub kind: MemberKind,
    /// Where it came from: the directive, or the anomaly's detector and metric.
    pub source: String,
    /// Its id: an anomaly's (16 hex digits), a firing's dedup key.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// When (event time, ns).
    pub time: u64,
    /// One line.
    pub summary: String,
    /// An acknowledgement's verdict (`true_positive`, `false_positive`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
}

/// An acknowledgement's verdict on what fired.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// It was a real problem.
    TruePositive,
    /// It was not.
    FalsePositive,
}

impl Verdict {
    /// `true_positive` or `false_positive`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Verdict::TruePositive => "true_positive",
            Verdict::FalsePositive => "false_positive",
        }
    }
}

impl std::str::FromStr for Verdict {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "true_positive" => Ok(Verdict::TruePositive),
            "false_positive" => Ok(Verdict::FalsePositive),
            other => Err(format!(
                "unknown verdict {:?}: expected true_positive or false_positive",
                other.chars().take(32).collect::<String>()
            )),
        }
    }
}

/// Open or closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IncidentState {
    /// Still going on.
    Open,
    /// Over.
    Closed,
}

/// Alarms of one tenant on one cause, and what was done about them.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Incident {
    /// Its id (16 hex digits, unique across processes in practice).
    pub id: String,
    /// Whose (empty for a directive across tenants).
    pub tenant: String,
    /// The cause signature its members share (`model=claude-sonnet-4`, `operation=search`).
    pub cause: String,
    /// Open or closed.
    pub state: IncidentState,
    /// When it opened (event time, ns).
    pub opened: u64,
    /// When the last member joined (event time, ns).
    pub updated: u64,
    /// When it closed (wall clock, ns).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed: Option<u64>,
    /// What joined it, oldest first (at most [`MAX_MEMBERS`]).
    pub members: Vec<Member>,
    /// Members past [`MAX_MEMBERS`], not kept.
    #[serde(default)]
    pub members_dropped: u64,
    /// What resolved it: the last remedy that worked, or the last acknowledgement's note.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resolution: String,
    /// The host analyser's narrative, when one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub narrative: Option<String>,
}

impl Incident {
    /// The `mission.incident` event of its state now (`open`, `narrated` or `closed`), at
    /// `time`.
    pub(crate) fn to_event(&self, state: &str, time: u64) -> Event {
        let (k, i) = (&KEYS, &IKEYS);
        let message = match state {
            "closed" if !self.resolution.is_empty() => {
                format!("incident {} on {} closed: {}", self.id, self.cause, self.resolution)
            }
            _ => format!("incident {} on {} {state}", self.id, self.cause),
        };
        let mut event = Event::new(
            i.event.get(),
            EventBody::Log(LogRecord {
                level: if state == "open" { Level::Warn } else { Level::Info },
                target: k.target.get(),
                message: Text::bounded(&message, 1024),
            }),
        );
        event.time = Timestamp(time);
        event.tenant = Symbol::intern(&self.tenant);
        let a = &mut event.attributes;
        a.set(i.id.get(), self.id.as_str());
        a.set(i.state.get(), state);
        a.set(i.cause.get(), self.cause.as_str());
        a.set(i.opened.get(), AttrValue::Int(self.opened as i64));
        let members = serde_json::to_string(&self.members).unwrap_or_default();
        a.set(i.members.get(), Text::bounded(&members, 16 * 1024));
        if !self.resolution.is_empty() {
            a.set(i.resolution.get(), self.resolution.as_str());
        }
        if let Some(n) = &self.narrative {
            a.set(i.narrative.get(), Text::bounded(n, 8 * 1024));
        }
        event
    }

    /// Whether it has a member with this id (an anomaly's, a firing's dedup key).
    pub fn has_member(&self, id: &str) -> bool {
        self.members.iter().any(|m| m.id == id)
    }
}

/// An open incident and what the book needs to close it.
struct Open {
    incident: Incident,
    /// Dedup keys of member firings still firing.
    firing: BTreeSet<String>,
    /// The wall clock when the last member joined.
    touched_wall: u64,
}

/// Open and recently closed incidents.
pub(crate) struct IncidentBook {
    open: Vec<Open>,
    closed: VecDeque<Incident>,
    /// Incidents not opened because [`MAX_OPEN_INCIDENTS`] were open.
    pub dropped: u64,
    /// How long an incident with nothing firing stays open (default [`QUIET`]).
    pub quiet: Duration,
}

impl Default for IncidentBook {
    fn default() -> Self {
        Self { open: Vec::new(), closed: VecDeque::new(), dropped: 0, quiet: QUIET }
    }
}

/// What the book asks the engine to do after a change.
pub(crate) enum Change {
    /// Record this event.
    Record(Event),
    /// A new incident opened (the analyser may look at it).
    Opened(Box<Incident>),
}

impl IncidentBook {
    /// `member` joins the open incident of `tenant` on `cause` (opened `JOIN` or less before
    /// in event time), or opens one. `firing` says whether a firing starts (`Some(true)`) or
    /// resolves (`Some(false)`) with its dedup key in `member.id`.
    pub fn join(
        &mut self,
        tenant: &str,
        cause: &str,
        member: Member,
        firing: Option<bool>,
        wall: u64,
        out: &mut Vec<Change>,
    ) {
        let join = JOIN.as_nanos() as u64;
        let found = self.open.iter_mut().find(|o| {
            o.incident.tenant == tenant
                && o.incident.cause == cause
                && member.time.saturating_add(join) >= o.incident.updated
                && o.incident.updated.saturating_add(join) >= member.time
        });
        let open = match found {
            Some(o) => o,
            None => {
                if firing == Some(false) {
                    return; // A resolve alone opens nothing.
                }
                if self.open.len() >= MAX_OPEN_INCIDENTS {
                    self.dropped += 1;
                    return;
                }
                let incident = Incident {
                    id: format!("{:016x}", mission_core::SpanId::generate().0),
                    tenant: tenant.to_owned(),
                    cause: cause.to_owned(),
                    state: IncidentState::Open,
                    opened: member.time,
                    updated: member.time,
                    closed: None,
                    members: Vec::new(),
                    members_dropped: 0,
                    resolution: String::new(),
                    narrative: None,
                };
                self.open.push(Open { incident, firing: BTreeSet::new(), touched_wall: wall });
                let o = self.open.last_mut().expect("just pushed");
                add(&mut o.incident, member.clone(), &mut o.firing, firing);
                out.push(Change::Record(o.incident.to_event("open", member.time)));
                out.push(Change::Opened(Box::new(o.incident.clone())));
                return;
            }
        };
        open.touched_wall = wall;
        add(&mut open.incident, member, &mut open.firing, firing);
    }

    /// Adds `member` to the open incident holding the firing `dedup_key`, if any (an
    /// acknowledgement, a remedy).
    pub fn follow(&mut self, tenant: &str, dedup_key: &str, member: Member, wall: u64) -> bool {
        let Some(open) = self
            .open
            .iter_mut()
            .rev()
            .find(|o| o.incident.tenant == tenant && o.incident.has_member(dedup_key))
        else {
            return false;
        };
        open.touched_wall = wall;
        add(&mut open.incident, member, &mut open.firing, None);
        true
    }

    /// Closes the incidents with nothing firing that stayed quiet for [`QUIET`] at `wall`.
    pub fn tick(&mut self, wall: u64, out: &mut Vec<Change>) {
        let quiet = self.quiet.as_nanos() as u64;
        let mut i = 0;
        while i < self.open.len() {
            let o = &self.open[i];
            if o.firing.is_empty() && wall.saturating_sub(o.touched_wall) >= quiet {
                let mut incident = self.open.remove(i).incident;
                incident.state = IncidentState::Closed;
                incident.closed = Some(wall);
                incident.resolution = resolution(&incident);
                out.push(Change::Record(incident.to_event("closed", wall)));
                if self.closed.len() >= MAX_CLOSED_INCIDENTS {
                    self.closed.pop_front();
                }
                self.closed.push_back(incident);
            } else {
                i += 1;
            }
        }
    }

    /// Stores the analyser's narrative with incident `id` of `tenant`; returns the event to
    /// record, or `None` if the book no longer has it.
    pub fn narrate(&mut self, tenant: &str, id: &str, narrative: &str, time: u64) -> Option<Event> {
        let text: String = narrative.chars().take(8 * 1024).collect();
        if let Some(o) =
            self.open.iter_mut().find(|o| o.incident.id == id && o.incident.tenant == tenant)
        {
            o.incident.narrative = Some(text);
            return Some(o.incident.to_event("narrated", time));
        }
        let c = self.closed.iter_mut().find(|c| c.id == id && c.tenant == tenant)?;
        c.narrative = Some(text);
        Some(c.to_event("narrated", time))
    }

    /// Every incident in memory (open first, then closed, newest first) of `tenant` when given.
    pub fn list(&self, tenant: Option<&str>) -> Vec<Incident> {
        let open = self.open.iter().rev().map(|o| &o.incident);
        open.chain(self.closed.iter().rev())
            .filter(|i| tenant.is_none_or(|t| i.tenant == t))
            .cloned()
            .collect()
    }
}

fn add(incident: &mut Incident, member: Member, firing: &mut BTreeSet<String>, on: Option<bool>) {
    match on {
        Some(true) => {
            firing.insert(member.id.clone());
        }
        Some(false) => {
            firing.remove(&member.id);
        }
        None => {}
    }
    incident.updated = incident.updated.max(member.time);
    if incident.members.len() >= MAX_MEMBERS {
        incident.members_dropped += 1;
    } else {
        incident.members.push(member);
    }
}

/// The last remedy that worked, else the last acknowledgement's note (or who acknowledged).
fn resolution(incident: &Incident) -> String {
    let m = &incident.members;
    if let Some(r) =
        m.iter().rev().find(|m| m.kind == MemberKind::Remedy && m.summary.contains(" done"))
    {
        return r.summary.clone();
    }
    m.iter()
        .rev()
        .find(|m| m.kind == MemberKind::Acknowledgement)
        .map(|a| a.summary.clone())
        .unwrap_or_default()
}

/// How alike two cause signatures are: 1 the same, 0.7 the same value under another key
/// (`model=x` and `provider_model=x`), 0.5 the same key (`operation=…`), else 0.
pub fn likeness(a: &str, b: &str) -> f64 {
    if a == b {
        return 1.0;
    }
    let split = |s: &str| {
        s.split_once('=')
            .map_or((s.to_owned(), String::new()), |(k, v)| (k.to_owned(), v.to_owned()))
    };
    let ((ka, va), (kb, vb)) = (split(a), split(b));
    if !va.is_empty() && va == vb {
        0.7
    } else if ka == kb && !ka.is_empty() {
        0.5
    } else {
        0.0
    }
}

/// Past incidents like `cause`, best first, at most `limit`: each with how alike (see
/// [`likeness`]) — `incidents` are closed incidents of one tenant scope (from memory and the
/// store; duplicates by id are kept once).
pub fn similar(cause: &str, incidents: Vec<Incident>, limit: usize) -> Vec<(f64, Incident)> {
    let mut seen = std::collections::HashSet::new();
    let mut scored: Vec<(f64, Incident)> = incidents
        .into_iter()
        .filter(|i| seen.insert(i.id.clone()))
        .map(|i| (likeness(cause, &i.cause), i))
        .filter(|(s, _)| *s > 0.0)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.updated.cmp(&a.1.updated)));
    scored.truncate(limit);
    scored
}

/// An incident read back from its `mission.incident` event's attributes (`None` when they are
/// not one's).
pub fn from_attributes(tenant: &str, attributes: &[(String, String)]) -> Option<Incident> {
    let get = |key: &str| attributes.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    let state = get(ATTR_INCIDENT_STATE)?;
    Some(Incident {
        id: get(ATTR_INCIDENT_ID)?,
        tenant: tenant.to_owned(),
        cause: get(ATTR_INCIDENT_CAUSE)?,
        state: if state == "closed" { IncidentState::Closed } else { IncidentState::Open },
        opened: get(ATTR_INCIDENT_OPENED).and_then(|v| v.parse().ok()).unwrap_or(0),
        updated: 0,
        closed: None,
        members: get(ATTR_INCIDENT_MEMBERS)
            .and_then(|m| serde_json::from_str(&m).ok())
            .unwrap_or_default(),
        members_dropped: 0,
        resolution: get(ATTR_INCIDENT_RESOLUTION).unwrap_or_default(),
        narrative: get(ATTR_INCIDENT_NARRATIVE),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(kind: MemberKind, id: &str, time: u64) -> Member {
        Member {
            kind,
            source: "d".into(),
            id: id.into(),
            time,
            summary: format!("{id} done"),
            verdict: None,
        }
    }

    #[test]
    fn two_alarms_on_one_cause_are_one_incident_and_it_closes_when_quiet() {
        let mut book = IncidentBook::default();
        let mut out = Vec::new();
        let min = 60_000_000_000;
        book.join("acme", "model=x", member(MemberKind::Anomaly, "a1", min), None, 0, &mut out);
        book.join(
            "acme",
            "model=x",
            member(MemberKind::Firing, "d:k", 2 * min),
            Some(true),
            0,
            &mut out,
        );
        book.join(
            "globex",
            "model=x",
            member(MemberKind::Anomaly, "a2", 2 * min),
            None,
            0,
            &mut out,
        );
        book.join("acme", "model=y", member(MemberKind::Anomaly, "a3", 2 * min), None, 0, &mut out);
        assert_eq!(book.list(Some("acme")).len(), 2);
        assert_eq!(
            book.list(Some("acme")).iter().find(|i| i.cause == "model=x").unwrap().members.len(),
            2
        );
        // Still firing: it stays open however quiet.
        book.tick(60 * min, &mut out);
        assert_eq!(book.open.len(), 1, "only acme's model=x incident still fires");
        book.join(
            "acme",
            "model=x",
            member(MemberKind::Resolved, "d:k", 3 * min),
            Some(false),
            60 * min,
            &mut out,
        );
        book.tick(65 * min, &mut out);
        assert_eq!(book.open.len(), 1, "not quiet long enough");
        book.tick(70 * min, &mut out);
        assert!(book.open.is_empty());
        let closed = book.list(Some("acme"));
        assert!(closed.iter().all(|i| i.state == IncidentState::Closed));
        // Far apart in event time: a new incident.
        book.join(
            "acme",
            "model=x",
            member(MemberKind::Anomaly, "a4", 30 * min),
            None,
            70 * min,
            &mut out,
        );
        assert_eq!(book.open.len(), 1);
        assert_ne!(book.open[0].incident.id, closed[0].id);
    }

    #[test]
    fn open_incidents_and_members_are_bounded() {
        let mut book = IncidentBook::default();
        let mut out = Vec::new();
        for n in 0..MAX_OPEN_INCIDENTS + 3 {
            book.join(
                "t",
                &format!("c={n}"),
                member(MemberKind::Anomaly, "a", 1),
                None,
                0,
                &mut out,
            );
        }
        assert_eq!((book.open.len(), book.dropped), (MAX_OPEN_INCIDENTS, 3));
        for _ in 0..MAX_MEMBERS + 5 {
            book.join("t", "c=0", member(MemberKind::Anomaly, "a", 1), None, 0, &mut out);
        }
        let i = book.list(None).into_iter().find(|i| i.cause == "c=0").unwrap();
        assert_eq!((i.members.len(), i.members_dropped), (MAX_MEMBERS, 6));
    }

    #[test]
    fn likeness_ranks_the_same_cause_first() {
        assert_eq!(likeness("model=x", "model=x"), 1.0);
        assert_eq!(likeness("model=x", "provider=x"), 0.7);
        assert_eq!(likeness("operation=a", "operation=b"), 0.5);
        assert_eq!(likeness("operation=a", "model=b"), 0.0);
    }
}
