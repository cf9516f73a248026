//! The span exporter's bounded disk spill: batches the backend cannot take now wait in a
//! directory of append-only segment files and are replayed, oldest first, when it takes them
//! again (see [`OtlpConfig::spill_dir`](super::OtlpConfig::spill_dir)).
//!
//! # On disk
//!
//! `seg-<16 hex digits>.spill` files, numbered in the order they were written, each a sequence
//! of records: a 16-byte header (magic `MSP1`, payload length, item count, CRC-32 of the item
//! count and the payload; little endian) and the payload (one encoded batch). A `cursor` file
//! says how far the oldest segment has been replayed (`<segment> <offset>`); it is rewritten
//! (write and rename) after every batch the backend acknowledged, so a restart sends again at
//! most the batch that was acknowledged just before a kill. A fully replayed segment is deleted.
//! A `lock` file held with an exclusive lock keeps two exporters off one directory.
//!
//! When the exporter starts, every segment is read and checked. A record cut short (the
//! process was killed while writing it) or one whose length cannot be right ends its segment:
//! the file is truncated there and one torn record is counted. A record whose CRC does not
//! match is skipped and counted, and reading goes on after it. Neither panics.
//!
//! Nothing is `fsync`ed: the spill survives the process (a crash, `kill -9`), not the loss of
//! the machine's power.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Smallest [`spill_max_bytes`](super::OtlpConfig::spill_max_bytes): 64 KiB.
pub const MIN_SPILL_BYTES: u64 = 64 * 1024;
/// Largest [`spill_max_bytes`](super::OtlpConfig::spill_max_bytes): 1 TiB.
pub const MAX_SPILL_BYTES: u64 = 1 << 40;
/// Default [`spill_max_bytes`](super::OtlpConfig::spill_max_bytes): 256 MiB.
pub const DEFAULT_SPILL_BYTES: u64 = 256 * 1024 * 1024;

const MAGIC: u32 = u32::from_le_bytes(*b"MSP1");
const HEADER: u64 = 16;
/// Largest segment file (a single larger record gets a segment of its own).
const MAX_SEGMENT: u64 = 64 * 1024 * 1024;

/// One segment file and what of it is still to replay.
#[derive(Debug)]
struct Segment {
    seq: u64,
    /// Bytes in the file.
    size: u64,
    /// Where the next record to replay starts.
    read_at: u64,
    /// Records and items not replayed yet.
    records: u64,
    items: u64,
    /// Records found corrupt when the spill was opened (already counted): skipped when read.
    bad: Vec<(u64, u64)>,
}

/// What [`Spill::open`] found left by an earlier exporter.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Recovered {
    pub(crate) records: u64,
    pub(crate) items: u64,
    pub(crate) torn_records: u64,
}

/// What [`Spill::append`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Appended {
    /// Whether the record was written (`false`: larger than the whole spill).
    pub(crate) written: bool,
    /// Oldest records (and their items) dropped to make room.
    pub(crate) dropped_records: u64,
    pub(crate) dropped_items: u64,
}

/// The oldest record still to replay.
#[derive(Debug)]
pub(crate) enum Head {
    /// Its item count and payload.
    Record { items: u64, payload: Vec<u8> },
    /// It is corrupt (its CRC does not match, or it is cut short); `pop` skips it (with the
    /// rest of its segment when its length cannot be trusted). `counted`:
    /// already counted as torn when the spill was opened.
    Corrupt { counted: bool },
}

/// A bounded spill directory. Not shared: the span exporter's thread owns it.
#[derive(Debug)]
pub(crate) struct Spill {
    dir: PathBuf,
    max_bytes: u64,
    segment_target: u64,
    segments: VecDeque<Segment>,
    /// The segment appended to (the last one), when open.
    writer: Option<File>,
    /// The oldest segment, open for reading.
    reader: Option<(u64, File)>,
    /// Bytes of every segment file.
    bytes: u64,
    next_seq: u64,
    _lock: File,
}

fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("seg-{seq:016x}.spill"))
}

fn crc(items: u64, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&(items as u32).to_le_bytes());
    h.update(payload);
    h.finalize()
}

fn header_of(bytes: &[u8; HEADER as usize]) -> (u32, u64, u64, u32) {
    let word = |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    (word(0), u64::from(word(4)), u64::from(word(8)), word(12))
}

