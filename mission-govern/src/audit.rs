//! The audit trail: an append-only, hash-chained log of security-relevant events —
//! permission denials, policy and directive changes, administrative actions, erasures.
//!
//! [`AuditLog::open`] appends JSON Lines records to `<store>/audit/audit.jsonl`:
//!
//! ```text
//! {"actor":"agent:support-bot","detail":{"rule":"no-refunds"},"hash":"…","kind":"permission_denied","prev_hash":"000…0","seq":1,"tenant":"acme","time_ns":1741082400000000000}
//! ```
//!
//! Each record's `hash` is the lowercase hex SHA-256 of its `prev_hash` (as 64 ASCII hex
//! digits) followed by the record's canonical JSON without the `hash` field. The first
//! record's `prev_hash` is [`GENESIS_HASH`] (64 zeros) and `seq` counts from 1. Canonical JSON
//! is what every line is written as: object keys sorted bytewise at every level, no
//! whitespace, strings and numbers as `serde_json` writes them — so anyone can recompute a
//! hash with `printf '%s%s' "$prev_hash" "$json_without_hash" | sha256sum`.
//!
//! [`verify`] recomputes the chain and names the first bad position: an edited record (its
//! hash does not match), a removed record (a gap in `seq`), reordered records, a link that
//! does not match the record before (a record replaced with a rehashed one, or chains
//! spliced), a truncated last line, or a line that is not a record.
//!
//! The chain proves what is *inside* the log was not changed; cutting records off the end
//! is only visible against a head kept elsewhere ([`AuditLog::head`], to be anchored in
//! Parquet file metadata or an external system).
//!
//! # Files, rotation and durability
//!
//! Past [`AuditConfig::max_file_bytes`] the active file is renamed to `audit.000001.jsonl`
//! (then `000002`, …) and a new `audit.jsonl` starts; the chain continues across files and
//! [`verify`] reads them in order. With [`SyncPolicy::EveryRecord`] (the default) every
//! record is on stable storage (`fsync` of the data, and of the directory when a file is
//! created or renamed) before [`AuditLog::append`] returns; [`SyncPolicy::OnRotate`] leaves
//! it to the operating system and to [`AuditLog::sync`], trading the last records of a crash
//! for speed. One process writes a store's audit log at a time.
//!
//! ```
//! use mission_govern::audit::{self, AuditLog};
//!
//! let store = std::env::temp_dir().join(format!("mission-audit-doc-{}", std::process::id()));
//! let log = AuditLog::open(&store)?;
//! log.append(audit::kind::POLICY_CHANGE, "admin:jo", "acme", serde_json::json!({"rules": 3}))?;
//! let report = audit::verify(&store)?;
//! assert!(report.problem.is_none());
//! assert_eq!(report.head, log.head());
//! # std::fs::remove_dir_all(&store)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use serde_json::Value;
use sha2::{Digest, Sha256};

/// The directory under a store's root that holds the audit log.
pub const AUDIT_DIR: &str = "audit";
/// The file records are appended to.
pub const ACTIVE_FILE: &str = "audit.jsonl";
/// The `prev_hash` of the first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Most bytes of a record's `detail` as canonical JSON.
pub const MAX_DETAIL_BYTES: usize = 64 * 1024;
/// Most bytes of `kind`, `actor` or `tenant`.
pub const MAX_FIELD_BYTES: usize = 1024;
/// Most bytes of one line [`verify`] and [`AuditLog::open`] read.
const MAX_LINE_BYTES: u64 = 1 << 20;

/// The kinds of record Mission Control writes (any other string is allowed too).
pub mod kind {
    /// A permission was denied.
    pub const PERMISSION_DENIED: &str = "permission_denied";
    /// A permission was granted (audited only where a compliance pack asks for it).
    pub const PERMISSION_GRANTED: &str = "permission_granted";
    /// A compliance pack was applied at start.
    pub const COMPLIANCE: &str = "compliance";
    /// A policy was loaded or changed.
    pub const POLICY_CHANGE: &str = "policy_change";
    /// A directive was added, changed or removed.
    pub const DIRECTIVE_CHANGE: &str = "directive_change";
    /// An administrative action (configuration, tokens, retention).
    pub const ADMIN_ACTION: &str = "admin_action";
    /// Data was erased (a thread, a user's attribute values).
    pub const ERASURE: &str = "erasure";
    /// A thread's budget was used up and the thread told to stop.
    pub const BUDGET_EXCEEDED: &str = "budget_exceeded";
    /// A thread was paused, resumed or cancelled (by its code, an operator or a directive).
    pub const THREAD_CONTROL: &str = "thread_control";
    /// A directive's remedies were proposed for approval, approved, rejected or expired.
    pub const APPROVAL: &str = "approval";
    /// A directive ran by hand, or ran remedies (or its runaway guard gave up).
    pub const DIRECTIVE_RUN: &str = "directive_run";
}

