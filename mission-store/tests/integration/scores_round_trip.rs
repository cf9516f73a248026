//! Scores through the store: written as typed columns (schema version 2), read back by the one
//! decoder, by `Store::scores` and the thread view; files of version 1 (without the score
//! columns) still read, their score columns null.

use mission_core::{Event, EventBody, Score, ScoreSource, SpanId, Symbol, Timestamp};
use mission_store::schema::{COLUMNS_BY_VERSION, META_SCHEMA_VERSION, col, events_schema};
use mission_store::{EventFile, Store, StoreConfig};
use parquet::file::metadata::KeyValue;

use crate::{TempDir, half_past_last_hour, thread_events, write, write_file};

/// `thread_events` plus two scores of its thread: one on the root span, one on the thread.
fn scored_thread(start: u64) -> (Vec<Event>, String, u64) {
    let mut events = thread_events("acme", "support-bot", start);
    let root = events[0].clone();
    let score = |name: &str, span: SpanId, offset: u64, score: Score| {
        let mut e = root.clone();
        e.name = Symbol::intern(name);
        e.span_id = span;
        e.parent_span_id = SpanId::NONE;
        e.attributes = Default::default();
        e.time = Timestamp(start + offset);
        e.body = EventBody::Score(score);
        e
    };
    let judged = Score::new(0.25)
        .expect("finite")
        .with_label("partly")
        .with_comment("missed the refund policy")
        .with_source(ScoreSource::Llm);
    let thumbs = Score::new(-1.0).expect("finite");
    events.push(score("helpfulness", root.span_id, 4_000_000, judged));
    events.push(score("thumbs", SpanId::NONE, 9_000_000, thumbs));
    (events, root.thread_id.to_string(), root.span_id.0)
}

#[test]
fn scores_round_trip_through_the_store() {
    let dir = TempDir::new("scores");
    let start = half_past_last_hour();
    let (events, thread, root_span) = scored_thread(start);
    write(StoreConfig::at(&dir.0), events);
    let store = Store::open(&dir.0).expect("open");
    let meta = store.file_metadata(META_SCHEMA_VERSION).expect("meta");
    assert!(meta.iter().all(|(_, v)| v.as_deref() == Some("2")), "{meta:?}");

    // The one decoder.
    let mut rows = Vec::new();
    for file in store.files() {
        rows.extend(
            EventFile::open(file).expect("open").rows(None).expect("rows").map(|r| r.expect("row")),
        );
    }
    let scores: Vec<_> = rows.iter().filter(|r| r.kind == "score").collect();
    assert_eq!(scores.len(), 2, "{rows:#?}");
    let helpfulness = scores.iter().find(|r| r.name == "helpfulness").expect("helpfulness");
    assert_eq!(helpfulness.score_value, Some(0.25));
    assert_eq!(helpfulness.score_label.as_deref(), Some("partly"));
    assert_eq!(helpfulness.score_comment.as_deref(), Some("missed the refund policy"));
    assert_eq!(helpfulness.score_source.as_deref(), Some("llm"));
    assert_eq!(helpfulness.span_id, Some(root_span));
    assert_eq!(helpfulness.duration_ns, None, "a score is not a span");
    assert!(rows.iter().filter(|r| r.kind != "score").all(|r| r.score_value.is_none()));

    // The view: newest first, every field.
    let listed = store.scores(store.query()).expect("scores");
    assert_eq!(listed.len(), 2);
    assert_eq!((listed[0].name.as_str(), listed[0].value), ("thumbs", -1.0));
    assert_eq!((listed[0].source.as_str(), listed[0].span_id.as_deref()), ("human", None));
    assert_eq!(listed[1].label.as_deref(), Some("partly"));
    assert_eq!(listed[1].thread_id.as_deref(), Some(thread.as_str()));
    assert_eq!(store.scores(store.query().name("thumbs")).expect("one").len(), 1);
    let summary = store.score_summary(store.query()).expect("summary");
    assert_eq!(summary.len(), 2);
    assert_eq!(
        (summary[0].name.as_str(), summary[0].count, summary[0].mean),
        ("helpfulness", 1, 0.25)
    );

    // The thread view carries them, and lists the root span's score among its events.
    let view = store.thread(&thread).expect("thread");
    assert_eq!(view.scores.len(), 2);
    assert_eq!(view.scores[0].name, "helpfulness");
    assert!(
        view.roots[0]
            .events
            .iter()
            .any(|(_, kind, text)| kind == "score" && text == "helpfulness = 0.25 (partly)")
    );
    assert!(view.loose_events.iter().any(|(_, kind, _)| kind == "score"));
}

#[test]
fn files_of_schema_version_1_still_read() {
    let dir = TempDir::new("scores-v1");
    let start = half_past_last_hour();
    write(StoreConfig::at(&dir.0), thread_events("acme", "a", start));
    let store = Store::open(&dir.0).expect("open");
    let path = store.files()[0].path.clone();
    // Rewrite the file as version 1 wrote it: the first 35 columns, version "1".
    let batch = EventFile::open(&store.files()[0])
        .expect("open")
        .batches(None)
        .expect("batches")
        .next()
        .expect("a batch")
        .expect("read");
    assert_eq!(batch.num_columns(), events_schema().fields().len());
    let v1 = batch.project(&(0..COLUMNS_BY_VERSION[0]).collect::<Vec<_>>()).expect("project");
    std::fs::remove_file(&path).expect("remove");
    write_file(&path, &v1, vec![KeyValue::new(META_SCHEMA_VERSION.into(), "1".to_owned())]);

    let store = Store::open(&dir.0).expect("reopen");
    let mut iter = store.query().iter().expect("query");
    let batches: Vec<_> = iter.by_ref().map(|b| b.expect("batch")).collect();
    assert!(iter.stats().skipped.is_empty(), "{:?}", iter.stats().skipped);
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 5);
    let values = batches[0].column_by_name(col::SCORE_VALUE).expect("padded score column");
    assert_eq!(values.null_count(), values.len());
    // Projections that name only new columns, or mix old and new, read too.
    let n = store.query().columns(&[col::SCORE_LABEL, col::NAME]).count().expect("count");
    assert_eq!(n, 5);
    assert!(store.scores(store.query()).expect("scores").is_empty());
    assert_eq!(store.thread(&batches_thread(&batches)).expect("thread").event_count, 5);
    let rows = EventFile::open(&store.files()[0]).expect("open").rows(None).expect("rows");
    assert!(rows.map(|r| r.expect("row")).all(|r| r.score_source.is_none()));
}

fn batches_thread(batches: &[arrow::array::RecordBatch]) -> String {
    let rows = mission_store::EventRow::from_batch(&batches[0]).expect("rows");
    rows[0].thread_id.clone().expect("thread")
}
