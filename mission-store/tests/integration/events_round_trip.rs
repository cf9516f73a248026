use arrow::array::{Array, AsArray};
use arrow::datatypes::{Float64Type, Int64Type, UInt64Type};
use mission_core::{EventBody, Timestamp};
use mission_store::schema::{META_ACCOUNTING, META_SCHEMA_VERSION, col};
use mission_store::{Store, StoreConfig};

use crate::{TempDir, half_past_last_hour, thread_events, write};

fn text(batch: &arrow::array::RecordBatch, name: &str, row: usize) -> Option<String> {
    let c = batch.column_by_name(name).expect(name);
    let c = arrow::compute::cast(c, &arrow::datatypes::DataType::Utf8).expect("cast");
    let s = c.as_string::<i32>();
    s.is_valid(row).then(|| s.value(row).to_owned())
}

#[test]
fn every_kind_of_event_reads_back_exactly() {
    let dir = TempDir::new("round-trip");
    let start = half_past_last_hour();
    let events = thread_events("acme", "support-bot", start);
    let report = write(StoreConfig::at(&dir.0), events.clone());
    assert_eq!(report.sinks[0].errors, 0, "{:?}", report.sinks);
    let store = Store::open(&dir.0).expect("open");
    assert_eq!(store.files().len(), 1);
    assert!(store.open_report().leftovers.is_empty());
    let batches = store.query().batches().expect("query");
    let batch = arrow::compute::concat_batches(&batches[0].schema(), &batches).expect("concat");
    assert_eq!(batch.num_rows(), events.len());
    // Rows come back sorted by thread, then time: the same order as recorded here.
    let time = batch
        .column_by_name(col::TIME)
        .expect("time")
        .as_primitive::<arrow::datatypes::TimestampNanosecondType>();
    for (row, e) in events.iter().enumerate() {
        assert_eq!(time.value(row) as u64, e.time.0);
        assert_eq!(text(&batch, col::KIND, row).as_deref(), Some(e.kind().as_str()));
        assert_eq!(text(&batch, col::THREAD_ID, row), Some(e.thread_id.to_string()));
        assert_eq!(text(&batch, col::AGENT, row).as_deref(), Some("support-bot"));
        assert_eq!(text(&batch, col::TENANT, row).as_deref(), Some("acme"));
        assert_eq!(text(&batch, col::NAME, row).as_deref(), Some(e.name.as_str()));
        let span_id =
            batch.column_by_name(col::SPAN_ID).expect("span").as_primitive::<UInt64Type>();
        assert_eq!(span_id.value(row), e.span_id.0);
        match &e.body {
            EventBody::Span(s) => {
                let d =
                    batch.column_by_name(col::DURATION_NS).expect("d").as_primitive::<Int64Type>();
                assert_eq!(d.value(row) as u64, s.duration_ns);
                assert_eq!(text(&batch, col::STATUS, row).as_deref(), Some(s.status.as_str()));
            }
            EventBody::Log(l) => {
                assert_eq!(
                    text(&batch, col::LOG_MESSAGE, row).as_deref(),
                    Some(l.message.as_str())
                );
                assert_eq!(text(&batch, col::LOG_LEVEL, row).as_deref(), Some("warn"));
                assert!(batch.column_by_name(col::DURATION_NS).expect("d").is_null(row));
            }
            EventBody::Permission(p) => {
                assert_eq!(text(&batch, col::PERMISSION_DECISION, row).as_deref(), Some("deny"));
                assert_eq!(
                    text(&batch, col::PERMISSION_RESOURCE, row).as_deref(),
                    Some(p.resource.as_str())
                );
                assert_eq!(
                    text(&batch, col::PERMISSION_POLICY, row).as_deref(),
                    Some("no-refunds")
                );
            }
            _ => unreachable!(),
        }
    }
    // LLM fields on the LLM call only.
    let input = batch.column_by_name(col::INPUT_TOKENS).expect("in").as_primitive::<Int64Type>();
    let cost = batch.column_by_name(col::COST).expect("cost").as_primitive::<Float64Type>();
    assert_eq!(input.value(1), 812);
    assert!((cost.value(1) - 0.0002).abs() < 1e-12);
    assert!(input.is_null(0) && input.is_null(2));
    assert_eq!(text(&batch, col::MODEL, 1).as_deref(), Some("gpt-4o-mini"));
    assert_eq!(text(&batch, col::OPERATION, 1).as_deref(), Some("chat"));
    assert_eq!(text(&batch, col::ERROR_MESSAGE, 2).as_deref(), Some("upstream returned 503"));

    // Metadata: schema version and the recorder's accounting at close.
    let file = std::fs::File::open(&store.files()[0].path).expect("file");
    let reader = parquet::file::serialized_reader::SerializedFileReader::new(file).expect("reader");
    use parquet::file::reader::FileReader;
    let kv = reader.metadata().file_metadata().key_value_metadata().cloned().unwrap_or_default();
    let get = |k: &str| kv.iter().find(|e| e.key == k).and_then(|e| e.value.clone());
    assert_eq!(get(META_SCHEMA_VERSION).as_deref(), Some("2"));
    let accounting: serde_json::Value =
        serde_json::from_str(&get(META_ACCOUNTING).expect("accounting")).expect("json");
    assert_eq!(accounting["recorded"], 5);
    assert_eq!(accounting["dropped"], 0);
    let compression = reader.metadata().row_group(0).column(0).compression();
    assert!(matches!(compression, parquet::basic::Compression::ZSTD(_)), "{compression:?}");
}