impl Spill {
    /// Opens (creating it if needed) the spill directory `dir` holding at most `max_bytes`,
    /// locks it, and reads what an earlier exporter left in it.
    ///
    /// # Errors
    /// The directory cannot be created, locked (another exporter uses it) or written, or a
    /// segment cannot be read; the message names the path.
    pub(crate) fn open(dir: &Path, max_bytes: u64) -> Result<(Self, Recovered), String> {
        let fail = |what: &str, path: &Path, e: std::io::Error| {
            format!("spill_dir {}: cannot {what} {}: {e}", dir.display(), path.display())
        };
        std::fs::create_dir_all(dir).map_err(|e| fail("create", dir, e))?;
        let lock_path = dir.join("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| fail("write", &lock_path, e))?;
        lock.try_lock().map_err(|e| {
            format!("spill_dir {} is in use by another exporter ({e})", dir.display())
        })?;
        // A write probe: a read-only directory is an error now, not a loss later.
        let probe = dir.join("probe.tmp");
        std::fs::write(&probe, b"probe").map_err(|e| fail("write", &probe, e))?;
        let _ = std::fs::remove_file(&probe);

        let cursor = std::fs::read_to_string(dir.join("cursor")).ok().and_then(|text| {
            let (seq, offset) = text.trim().split_once(' ')?;
            Some((u64::from_str_radix(seq, 16).ok()?, offset.parse::<u64>().ok()?))
        });
        let mut seqs = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| fail("read", dir, e))? {
            let entry = entry.map_err(|e| fail("read", dir, e))?;
            let name = entry.file_name();
            let Some(seq) = name
                .to_str()
                .and_then(|n| n.strip_prefix("seg-")?.strip_suffix(".spill"))
                .and_then(|hex| u64::from_str_radix(hex, 16).ok())
            else {
                continue;
            };
            seqs.push(seq);
        }
        seqs.sort_unstable();
        let mut recovered = Recovered::default();
        let mut segments = VecDeque::new();
        let mut bytes = 0;
        for seq in &seqs {
            let path = segment_path(dir, *seq);
            let start = match cursor {
                Some((c, _)) if *seq < c => {
                    // Replayed before the restart; its deletion did not happen.
                    let _ = std::fs::remove_file(&path);
                    continue;
                }
                Some((c, offset)) if *seq == c => offset,
                _ => 0,
            };
            let segment =
                scan(&path, *seq, start, &mut recovered).map_err(|e| fail("read", &path, e))?;
            if segment.records == 0 {
                let _ = std::fs::remove_file(&path);
                continue;
            }
            bytes += segment.size;
            segments.push_back(segment);
        }
        // Never below the cursor's segment: a new segment numbered below it would be taken
        // for one already replayed.
        let next_seq = seqs.last().map_or(0, |s| s + 1).max(cursor.map_or(0, |(c, _)| c));
        let spill = Self {
            dir: dir.to_owned(),
            max_bytes,
            segment_target: (max_bytes / 8).clamp(HEADER, MAX_SEGMENT),
            segments,
            writer: None,
            reader: None,
            bytes,
            next_seq,
            _lock: lock,
        };
        Ok((spill, recovered))
    }

    /// Whether nothing waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// Records waiting.
    pub(crate) fn records(&self) -> u64 {
        self.segments.iter().map(|s| s.records).sum()
    }

    /// Items waiting.
    pub(crate) fn items(&self) -> u64 {
        self.segments.iter().map(|s| s.items).sum()
    }