/// One audit record, as stored on one line.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditRecord {
    /// Position in the chain, from 1.
    pub seq: u64,
    /// When it was appended, nanoseconds since the Unix epoch.
    pub time_ns: u64,
    /// What happened ([`kind`]).
    pub kind: String,
    /// Who did it.
    pub actor: String,
    /// Whose data or policy it concerns.
    pub tenant: String,
    /// Kind-specific details.
    pub detail: Value,
    /// The previous record's `hash` ([`GENESIS_HASH`] for the first).
    pub prev_hash: String,
    /// SHA-256 of `prev_hash` and this record's canonical JSON without `hash`, lowercase hex.
    pub hash: String,
}

impl AuditRecord {
    /// The canonical JSON of this record without its `hash` field.
    pub fn canonical_without_hash(&self) -> String {
        let mut out = String::with_capacity(256);
        out.push_str("{\"actor\":");
        canonical_str(&self.actor, &mut out);
        out.push_str(",\"detail\":");
        canonical(&self.detail, &mut out);
        out.push_str(",\"kind\":");
        canonical_str(&self.kind, &mut out);
        out.push_str(",\"prev_hash\":");
        canonical_str(&self.prev_hash, &mut out);
        out.push_str(&format!(",\"seq\":{}", self.seq));
        out.push_str(",\"tenant\":");
        canonical_str(&self.tenant, &mut out);
        out.push_str(&format!(",\"time_ns\":{}}}", self.time_ns));
        out
    }

    /// The hash this record should carry: SHA-256 of `prev_hash` then
    /// [`canonical_without_hash`](Self::canonical_without_hash).
    pub fn compute_hash(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.prev_hash.as_bytes());
        h.update(self.canonical_without_hash().as_bytes());
        hex(&h.finalize())
    }

    /// The record's line (canonical JSON with `hash`, keys sorted), without the newline.
    pub fn to_line(&self) -> String {
        let without = self.canonical_without_hash();
        // `hash` sorts between `detail` and `kind`: the last `,"kind":` (the detail may hold
        // objects with a `kind` of their own; nothing after the top-level one can).
        let at = without.rfind(",\"kind\":").unwrap_or(without.len() - 1);
        let mut line = String::with_capacity(without.len() + 80);
        line.push_str(&without[..at]);
        line.push_str(",\"hash\":");
        canonical_str(&self.hash, &mut line);
        line.push_str(&without[at..]);
        line
    }
}

fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 15)] as char);
    }
    s
}

fn canonical_str(s: &str, out: &mut String) {
    out.push_str(&Value::from(s).to_string());
}

/// `value` as canonical JSON: object keys sorted bytewise at every level, no whitespace.
pub fn canonical(value: &Value, out: &mut String) {
    match value {
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(v, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_str(k, out);
                out.push(':');
                canonical(v, out);
            }
            out.push('}');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// When appended records reach stable storage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncPolicy {
    /// `fsync` after every record (and of the directory when files are created or renamed):
    /// a record [`append`](AuditLog::append) returned survives a crash.
    #[default]
    EveryRecord,
    /// `fsync` only when a file is rotated and on [`AuditLog::sync`]; the operating system
    /// writes the rest when it chooses.
    OnRotate,
}

/// How the audit log writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct AuditConfig {
    /// The active file is rotated once it would grow past this many bytes (default 64 MiB).
    pub max_file_bytes: u64,
    /// When records reach stable storage.
    pub sync: SyncPolicy,
}

/// Builder methods: start from a constructor or [`Default`] and set what differs.
impl AuditConfig {
    /// Sets [`max_file_bytes`](Self::max_file_bytes).
    pub fn with_max_file_bytes(mut self, max_file_bytes: u64) -> Self {
        self.max_file_bytes = max_file_bytes;
        self
    }