#[test]
fn thread_tree_and_summaries() {
    let dir = TempDir::new("views");
    let start = Timestamp::now().0 - 60_000_000_000;
    let mut events = thread_events("acme", "support-bot", start);
    let thread_id = events[0].thread_id.to_string();
    events.extend(thread_events("acme", "research-agent", start + 10_000_000));
    write(StoreConfig::at(&dir.0), events);
    let store = Store::open(&dir.0).expect("open");
    let view = store.thread(&thread_id).expect("thread");
    assert_eq!(view.event_count, 5);
    assert_eq!(view.roots.len(), 1);
    let root = &view.roots[0];
    assert_eq!(root.name, "handle_request");
    assert_eq!(
        root.children.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        ["chat", "web_search"]
    );
    assert_eq!(root.children[0].input_tokens, Some(812));
    assert_eq!(root.children[1].status, "error");
    assert_eq!(root.children[1].events.len(), 1, "the log sits in the tool span");
    assert_eq!(root.events.len(), 1, "the permission decision sits in the root span");

    let threads = store.threads(store.query()).expect("threads");
    assert_eq!(threads.len(), 2);
    let mine = threads.iter().find(|t| t.thread_id == thread_id).expect("summary");
    assert_eq!((mine.spans, mine.llm_calls, mine.errors), (3, 1, 1));
    assert_eq!((mine.input_tokens, mine.output_tokens), (812, 64));
    assert_eq!(mine.duration_ns, 5_000_000);
    assert_eq!(mine.agent, "support-bot");
    assert_eq!(mine.tenant, "acme");

    let stats = store
        .operation_stats(
            store.query().time_range(Timestamp(start - 1), Timestamp(start + 3_600_000_000_000)),
            &[mission_store::GroupBy::Operation],
        )
        .expect("stats");
    let chat = stats.iter().find(|s| s.group == ["chat"]).expect("chat");
    assert_eq!(chat.count, 2);
    assert!((chat.p50_ns as f64 - 2_000_000.0).abs() <= 2_000.0);
    let tool = stats.iter().find(|s| s.group == ["web_search"]).expect("tool");
    assert_eq!(tool.errors, 2);
    assert_eq!(tool.error_rate, 1.0);
}

#[test]
fn cost_report_groups_llm_calls_by_model_and_by_the_threads_user() {
    let dir = TempDir::new("cost-report");
    let start = Timestamp::now().0 - 60_000_000_000;
    let mut events = thread_events("acme", "support-bot", start);
    events.extend(thread_events("acme", "support-bot", start + 10_000_000));
    events.extend(thread_events("globex", "triage-bot", start + 20_000_000));
    write(StoreConfig::at(&dir.0), events);
    let store = Store::open(&dir.0).expect("open");
    use mission_store::GroupBy;

    let by_model = store.cost_report(store.query(), &[]).expect("report");
    assert_eq!(by_model.len(), 1);
    let row = &by_model[0];
    assert_eq!(row.group, ["gpt-4o-mini"]);
    assert_eq!((row.llm_calls, row.threads), (3, 3));
    assert_eq!((row.input_tokens, row.cached_input_tokens, row.output_tokens), (3 * 812, 300, 192));
    assert!((row.cost_usd - 0.0006).abs() < 1e-12);

    // The user is set on each thread's root span; the LLM calls inherit it through the thread.
    let by_user = store
        .cost_report(store.query().tenant("acme"), &[GroupBy::Tenant, GroupBy::User])
        .expect("report");
    assert_eq!(by_user.len(), 1);
    assert_eq!(by_user[0].group, ["acme", "u-42"]);
    assert_eq!(by_user[0].llm_calls, 2);

    let stats = store
        .operation_stats(store.query().tenant("globex"), &[GroupBy::Agent, GroupBy::User])
        .expect("stats");
    assert!(stats.iter().all(|s| s.group == ["triage-bot", "u-42"]), "{stats:?}");
    assert_eq!(stats[0].count, 3);
    assert_eq!("user".parse::<GroupBy>().expect("user"), GroupBy::User);
    assert!("users".parse::<GroupBy>().is_err());
}