    /// Bytes of the segment files.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Appends one record of `items` items, first dropping the oldest segments while the spill
    /// would grow past its bound. A record larger than the whole spill is not written.
    ///
    /// # Errors
    /// The segment cannot be created or written; what was written of the record is cut off
    /// again, so the spill stays readable.
    pub(crate) fn append(&mut self, items: u64, payload: &[u8]) -> std::io::Result<Appended> {
        let len = HEADER + payload.len() as u64;
        let mut done = Appended::default();
        if len > self.max_bytes || payload.len() > u32::MAX as usize || items > u64::from(u32::MAX)
        {
            return Ok(done);
        }
        while self.bytes + len > self.max_bytes {
            let Some(oldest) = self.segments.pop_front() else { break };
            done.dropped_records += oldest.records;
            done.dropped_items += oldest.items;
            self.bytes -= oldest.size;
            if self.reader.as_ref().is_some_and(|(seq, _)| *seq == oldest.seq) {
                self.reader = None;
            }
            if self.segments.is_empty() {
                self.writer = None;
            }
            let _ = std::fs::remove_file(segment_path(&self.dir, oldest.seq));
        }
        let full = self.segments.back().is_none_or(|s| s.size >= self.segment_target);
        if self.writer.is_none() || full {
            let seq = self.next_seq;
            let file = OpenOptions::new()
                .create_new(true)
                .append(true)
                .open(segment_path(&self.dir, seq))?;
            self.next_seq += 1;
            self.writer = Some(file);
            self.segments.push_back(Segment {
                seq,
                size: 0,
                read_at: 0,
                records: 0,
                items: 0,
                bad: Vec::new(),
            });
        }
        let mut record = Vec::with_capacity(len as usize);
        record.extend_from_slice(&MAGIC.to_le_bytes());
        record.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        record.extend_from_slice(&(items as u32).to_le_bytes());
        record.extend_from_slice(&crc(items, payload).to_le_bytes());
        record.extend_from_slice(payload);
        let (Some(file), Some(segment)) = (self.writer.as_mut(), self.segments.back_mut()) else {
            return Err(std::io::Error::other("no segment to write to"));
        };
        if let Err(e) = file.write_all(&record) {
            // Cut off what was written of it; a new segment takes the next record.
            let _ = file.set_len(segment.size);
            self.writer = None;
            if segment.records == 0 {
                let seq = segment.seq;
                self.segments.pop_back();
                let _ = std::fs::remove_file(segment_path(&self.dir, seq));
            }
            return Err(e);
        }
        segment.size += len;
        segment.records += 1;
        segment.items += items;
        self.bytes += len;
        done.written = true;
        Ok(done)
    }

    /// The oldest record still to replay, `None` when nothing waits.
    ///
    /// # Errors
    /// The segment cannot be read.
    pub(crate) fn head(&mut self) -> std::io::Result<Option<Head>> {
        let Some(segment) = self.segments.front() else { return Ok(None) };
        if segment.bad.iter().any(|(at, _)| *at == segment.read_at) {
            return Ok(Some(Head::Corrupt { counted: true }));
        }
        if self.reader.as_ref().is_none_or(|(seq, _)| *seq != segment.seq) {
            self.reader = Some((segment.seq, File::open(segment_path(&self.dir, segment.seq))?));
        }
        let Some((_, file)) = self.reader.as_mut() else { return Ok(None) };
        file.seek(SeekFrom::Start(segment.read_at))?;
        let mut header = [0u8; HEADER as usize];
        let remaining = segment.size - segment.read_at;
        if remaining < HEADER || file.read_exact(&mut header).is_err() {
            return Ok(Some(Head::Corrupt { counted: false }));
        }
        let (magic, len, items, sum) = header_of(&header);
        if magic != MAGIC || HEADER + len > remaining {
            return Ok(Some(Head::Corrupt { counted: false }));
        }
        let mut payload = vec![0; len as usize];
        file.read_exact(&mut payload)?;
        if crc(items, &payload) != sum {
            return Ok(Some(Head::Corrupt { counted: false }));
        }
        Ok(Some(Head::Record { items, payload }))
    }

    /// Takes the oldest record off (after it was replayed, or found corrupt), deletes its
    /// segment when that was the last record in it, and records how far replay got.
    pub(crate) fn pop(&mut self) {
        let step = self.step();
        let Some(segment) = self.segments.front_mut() else { return };
        match step {
            Some((len, items)) if segment.records > 1 => {
                segment.read_at += len;
                segment.records -= 1;
                segment.items = segment.items.saturating_sub(items);
                let (seq, at) = (segment.seq, segment.read_at);
                self.write_cursor(seq, at);
            }
            _ => {
                // Its last record (or one whose length is lost): the segment is done.
                let Some(done) = self.segments.pop_front() else { return };
                self.bytes -= done.size;
                if self.segments.is_empty() {
                    self.writer = None;
                }
                self.reader = None;
                let next = self.segments.front().map_or(self.next_seq, |s| s.seq);
                self.write_cursor(next, 0);
                let _ = std::fs::remove_file(segment_path(&self.dir, done.seq));
            }
        }
    }