    /// Sets [`sync`](Self::sync).
    pub fn with_sync(mut self, sync: SyncPolicy) -> Self {
        self.sync = sync;
        self
    }
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self { max_file_bytes: 64 << 20, sync: SyncPolicy::EveryRecord }
    }
}

/// The end of the chain: the last record's `seq` and `hash` (`0` and [`GENESIS_HASH`] when
/// the log is empty).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuditHead {
    /// The last record's `seq` (the number of records).
    pub seq: u64,
    /// The last record's `hash`.
    pub hash: String,
}

impl AuditHead {
    /// The head of an empty log.
    pub fn genesis() -> Self {
        Self { seq: 0, hash: GENESIS_HASH.to_owned() }
    }
}

/// What is wrong at the first bad position of an audit log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditProblemKind {
    /// A record's hash does not match its content: it was edited.
    HashMismatch,
    /// A `seq` is missing and does not appear later: a record was removed.
    MissingRecord,
    /// A `seq` is out of order: records were moved.
    Reordered,
    /// A record's `prev_hash` is not the hash of the record before it: a record before it was
    /// replaced (and rehashed), or chains were spliced.
    BrokenLink,
    /// The last line has no newline: a write was cut short.
    TruncatedLine,
    /// A line is not an audit record.
    Malformed,
    /// A data file's anchor (the chain's head when the file was written) names a record
    /// whose hash differs: the log was rewritten, even if its own chain checks out.
    AnchorMismatch,
    /// A data file's anchor names a record past the log's end: records were cut off the end.
    MissingTail,
}

impl AuditProblemKind {
    /// The stable snake_case name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::HashMismatch => "hash_mismatch",
            Self::MissingRecord => "missing_record",
            Self::Reordered => "reordered",
            Self::BrokenLink => "broken_link",
            Self::TruncatedLine => "truncated_line",
            Self::Malformed => "malformed",
            Self::AnchorMismatch => "anchor_mismatch",
            Self::MissingTail => "missing_tail",
        }
    }
}

impl fmt::Display for AuditProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The first bad position of an audit log, and what is wrong there.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AuditProblem {
    /// What is wrong.
    pub kind: AuditProblemKind,
    /// The file.
    pub file: PathBuf,
    /// The line in that file, from 1.
    pub line: u64,
    /// The `seq` on that line, when it could be read.
    pub seq: Option<u64>,
    /// What was expected and found.
    pub message: String,
}

impl fmt::Display for AuditProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at line {} of {}", self.kind, self.line, self.file.display())?;
        if let Some(seq) = self.seq {
            write!(f, " (seq {seq})")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// What [`verify`] found.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AuditReport {
    /// Records whose chain checked out, up to the first problem.
    pub records: u64,
    /// The last record that checked out.
    pub head: AuditHead,
    /// The files read, oldest first.
    pub files: Vec<PathBuf>,
    /// The first problem, if any.
    pub problem: Option<AuditProblem>,
    /// Anchors found in the store's data files and checked against the chain.
    pub anchors_checked: u64,
}

impl AuditReport {
    /// Whether the whole log checked out.
    pub fn is_ok(&self) -> bool {
        self.problem.is_none()
    }
}

/// What can go wrong opening, appending to or verifying an audit log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// A file or directory could not be read or written.
    #[error("audit log {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// There is no audit log in the store.
    #[error("no audit log at {path}")]
    NotFound {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The log cannot be continued: its last record is damaged (see `mission-ctl audit
    /// verify`).
    #[error("audit log cannot be continued: {0}")]
    Damaged(AuditProblem),
    /// A field given to [`AuditLog::append`] is too large.
    #[error("audit record field `{field}`: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> AuditError + '_ {
    move |source| AuditError::Io { path: path.to_owned(), source }
}