    /// The length and item count of the oldest record (0 items for one counted corrupt when
    /// the spill was opened); `None` when its header cannot be read or cannot be right.
    fn step(&mut self) -> Option<(u64, u64)> {
        let segment = self.segments.front_mut()?;
        if let Some(i) = segment.bad.iter().position(|(at, _)| *at == segment.read_at) {
            let (_, len) = segment.bad.remove(i);
            return Some((len, 0));
        }
        let (seq, at, size) = (segment.seq, segment.read_at, segment.size);
        if self.reader.as_ref().is_none_or(|(s, _)| *s != seq) {
            self.reader = Some((seq, File::open(segment_path(&self.dir, seq)).ok()?));
        }
        let (_, file) = self.reader.as_mut()?;
        let mut header = [0u8; HEADER as usize];
        file.seek(SeekFrom::Start(at)).ok()?;
        file.read_exact(&mut header).ok()?;
        let (magic, len, items, _) = header_of(&header);
        (magic == MAGIC && at + HEADER + len <= size).then_some((HEADER + len, items))
    }

    fn write_cursor(&self, seq: u64, offset: u64) {
        let tmp = self.dir.join("cursor.tmp");
        if std::fs::write(&tmp, format!("{seq:016x} {offset}\n")).is_ok() {
            let _ = std::fs::rename(&tmp, self.dir.join("cursor"));
        }
    }
}

/// Reads one segment from `start`, checking every record: truncates a torn tail, notes
/// records whose CRC does not match, and counts both in `recovered`.
fn scan(path: &Path, seq: u64, start: u64, recovered: &mut Recovered) -> std::io::Result<Segment> {
    let mut file = OpenOptions::new().read(true).write(true).open(path)?;
    let size = file.metadata()?.len();
    let mut segment =
        Segment { seq, size, read_at: start.min(size), records: 0, items: 0, bad: Vec::new() };
    let mut at = segment.read_at;
    file.seek(SeekFrom::Start(at))?;
    let mut reader = std::io::BufReader::new(file);
    let mut payload = Vec::new();
    while at < size {
        let mut header = [0u8; HEADER as usize];
        let torn = if size - at < HEADER {
            true
        } else {
            reader.read_exact(&mut header)?;
            let (magic, len, _, _) = header_of(&header);
            magic != MAGIC || HEADER + len > size - at
        };
        if torn {
            recovered.torn_records += 1;
            drop(reader);
            OpenOptions::new().write(true).open(path)?.set_len(at)?;
            segment.size = at;
            break;
        }
        let (_, len, items, sum) = header_of(&header);
        payload.resize(len as usize, 0);
        reader.read_exact(&mut payload)?;
        if crc(items, &payload) == sum {
            segment.records += 1;
            segment.items += items;
            recovered.records += 1;
            recovered.items += items;
        } else {
            recovered.torn_records += 1;
            segment.records += 1;
            segment.bad.push((at, HEADER + len));
        }
        at += HEADER + len;
    }
    Ok(segment)
}

/// How spans are written to the spill: one batch as an OTLP `ScopeSpans` message (protobuf),
/// read back into the exporter's own spans with `scope`. Mission Control's spans carry no
/// span events or links, so those are not written.
pub(crate) fn span_codec(
    scope: opentelemetry::InstrumentationScope,
) -> super::delivery::SpillCodec<opentelemetry_sdk::trace::SpanData> {
    use opentelemetry_proto::tonic::trace::v1::{ScopeSpans, Span};
    use prost::Message;
    super::delivery::SpillCodec {
        encode: Box::new(|spans| {
            ScopeSpans {
                spans: spans.iter().cloned().map(Span::from).collect(),
                ..ScopeSpans::default()
            }
            .encode_to_vec()
        }),
        decode: Box::new(move |bytes| {
            let message = ScopeSpans::decode(bytes).map_err(|e| e.to_string())?;
            message.spans.into_iter().map(|s| span_data(s, &scope)).collect()
        }),
    }
}

/// A spilled span back as the exporter's span.
fn span_data(
    span: opentelemetry_proto::tonic::trace::v1::Span,
    scope: &opentelemetry::InstrumentationScope,
) -> Result<opentelemetry_sdk::trace::SpanData, String> {
    use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId};
    use opentelemetry_proto::tonic::trace::v1::{span::SpanKind as Kind, status::StatusCode};
    let id16: [u8; 16] =
        span.trace_id.as_slice().try_into().map_err(|_| "a trace id of 16 bytes")?;
    let id8 = |b: &[u8]| -> Result<[u8; 8], String> {
        b.try_into().map_err(|_| "a span id of 8 bytes".to_owned())
    };
    let parent = if span.parent_span_id.is_empty() {
        SpanId::INVALID
    } else {
        SpanId::from_bytes(id8(&span.parent_span_id)?)
    };
    let time = |nanos: u64| std::time::UNIX_EPOCH + std::time::Duration::from_nanos(nanos);
    let status = match span.status {
        Some(s) if s.code == StatusCode::Error as i32 => Status::error(s.message),
        Some(s) if s.code == StatusCode::Ok as i32 => Status::Ok,
        _ => Status::Unset,
    };
    let kind = match Kind::try_from(span.kind) {
        Ok(Kind::Server) => SpanKind::Server,
        Ok(Kind::Client) => SpanKind::Client,
        Ok(Kind::Producer) => SpanKind::Producer,
        Ok(Kind::Consumer) => SpanKind::Consumer,
        _ => SpanKind::Internal,
    };
    let trace_state = opentelemetry::trace::TraceState::from_key_value(
        span.trace_state.split(',').filter_map(|kv| kv.split_once('=')),
    )
    .unwrap_or_default();
    Ok(opentelemetry_sdk::trace::SpanData {
        span_context: SpanContext::new(
            TraceId::from_bytes(id16),
            SpanId::from_bytes(id8(&span.span_id)?),
            TraceFlags::new((span.flags & 0xff) as u8),
            false,
            trace_state,
        ),
        parent_span_id: parent,
        parent_span_is_remote: span.flags & 0x200 != 0,
        span_kind: kind,
        name: span.name.into(),
        start_time: time(span.start_time_unix_nano),
        end_time: time(span.end_time_unix_nano),
        attributes: span.attributes.into_iter().filter_map(key_value).collect(),
        dropped_attributes_count: span.dropped_attributes_count,
        events: Default::default(),
        links: Default::default(),
        status,
        instrumentation_scope: scope.clone(),
    })
}