/// The files of the log in `audit_dir`, oldest first: rotated `audit.NNNNNN.jsonl` by number,
/// then the active file if present.
fn log_files(audit_dir: &Path) -> Result<(Vec<PathBuf>, u64), AuditError> {
    let mut rotated: Vec<(u64, PathBuf)> = Vec::new();
    let mut active = None;
    for entry in std::fs::read_dir(audit_dir).map_err(io_err(audit_dir))? {
        let entry = entry.map_err(io_err(audit_dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name == ACTIVE_FILE {
            active = Some(entry.path());
        } else if let Some(n) = name
            .strip_prefix("audit.")
            .and_then(|r| r.strip_suffix(".jsonl"))
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|n| n.parse::<u64>().ok())
        {
            rotated.push((n, entry.path()));
        }
    }
    rotated.sort();
    let next = rotated.last().map_or(1, |(n, _)| n + 1);
    let mut files: Vec<PathBuf> = rotated.into_iter().map(|(_, p)| p).collect();
    files.extend(active);
    Ok((files, next))
}

fn sync_dir(dir: &Path) {
    // Durability of a created or renamed entry; not every platform can open a directory.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

struct State {
    file: Option<File>,
    bytes: u64,
    head: AuditHead,
    next_segment: u64,
}

/// An append-only, hash-chained audit log in a store's `audit/` directory. Appends from many
/// threads are serialised by a lock; one process writes a store's log at a time.
pub struct AuditLog {
    dir: PathBuf,
    config: AuditConfig,
    state: Mutex<State>,
}

impl fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditLog")
            .field("dir", &self.dir)
            .field("config", &self.config)
            .field("head", &self.head())
            .finish()
    }
}

impl AuditLog {
    /// Opens (creating it if needed) the audit log of the store at `store_root`, with the
    /// default [`AuditConfig`], continuing the chain from its last record.
    ///
    /// # Errors
    /// [`AuditError::Io`] if the directory or files cannot be created or read;
    /// [`AuditError::Damaged`] if the last record cannot be continued from (cut short,
    /// unreadable or edited).
    pub fn open(store_root: impl AsRef<Path>) -> Result<Self, AuditError> {
        Self::open_with(store_root, AuditConfig::default())
    }

    /// Like [`open`](Self::open), with `config`.
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub fn open_with(
        store_root: impl AsRef<Path>,
        config: AuditConfig,
    ) -> Result<Self, AuditError> {
        let dir = store_root.as_ref().join(AUDIT_DIR);
        let created = !dir.exists();
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        if created && config.sync == SyncPolicy::EveryRecord {
            sync_dir(store_root.as_ref());
        }
        let (files, next_segment) = log_files(&dir)?;
        let mut head = AuditHead::genesis();
        // The last record is in the newest non-empty file.
        for path in files.iter().rev() {
            if let Some(record) = last_record(path)? {
                head = AuditHead { seq: record.seq, hash: record.hash };
                break;
            }
        }
        let active = dir.join(ACTIVE_FILE);
        let bytes = std::fs::metadata(&active).map(|m| m.len()).unwrap_or(0);
        Ok(Self { dir, config, state: Mutex::new(State { file: None, bytes, head, next_segment }) })
    }

    /// The `audit/` directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The end of the chain (what to anchor elsewhere). O(1).
    pub fn head(&self) -> AuditHead {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).head.clone()
    }

    /// Appends a record and returns it (with its `seq` and `hash`).
    ///
    /// # Errors
    /// [`AuditError::Invalid`] if `kind`, `actor` or `tenant` is longer than
    /// [`MAX_FIELD_BYTES`], `kind` is empty, or `detail` is larger than [`MAX_DETAIL_BYTES`];
    /// [`AuditError::Io`] if it cannot be written (the file is then cut back to its last
    /// complete record, and the chain is unchanged).
    pub fn append(
        &self,
        kind: &str,
        actor: &str,
        tenant: &str,
        detail: Value,
    ) -> Result<AuditRecord, AuditError> {
        for (field, value) in [("kind", kind), ("actor", actor), ("tenant", tenant)] {
            if value.len() > MAX_FIELD_BYTES {
                return Err(AuditError::Invalid {
                    field,
                    reason: format!("{} bytes, at most {MAX_FIELD_BYTES}", value.len()),
                });
            }
        }
        if kind.is_empty() {
            return Err(AuditError::Invalid { field: "kind", reason: "empty".into() });
        }
        let mut detail_json = String::new();
        canonical(&detail, &mut detail_json);
        if detail_json.len() > MAX_DETAIL_BYTES {
            return Err(AuditError::Invalid {
                field: "detail",
                reason: format!("{} bytes, at most {MAX_DETAIL_BYTES}", detail_json.len()),
            });
        }
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mut record = AuditRecord {
            seq: state.head.seq + 1,
            time_ns: mission_core::Timestamp::now().0,
            kind: kind.to_owned(),
            actor: actor.to_owned(),
            tenant: tenant.to_owned(),
            detail,
            prev_hash: state.head.hash.clone(),
            hash: String::new(),
        };
        record.hash = record.compute_hash();
        let mut line = record.to_line();
        line.push('\n');
        if state.bytes > 0 && state.bytes + line.len() as u64 > self.config.max_file_bytes {
            self.rotate(&mut state)?;
        }
        let path = self.dir.join(ACTIVE_FILE);
        if state.file.is_none() {
            let created = !path.exists();
            let file =
                OpenOptions::new().create(true).append(true).open(&path).map_err(io_err(&path))?;
            if created && self.config.sync == SyncPolicy::EveryRecord {
                sync_dir(&self.dir);
            }
            state.file = Some(file);
        }
        let before = state.bytes;
        let sync = self.config.sync == SyncPolicy::EveryRecord;
        let written = match state.file.as_mut() {
            Some(file) => file
                .write_all(line.as_bytes())
                .and_then(|()| if sync { file.sync_data() } else { Ok(()) }),
            None => Err(io::Error::other("audit file not open")),
        };
        if let Err(e) = written {
            // Leave no partial line behind, so the chain can be continued.
            if let Some(file) = state.file.take() {
                let _ = file.set_len(before);
            }
            return Err(AuditError::Io { path, source: e });
        }
        state.bytes += line.len() as u64;
        state.head = AuditHead { seq: record.seq, hash: record.hash.clone() };
        Ok(record)
    }

    /// Where record `seq` stands among the records of `tenant`, its own tenant: 1 for the
    /// tenant's first record. What a principal scoped to one tenant is told instead of `seq`,
    /// which counts every tenant's records and so would tell it how much the other tenants
    /// did; anyone with the log can find the record again (the `n`-th line of that tenant).
    /// The log is read from its start while appends wait (no record is appended or rotated
    /// meanwhile): meant for the rare answers to such a principal, not for a hot path.
    ///
    /// # Errors
    /// [`AuditError::Io`] if a file cannot be read; [`AuditError::Invalid`] (field `seq`) if
    /// the log holds no record `seq` of `tenant`.
    pub fn tenant_seq(&self, tenant: &str, seq: u64) -> Result<u64, AuditError> {
        /// The two fields counted; the rest of the line is skipped.
        #[derive(serde::Deserialize)]
        struct SeqAndTenant {
            seq: u64,
            tenant: String,
        }
        let _appends_wait = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mut count = 0u64;
        for path in log_files(&self.dir)?.0 {
            let file = File::open(&path).map_err(io_err(&path))?;
            for line in BufReader::new(file).lines() {
                let line = line.map_err(io_err(&path))?;
                let Ok(record) = serde_json::from_str::<SeqAndTenant>(&line) else { continue };
                if record.tenant == tenant {
                    count += 1;
                }
                if record.seq == seq {
                    return if record.tenant == tenant {
                        Ok(count)
                    } else {
                        Err(AuditError::Invalid {
                            field: "seq",
                            reason: format!("record {seq} is not of tenant {tenant:?}"),
                        })
                    };
                }
            }
        }
        Err(AuditError::Invalid { field: "seq", reason: format!("no record {seq} in the log") })
    }

    fn rotate(&self, state: &mut State) -> Result<(), AuditError> {
        if let Some(file) = state.file.take() {
            file.sync_all().map_err(io_err(&self.dir.join(ACTIVE_FILE)))?;
        }
        let from = self.dir.join(ACTIVE_FILE);
        let to = self.dir.join(format!("audit.{:06}.jsonl", state.next_segment));
        std::fs::rename(&from, &to).map_err(io_err(&to))?;
        sync_dir(&self.dir);
        state.next_segment += 1;
        state.bytes = 0;
        Ok(())
    }

    /// Forces every appended record to stable storage.
    ///
    /// # Errors
    /// [`AuditError::Io`] if the file cannot be synced.
    pub fn sync(&self) -> Result<(), AuditError> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match &state.file {
            Some(file) => file.sync_all().map_err(io_err(&self.dir.join(ACTIVE_FILE))),
            None => Ok(()),
        }
    }
}