fn key_value(
    kv: opentelemetry_proto::tonic::common::v1::KeyValue,
) -> Option<opentelemetry::KeyValue> {
    use opentelemetry_proto::tonic::common::v1::any_value::Value as V;
    let value = match kv.value?.value? {
        V::StringValue(s) => opentelemetry::Value::from(s),
        V::BoolValue(b) => opentelemetry::Value::Bool(b),
        V::IntValue(i) => opentelemetry::Value::I64(i),
        V::DoubleValue(d) => opentelemetry::Value::F64(d),
        // Not made by Mission Control's spans; kept as text rather than lost.
        other => opentelemetry::Value::from(format!("{other:?}")),
    };
    Some(opentelemetry::KeyValue::new(kv.key, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("mission-spill-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn drain(spill: &mut Spill) -> Vec<(u64, Vec<u8>)> {
        let mut out = Vec::new();
        while let Some(head) = spill.head().expect("read") {
            if let Head::Record { items, payload } = head {
                out.push((items, payload));
            }
            spill.pop();
        }
        out
    }

    #[test]
    fn a_span_comes_back_from_the_spill_as_it_went_in() {
        use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId};
        let scope = opentelemetry::InstrumentationScope::builder("mission-control").build();
        let span = opentelemetry_sdk::trace::SpanData {
            span_context: SpanContext::new(
                TraceId::from_bytes([7; 16]),
                SpanId::from_bytes([8; 8]),
                TraceFlags::SAMPLED,
                false,
                Default::default(),
            ),
            parent_span_id: SpanId::from_bytes([9; 8]),
            parent_span_is_remote: false,
            span_kind: SpanKind::Client,
            name: "chat gpt-4o".into(),
            start_time: std::time::UNIX_EPOCH + std::time::Duration::from_nanos(1_234_567_891),
            end_time: std::time::UNIX_EPOCH + std::time::Duration::from_nanos(2_234_567_891),
            attributes: vec![
                opentelemetry::KeyValue::new("gen_ai.request.model", "gpt-4o"),
                opentelemetry::KeyValue::new("gen_ai.usage.input_tokens", 812_i64),
                opentelemetry::KeyValue::new("gen_ai.usage.cost", 0.25),
                opentelemetry::KeyValue::new("cached", true),
            ],
            dropped_attributes_count: 2,
            events: Default::default(),
            links: Default::default(),
            status: Status::error("upstream 503"),
            instrumentation_scope: scope.clone(),
        };
        let codec = span_codec(scope);
        let bytes = (codec.encode)(std::slice::from_ref(&span));
        let back = (codec.decode)(&bytes).expect("decodes");
        assert_eq!(back, vec![span]);
        assert!((codec.decode)(b"\xff\xff not protobuf").is_err());
    }

    #[test]
    fn records_come_back_in_order_and_across_a_reopen() {
        let d = dir("order");
        let (mut spill, found) = Spill::open(&d, MIN_SPILL_BYTES).expect("open");
        assert_eq!(found, Recovered::default());
        for i in 0..20u64 {
            let done = spill.append(i + 1, &vec![i as u8; 1000]).expect("append");
            assert!(done.written && done.dropped_records == 0, "{i}: {done:?}");
        }
        assert_eq!((spill.records(), spill.items()), (20, 210));
        // Replay three, then "restart".
        for _ in 0..3 {
            assert!(matches!(spill.head(), Ok(Some(Head::Record { .. }))));
            spill.pop();
        }
        drop(spill);
        let (mut spill, found) = Spill::open(&d, MIN_SPILL_BYTES).expect("reopen");
        assert_eq!((found.records, found.items, found.torn_records), (17, 210 - 6, 0));
        let got = drain(&mut spill);
        assert_eq!(got.iter().map(|(n, _)| *n).collect::<Vec<_>>(), (4..=20).collect::<Vec<_>>());
        assert!(got.iter().all(|(n, p)| p.len() == 1000 && p[0] as u64 == n - 1));
        assert!(spill.is_empty() && spill.bytes() == 0);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_full_spill_drops_its_oldest_records_and_says_how_many() {
        let d = dir("full");
        let (mut spill, _) = Spill::open(&d, MIN_SPILL_BYTES).expect("open");
        let (mut dropped_records, mut dropped_items) = (0, 0);
        for i in 0..200u64 {
            let done = spill.append(2, &[i as u8; 1000]).expect("append");
            assert!(done.written);
            dropped_records += done.dropped_records;
            dropped_items += done.dropped_items;
            assert!(spill.bytes() <= MIN_SPILL_BYTES, "{}", spill.bytes());
        }
        assert!(dropped_records > 0);
        assert_eq!(dropped_records + spill.records(), 200);
        assert_eq!(dropped_items, dropped_records * 2);
        let got = drain(&mut spill);
        // The newest survive, in order.
        let first = 200 - got.len() as u64;
        assert_eq!(first, dropped_records);
        for (k, (_, p)) in got.iter().enumerate() {
            assert_eq!(u64::from(p[0]), (first + k as u64) % 256);
        }
        // Larger than the whole spill: not written.
        let big = spill.append(1, &vec![0; MIN_SPILL_BYTES as usize]).expect("append");
        assert!(!big.written);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_torn_tail_and_a_bad_crc_are_counted_and_the_rest_is_read() {
        let d = dir("torn");
        let (mut spill, _) = Spill::open(&d, MIN_SPILL_BYTES).expect("open");
        for i in 0..5u8 {
            spill.append(1, &[i; 100]).expect("append");
        }
        drop(spill);
        let seg = segment_path(&d, 0);
        let mut bytes = std::fs::read(&seg).expect("read");
        // Flip a payload byte of the second record; cut the last record in half.
        bytes[116 + 16 + 5] ^= 0xff;
        bytes.truncate(bytes.len() - 60);
        std::fs::write(&seg, &bytes).expect("write");
        let (mut spill, found) = Spill::open(&d, MIN_SPILL_BYTES).expect("reopen");
        assert_eq!((found.records, found.items, found.torn_records), (3, 3, 2));
        let got = drain(&mut spill);
        assert_eq!(got.iter().map(|(_, p)| p[0]).collect::<Vec<_>>(), [0, 2, 3]);
        // Another exporter on the same directory is refused while this one holds it.
        let err = Spill::open(&d, MIN_SPILL_BYTES).expect_err("locked");
        assert!(err.contains("in use"), "{err}");
        drop(spill);
        // Garbage in a segment is no panic either: one torn record, and the file is dropped.
        std::fs::write(segment_path(&d, 7), b"not a spill segment at all").expect("write");
        let (spill, found) = Spill::open(&d, MIN_SPILL_BYTES).expect("reopen");
        assert_eq!((found.records, found.torn_records), (0, 1));
        assert!(spill.is_empty());
        let _ = std::fs::remove_dir_all(&d);
    }
}