/// The last record of `path`, read from the end; `None` if the file is empty.
fn last_record(path: &Path) -> Result<Option<AuditRecord>, AuditError> {
    let mut file = File::open(path).map_err(io_err(path))?;
    let len = file.metadata().map_err(io_err(path))?.len();
    if len == 0 {
        return Ok(None);
    }
    let damaged = |kind, message: String| {
        AuditError::Damaged(AuditProblem {
            kind,
            file: path.to_owned(),
            line: 0,
            seq: None,
            message,
        })
    };
    // Read backwards until the newline before the last line is in the buffer.
    let mut tail: Vec<u8> = Vec::new();
    let mut pos = len;
    let start = loop {
        let chunk = pos.min(8192);
        pos -= chunk;
        let mut buf = vec![0u8; chunk as usize];
        file.seek(SeekFrom::Start(pos)).map_err(io_err(path))?;
        file.read_exact(&mut buf).map_err(io_err(path))?;
        buf.extend_from_slice(&tail);
        tail = buf;
        let body = &tail[..tail.len() - 1];
        if let Some(nl) = body.iter().rposition(|b| *b == b'\n') {
            break nl + 1;
        }
        if pos == 0 {
            break 0;
        }
        if len - pos > MAX_LINE_BYTES {
            return Err(damaged(
                AuditProblemKind::Malformed,
                format!("last line is longer than {MAX_LINE_BYTES} bytes"),
            ));
        }
    };
    let line = &tail[start..];
    let Some(line) = line.strip_suffix(b"\n") else {
        return Err(damaged(
            AuditProblemKind::TruncatedLine,
            "the last line has no newline: a write was cut short".into(),
        ));
    };
    let record: AuditRecord = serde_json::from_slice(line)
        .map_err(|e| damaged(AuditProblemKind::Malformed, format!("last line: {e}")))?;
    if record.compute_hash() != record.hash {
        return Err(damaged(
            AuditProblemKind::HashMismatch,
            format!("the last record (seq {}) does not match its hash", record.seq),
        ));
    }
    Ok(Some(record))
}

/// The files of the audit log of the store at `store_root`, oldest first (rotated files by
/// number, then the active one): what [`verify`] reads, for readers that list records.
///
/// # Errors
/// [`AuditError::NotFound`] if the store has no audit log; [`AuditError::Io`] if the directory
/// cannot be read.
pub fn files(store_root: impl AsRef<Path>) -> Result<Vec<PathBuf>, AuditError> {
    let dir = store_root.as_ref().join(AUDIT_DIR);
    if !dir.is_dir() {
        return Err(AuditError::NotFound { path: dir });
    }
    Ok(log_files(&dir)?.0)
}

/// Recomputes the chain of the audit log of the store at `store_root` and reports the first
/// bad position, if any. Reads every file once, line by line (memory: one line).
///
/// # Errors
/// [`AuditError::NotFound`] if the store has no audit log; [`AuditError::Io`] if a file
/// cannot be read. A damaged log is not an error: see [`AuditReport::problem`].
pub fn verify(store_root: impl AsRef<Path>) -> Result<AuditReport, AuditError> {
    let dir = store_root.as_ref().join(AUDIT_DIR);
    if !dir.is_dir() {
        return Err(AuditError::NotFound { path: dir });
    }
    let (files, _) = log_files(&dir)?;
    if files.is_empty() {
        return Err(AuditError::NotFound { path: dir.join(ACTIVE_FILE) });
    }
    let mut report = AuditReport {
        records: 0,
        head: AuditHead::genesis(),
        files: files.clone(),
        problem: None,
        anchors_checked: 0,
    };
    let anchors = read_anchors(store_root.as_ref())?;
    // A seq gap: the problem as first seen, and the seq whose later appearance would make
    // it a reordering rather than a removal.
    let mut gap: Option<(AuditProblem, u64)> = None;
    let mut line = Vec::new();
    'files: for (index, path) in files.iter().enumerate() {
        let file = File::open(path).map_err(io_err(path))?;
        let mut reader = BufReader::new(file);
        let mut line_no = 0u64;
        loop {
            line.clear();
            let n = (&mut reader)
                .take(MAX_LINE_BYTES + 1)
                .read_until(b'\n', &mut line)
                .map_err(io_err(path))?;
            if n == 0 {
                break;
            }
            line_no += 1;
            let problem = |kind, seq, message: String| AuditProblem {
                kind,
                file: path.clone(),
                line: line_no,
                seq,
                message,
            };
            if let Some((first, wanted)) = &mut gap {
                // Only looking for the missing seq now.
                let seq = serde_json::from_slice::<AuditRecord>(line.trim_ascii_end())
                    .ok()
                    .map(|r| r.seq);
                if seq == Some(*wanted) {
                    first.kind = AuditProblemKind::Reordered;
                    first.message.push_str(&format!(
                        "; seq {wanted} appears later, at line {line_no} of {}",
                        path.display()
                    ));
                    break 'files;
                }
                continue;
            }
            let Some(body) = line.strip_suffix(b"\n") else {
                let last = index + 1 == files.len();
                report.problem = Some(problem(
                    if last {
                        AuditProblemKind::TruncatedLine
                    } else {
                        AuditProblemKind::Malformed
                    },
                    None,
                    format!("the line has no newline after {} bytes: a write was cut short", n),
                ));
                break 'files;
            };
            let record: AuditRecord = match serde_json::from_slice(body) {
                Ok(r) => r,
                Err(e) => {
                    report.problem = Some(problem(
                        AuditProblemKind::Malformed,
                        None,
                        format!("not a record: {e}"),
                    ));
                    break 'files;
                }
            };
            let seq = Some(record.seq);
            let computed = record.compute_hash();
            if computed != record.hash {
                report.problem = Some(problem(
                    AuditProblemKind::HashMismatch,
                    seq,
                    format!(
                        "the record was edited: its content hashes to {computed}, it says {}",
                        record.hash
                    ),
                ));
                break 'files;
            }
            let expected = report.head.seq + 1;
            if record.seq != expected {
                let message = format!("expected seq {expected}, found seq {}", record.seq);
                if record.seq < expected {
                    report.problem = Some(problem(AuditProblemKind::Reordered, seq, message));
                    break 'files;
                }
                gap = Some((problem(AuditProblemKind::MissingRecord, seq, message), expected));
                continue;
            }
            if record.prev_hash != report.head.hash {
                report.problem = Some(problem(
                    AuditProblemKind::BrokenLink,
                    seq,
                    format!(
                        "prev_hash {} is not the hash of seq {} ({}): that record was replaced, \
                         or records from another chain were inserted",
                        record.prev_hash, report.head.seq, report.head.hash
                    ),
                ));
                break 'files;
            }
            for (hash, data_file) in anchors.get(&record.seq).into_iter().flatten() {
                report.anchors_checked += 1;
                if *hash != record.hash {
                    report.problem = Some(problem(
                        AuditProblemKind::AnchorMismatch,
                        seq,
                        format!(
                            "data file {} anchored seq {} with hash {hash}, the log has {}: the \
                             log was rewritten from here or earlier",
                            data_file.display(),
                            record.seq,
                            record.hash
                        ),
                    ));
                    break 'files;
                }
            }
            report.records += 1;
            report.head = AuditHead { seq: record.seq, hash: record.hash };
        }
    }
    if let Some((mut first, wanted)) = gap {
        if first.kind == AuditProblemKind::MissingRecord {
            first.message.push_str(&format!("; seq {wanted} was removed"));
        }
        report.problem = Some(first);
    }
    if report.problem.is_none()
        && let Some((&seq, found)) = anchors.range(report.head.seq + 1..).next()
        && let Some((hash, data_file)) = found.first()
    {
        let last = report.files.last().cloned().unwrap_or_default();
        report.problem = Some(AuditProblem {
            kind: AuditProblemKind::MissingTail,
            file: last,
            line: 0,
            seq: Some(seq),
            message: format!(
                "data file {} anchored seq {seq} (hash {hash}), but the log ends at seq {}: \
                 records after it were removed",
                data_file.display(),
                report.head.seq
            ),
        });
    }
    Ok(report)
}

/// The metadata key under which each data file records the audit chain's head when it was
/// written (`{"seq": N, "hash": "..."}`), so a rewritten or shortened log no longer matches
/// the data written while it was whole.
pub const ANCHOR_KEY: &str = "mission.audit.head";

/// The anchor of `head` as a data file's metadata pair; nothing for an empty log.
pub fn anchor_metadata(head: &AuditHead) -> Vec<(String, String)> {
    if head.seq == 0 {
        return Vec::new();
    }
    let value = serde_json::json!({"seq": head.seq, "hash": head.hash}).to_string();
    vec![(ANCHOR_KEY.to_owned(), value)]
}

/// Every anchor in the store's data files: seq -> each (hash, file that recorded it).
type Anchors = BTreeMap<u64, Vec<(String, PathBuf)>>;

fn read_anchors(store_root: &Path) -> Result<Anchors, AuditError> {
    let store = mission_store::Store::open(store_root).map_err(|e| AuditError::Io {
        path: store_root.to_owned(),
        source: io::Error::other(e.to_string()),
    })?;
    let found = store.file_metadata(ANCHOR_KEY).map_err(|e| AuditError::Io {
        path: store_root.to_owned(),
        source: io::Error::other(e.to_string()),
    })?;
    let mut anchors = Anchors::new();
    for (path, value) in found {
        let Some(value) = value else { continue };
        let parsed: Option<(u64, String)> = serde_json::from_str::<Value>(&value)
            .ok()
            .and_then(|v| Some((v.get("seq")?.as_u64()?, v.get("hash")?.as_str()?.to_owned())));
        if let Some((seq, hash)) = parsed {
            anchors.entry(seq).or_default().push((hash, path));
        }
    }
    Ok(anchors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_detail_with_its_own_kind_key_keeps_the_line_verifiable() {
        let dir = std::env::temp_dir().join(format!("mission-audit-kind-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let log = AuditLog::open(&dir).expect("open");
        let detail = serde_json::json!({"where": {"agent": "a", "kind": "tool_call"}, "kind": "x"});
        let record = log.append(kind::DIRECTIVE_CHANGE, "mcp:admin", "*", detail).expect("append");
        let parsed: AuditRecord =
            serde_json::from_str(record.to_line().trim_end()).expect("the line parses");
        assert_eq!(parsed, record);
        assert!(verify(&dir).expect("verify").is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_tenants_sequence_counts_its_own_records_only_across_rotated_files() {
        let dir = std::env::temp_dir().join(format!("mission-audit-tenant-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let config = AuditConfig { max_file_bytes: 600, sync: SyncPolicy::EveryRecord };
        let log = AuditLog::open_with(&dir, config).expect("open");
        let append = |tenant: &str| {
            log.append(kind::DIRECTIVE_CHANGE, "mcp:operator", tenant, Value::Null)
                .expect("append")
                .seq
        };
        // acme's records are its 1st, 2nd and 3rd whatever globex did in between.
        let mut acme = Vec::new();
        for busy in [0, 5, 1] {
            for _ in 0..busy {
                append("globex");
            }
            acme.push(append("acme"));
        }
        assert!(log_files(log.dir()).expect("files").0.len() > 1, "the log was rotated");
        let seqs: Vec<u64> =
            acme.iter().map(|&s| log.tenant_seq("acme", s).expect("acme's record")).collect();
        assert_eq!(seqs, [1, 2, 3]);
        assert_ne!(acme, [1, 2, 3], "the global sequence counts globex's records too");
        assert!(log.tenant_seq("globex", acme[0]).is_err(), "not globex's record");
        assert!(log.tenant_seq("acme", 10_000).is_err(), "no such record");
        assert!(verify(&dir).expect("verify").is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn canonical_sorts_keys_and_round_trips() {
        let v: Value =
            serde_json::from_str(r#"{"b":[1,2.5,{"z":null,"a":"é\n"}],"a":true}"#).expect("json");
        let mut out = String::new();
        canonical(&v, &mut out);
        assert_eq!(out, r#"{"a":true,"b":[1,2.5,{"a":"é\n","z":null}]}"#);
        let again: Value = serde_json::from_str(&out).expect("json");
        let mut out2 = String::new();
        canonical(&again, &mut out2);
        assert_eq!(out, out2);
    }

    #[test]
    fn line_is_canonical_and_parses_back() {
        let mut r = AuditRecord {
            seq: 1,
            time_ns: 5,
            kind: "k".into(),
            actor: "a".into(),
            tenant: "t".into(),
            detail: serde_json::json!({"y": 1, "x": [true]}),
            prev_hash: GENESIS_HASH.into(),
            hash: String::new(),
        };
        r.hash = r.compute_hash();
        let line = r.to_line();
        let v: Value = serde_json::from_str(&line).expect("json");
        let mut canon = String::new();
        canonical(&v, &mut canon);
        assert_eq!(canon, line);
        let back: AuditRecord = serde_json::from_str(&line).expect("record");
        assert_eq!(back, r);
        assert_eq!(back.compute_hash(), r.hash);
    }
}
