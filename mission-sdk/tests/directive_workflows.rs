//! Directives as workflows, driven deterministically at the sink (events and wall-clock ticks
//! with fabricated times, no sleeps): approvals (pending → approved runs the remedy; rejected;
//! expired on a tick), runs by hand and the run history, host remedies, and the runaway guard
//! (rate limit per target, giving up after N attempts without improvement). Every check is
//! also made from the other tenant's side.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use mission_core::fingerprint::{attr::TOOL_ARGS_HASH, fingerprint, hex};
use mission_core::{
    Event, EventBody, Sink, SpanEnd, SpanKind, Status, Symbol, ThreadId, Timestamp,
};
use mission_sdk::ThreadState;
use mission_sdk::directives::{
    ApprovalState, DirectiveError, DirectiveSet, DirectiveSink, Directives, Outcome, RemedyOutcome,
    RemedyRequest, RunOutcome, Trigger, Verdict,
};
use mission_sdk::threads::{NewThread, ThreadHandle, ThreadRegistry};

const SECOND: u64 = 1_000_000_000;
/// 2026-01-05 10:00:00 UTC.
const T0: u64 = 1_767_607_200 * SECOND;

struct World {
    directives: Directives,
    sink: DirectiveSink,
    threads: Arc<ThreadRegistry>,
    remedies: Arc<Mutex<Vec<RemedyRequest>>>,
}

fn world(toml: &str) -> World {
    let set = DirectiveSet::from_toml_str(toml, "test").expect("directives parse");
    let directives = Directives::new(set).expect("directives compile");
    let threads = Arc::new(ThreadRegistry::new());
    directives.with_threads(threads.clone());
    let remedies = Arc::new(Mutex::new(Vec::new()));
    let keep = remedies.clone();
    directives.register_remedy("cheaper-model", move |r: &RemedyRequest| {
        keep.lock().expect("lock").push(r.clone());
        RemedyOutcome::Applied
    });
    let sink = directives.sink();
    World { directives, sink, threads, remedies }
}

fn thread_id(n: u128) -> ThreadId {
    ThreadId(0xabcd_0000_0000_0000_0000_0000_0000_0000 | n)
}

impl World {
    fn thread(&self, tenant: &str, id: ThreadId) -> ThreadHandle {
        self.threads
            .register(NewThread::new(Symbol::intern(tenant), Symbol::intern("bot"), id, T0))
            .expect("a slot")
    }

    fn consume(&mut self, events: &[Event]) {
        self.sink.consume(events).expect("consume");
    }

    fn tick(&mut self, wall: u64) {
        self.sink.tick(Timestamp(wall)).expect("tick");
    }

    fn remedies_called(&self) -> usize {
        self.remedies.lock().expect("lock").len()
    }
}

/// A tool call of `thread` in `tenant` ending at `end`, with the same arguments every time.
fn same_call(tenant: &str, thread: ThreadId, end: u64) -> Event {
    let mut e = tool(tenant, "search", end, true);
    e.thread_id = thread;
    e.parent_span_id = mission_core::SpanId(7);
    let args = hex(fingerprint(br#"{"query":"refund policy"}"#));
    e.attributes.set(Symbol::intern(TOOL_ARGS_HASH), args.as_str());
    e
}

fn tool(tenant: &str, name: &str, end: u64, ok: bool) -> Event {
    let mut e = Event::new(
        Symbol::intern(name),
        EventBody::Span(SpanEnd {
            kind: SpanKind::ToolCall,
            duration_ns: 5_000_000,
            status: if ok { Status::Ok } else { Status::Error },
            ..SpanEnd::default()
        }),
    );
    e.time = Timestamp(end - 5_000_000);
    e.tenant = Symbol::intern(tenant);
    e.agent = Symbol::intern("bot");
    e
}

const LOOP_WITH_APPROVAL: &str = r#"
[[directive]]
name = "tool-loop"
when = "3 same tool calls in a thread"
approve = { within = "15m", confidence = 0.8 }
then = [{ action = "alert" }, { action = "cancel_thread" }]
"#;

/// Plants a loop in `tenant`'s thread `id` (three identical calls) at T0.
fn plant_loop(w: &mut World, tenant: &str, id: ThreadId) {
    w.tick(T0);
    let calls: Vec<Event> = (1..=3).map(|i| same_call(tenant, id, T0 + i * SECOND)).collect();
    w.consume(&calls);
}

#[test]
fn an_approved_remedy_runs_and_only_its_tenant_may_decide() {
    let mut w = world(LOOP_WITH_APPROVAL);
    let id = thread_id(1);
    let acme = w.thread("acme", id);
    let globex = w.thread("globex", id);
    plant_loop(&mut w, "acme", id);

    let pending = w.directives.approvals_for(Some("acme"));
    assert_eq!(pending.len(), 1, "{pending:?}");
    let approval = &pending[0];
    assert_eq!(approval.state, ApprovalState::Pending);
    assert_eq!(approval.actions, ["cancel_thread"]);
    assert_eq!(approval.confidence, Some(0.8));
    assert_eq!(approval.thread_id, Some(id));
    assert_eq!(approval.deadline.0 - approval.created.0, 15 * 60 * SECOND);
    assert!(approval.reason.contains("same arguments"), "{}", approval.reason);
    assert_eq!(w.threads.state(acme), Some(ThreadState::Running), "nothing ran before approval");
    let run = &w.directives.runs_for(Some("acme"), None, 10)[0];
    assert_eq!((run.trigger, run.outcome), (Trigger::Event, RunOutcome::PendingApproval));
    assert_eq!(run.approval, Some(approval.id));

    // The other tenant sees nothing and cannot decide it.
    assert!(w.directives.approvals_for(Some("globex")).is_empty());
    assert!(w.directives.runs_for(Some("globex"), None, 10).is_empty());
    let err = w.directives.decide(approval.id, Verdict::Approve, "mallory", "", Some("globex"));
    assert!(matches!(err, Err(DirectiveError::NoApproval(n)) if n == approval.id), "{err:?}");
    assert_eq!(w.directives.approvals_for(None)[0].state, ApprovalState::Pending);

    let decided = w
        .directives
        .decide(approval.id, Verdict::Approve, "operator:jo", "looping on refunds", Some("acme"))
        .expect("approve");
    assert_eq!(decided.state, ApprovalState::Approved);
    assert_eq!(decided.decided_by, "operator:jo");
    assert_eq!(w.threads.state(acme), Some(ThreadState::Cancelled), "the remedy ran");
    assert_eq!(w.threads.state(globex), Some(ThreadState::Running), "only acme's thread");
    let run = &w.directives.runs_for(Some("acme"), Some("tool-loop"), 10)[0];
    assert_eq!(run.outcome, RunOutcome::Approved, "{run:?}");
    let cancel = run.actions.iter().find(|a| a.action == "cancel_thread").expect("the remedy");
    assert_eq!(cancel.outcome, Outcome::Done);
    assert_eq!(cancel.target, id.to_string());

    // Decided once: a second decision is refused, naming the state.
    let again = w.directives.decide(approval.id, Verdict::Reject, "jo", "", None);
    assert!(matches!(again, Err(DirectiveError::Decided { state: "approved", .. })), "{again:?}");
    let stats = w.directives.stats();
    assert_eq!((stats.approvals_proposed, stats.approvals_approved), (1, 1));
}

#[test]
fn a_rejected_remedy_never_runs() {
    let mut w = world(LOOP_WITH_APPROVAL);
    let id = thread_id(2);
    let acme = w.thread("acme", id);
    plant_loop(&mut w, "acme", id);
    let approval = w.directives.approvals_for(None)[0].clone();
    let decided =
        w.directives.decide(approval.id, Verdict::Reject, "jo", "expected", None).expect("reject");
    assert_eq!((decided.state, decided.note.as_str()), (ApprovalState::Rejected, "expected"));
    assert_eq!(w.threads.state(acme), Some(ThreadState::Running));
    let run = &w.directives.runs_for(None, None, 1)[0];
    assert_eq!(run.outcome, RunOutcome::Rejected);
    let cancel = run.actions.iter().find(|a| a.action == "cancel_thread").expect("the remedy");
    assert_eq!(cancel.outcome, Outcome::Skipped);
    assert!(cancel.detail.contains("rejected by jo"), "{}", cancel.detail);
}

#[test]
fn an_approval_nobody_decides_expires_on_the_tick_past_its_deadline() {
    let mut w = world(LOOP_WITH_APPROVAL);
    let id = thread_id(3);
    let acme = w.thread("acme", id);
    plant_loop(&mut w, "acme", id);
    let approval = w.directives.approvals_for(None)[0].clone();
    assert_eq!(approval.created, Timestamp(T0), "the wall clock of the last tick");
    w.tick(approval.deadline.0);
    assert_eq!(w.directives.approvals_for(None)[0].state, ApprovalState::Pending, "not past it");
    w.tick(approval.deadline.0 + 1);
    assert_eq!(w.directives.approvals_for(None)[0].state, ApprovalState::Expired);
    let late = w.directives.decide(approval.id, Verdict::Approve, "jo", "", None);
    assert!(matches!(late, Err(DirectiveError::Decided { state: "expired", .. })), "{late:?}");
    assert_eq!(w.threads.state(acme), Some(ThreadState::Running));
    assert_eq!(w.directives.runs_for(None, None, 1)[0].outcome, RunOutcome::Expired);
    assert_eq!(w.directives.stats().approvals_expired, 1);
}

#[test]
fn a_run_by_hand_acts_in_the_runners_tenant_and_is_kept() {
    let mut w = world(
        r#"
[[directive]]
name = "stop-thread"
schedule = "0 3 * * *"
then = [{ action = "cancel_thread", reason = "nightly stop" }]

[[directive]]
name = "everyone"
schedule = "0 3 * * *"
across_tenants = true
"#,
    );
    w.tick(T0);
    let id = thread_id(4);
    let acme = w.thread("acme", id);
    let globex = w.thread("globex", id);
    let run =
        w.directives.run("stop-thread", "operator:jo", Some("globex"), Some(id)).expect("run");
    assert_eq!((run.trigger, run.outcome), (Trigger::Manual, RunOutcome::Ok), "{run:?}");
    assert_eq!((run.tenant.as_str(), run.by.as_str()), ("globex", "operator:jo"));
    assert_eq!(w.threads.state(globex), Some(ThreadState::Cancelled));
    assert_eq!(w.threads.state(acme), Some(ThreadState::Running), "the same id in acme");
    assert_eq!(w.directives.runs_for(Some("globex"), None, 10).len(), 1);
    assert!(w.directives.runs_for(Some("acme"), None, 10).is_empty());

    let refused = w.directives.run("everyone", "jo", Some("acme"), None);
    assert!(matches!(refused, Err(DirectiveError::NotAllowed(_))), "{refused:?}");
    assert!(w.directives.run("everyone", "root", None, None).is_ok());
    let missing = w.directives.run("nope", "jo", None, None);
    assert!(matches!(missing, Err(DirectiveError::NotFound(_))), "{missing:?}");
    // A run naming no thread fails its thread action, saying why.
    let run = w.directives.run("stop-thread", "jo", Some("acme"), None).expect("run");
    assert_eq!(run.outcome, RunOutcome::Failed);
    assert!(run.actions[0].detail.contains("no thread"), "{:?}", run.actions);
    assert_eq!(w.directives.stats().runs_manual, 3);
}

/// A failing tool every 10 s: `error_rate` stays at 100 %, so the remedy never helps.
fn failing_for(w: &mut World, from: u64, seconds: u64) {
    let mut t = from;
    while t < from + seconds * SECOND {
        w.consume(&[tool("acme", "search", t, false)]);
        t += 10 * SECOND;
    }
}

#[test]
fn a_remedy_is_retried_each_period_and_gives_up_after_n_attempts_without_improvement() {
    let mut w = world(
        r#"
[[directive]]
name = "search-failing"
when = "error_rate > 50% over 1m"
where = { kind = "tool_call" }
group_by = ["operation"]
guard = { every = "2m", max_attempts = 3 }
then = [{ action = "fallback", name = "cheaper-model" }]
"#,
    );
    w.tick(T0);
    failing_for(&mut w, T0, 30 * 60);
    assert_eq!(w.remedies_called(), 3, "three attempts, then the guard gives up");
    let calls = w.remedies.lock().expect("lock").clone();
    assert_eq!(calls.iter().map(|r| r.attempt).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(calls.iter().all(|r| r.target == "search" && r.tenant == "acme"), "{calls:?}");
    let runs = w.directives.runs_for(None, Some("search-failing"), 100);
    let triggers: Vec<(Trigger, RunOutcome)> =
        runs.iter().rev().map(|r| (r.trigger, r.outcome)).collect();
    assert_eq!(
        triggers,
        [
            (Trigger::Event, RunOutcome::Ok),
            (Trigger::Retry, RunOutcome::Ok),
            (Trigger::Retry, RunOutcome::Ok),
            (Trigger::Retry, RunOutcome::GaveUp),
        ]
    );
    let stats = w.directives.stats();
    assert_eq!((stats.remedies_attempted, stats.remedies_gave_up), (3, 1));
}

#[test]
fn a_remedy_is_rate_limited_per_target_across_incidents() {
    let mut w = world(
        r#"
[[directive]]
name = "flaky"
when = "2 failures in a row"
where = { kind = "tool_call" }
group_by = ["operation"]
guard = { every = "5m" }
then = [{ action = "reset_connection", name = "cheaper-model" }]
"#,
    );
    w.tick(T0);
    let s = |n: u64| T0 + n * SECOND;
    // Fires at 2 s, resolves at 3 s, fires again at 5 s: within 5 minutes of the attempt.
    w.consume(&[tool("acme", "search", s(1), false), tool("acme", "search", s(2), false)]);
    w.consume(&[tool("acme", "search", s(3), true)]);
    w.consume(&[tool("acme", "search", s(4), false), tool("acme", "search", s(5), false)]);
    assert_eq!(w.remedies_called(), 1);
    let latest = &w.directives.runs_for(None, None, 1)[0];
    assert_eq!(latest.outcome, RunOutcome::RateLimited, "{latest:?}");
    assert!(latest.actions[0].detail.starts_with("next attempt in"), "{:?}", latest.actions);
    // Another target is not held back by this one.
    w.consume(&[tool("acme", "fetch", s(6), false), tool("acme", "fetch", s(7), false)]);
    assert_eq!(w.remedies_called(), 2);
    // Past the period, the first target may be tried again.
    w.consume(&[tool("acme", "search", s(400), true)]);
    w.consume(&[tool("acme", "search", s(401), false), tool("acme", "search", s(402), false)]);
    assert_eq!(w.remedies_called(), 3);
    assert_eq!(w.directives.stats().remedies_rate_limited, 1);
}

#[test]
fn a_missing_or_failing_host_remedy_fails_its_run_and_is_counted() {
    let mut w = world(
        r#"
[[directive]]
name = "flaky"
when = "2 failures in a row"
where = { kind = "tool_call" }
group_by = ["operation"]
then = [{ action = "fallback", name = "not-registered" }, { action = "reset_connection", name = "broken" }]
"#,
    );
    let panics = Arc::new(AtomicU32::new(0));
    let seen = panics.clone();
    w.directives.register_remedy("broken", move |_: &RemedyRequest| {
        seen.fetch_add(1, Ordering::Relaxed);
        panic!("the host's remedy is broken")
    });
    w.tick(T0);
    w.consume(&[
        tool("acme", "search", T0 + SECOND, false),
        tool("acme", "search", T0 + 2 * SECOND, false),
    ]);
    assert_eq!(panics.load(Ordering::Relaxed), 1);
    let run = &w.directives.runs_for(None, None, 1)[0];
    assert_eq!(run.outcome, RunOutcome::Failed);
    assert!(run.actions[0].detail.contains("no remedy registered"), "{:?}", run.actions);
    assert!(run.actions[1].detail.contains("panicked"), "{:?}", run.actions);
    let stats = w.directives.stats();
    assert_eq!((stats.remedies_missing, stats.remedies_failed), (1, 2));
}

#[test]
fn approval_and_guard_settings_are_checked_with_the_field_named() {
    let bad = [
        ("approve = { within = \"0s\" }", "approve.within"),
        ("approve = { within = \"30d\" }", "approve.within"),
        ("approve = { confidence = 1.5 }", "approve.confidence"),
        ("guard = { every = \"0s\" }", "guard.every"),
        ("guard = { max_attempts = 0 }", "guard.max_attempts"),
        ("guard = { max_attempts = 101 }", "guard.max_attempts"),
    ];
    for (line, field) in bad {
        let text = format!(
            "[[directive]]\nname = \"d\"\nwhen = \"2 failures in a row\"\n{line}\n\
             then = [{{ action = \"pause_thread\" }}]\n"
        );
        let err = DirectiveSet::from_toml_str(&text, "test").expect_err(line).to_string();
        assert!(err.contains(field), "{line}: {err}");
    }
    let nothing_to_approve = "[[directive]]\nname = \"d\"\nwhen = \"2 failures in a row\"\n\
                              approve = {}\nthen = [{ action = \"alert\" }]\n";
    let err = DirectiveSet::from_toml_str(nothing_to_approve, "test").expect_err("no remedy");
    assert!(err.to_string().contains("no remedy to approve"), "{err}");
}

#[test]
fn pending_approvals_are_bounded_and_a_refused_proposal_is_counted() {
    let mut w = world(LOOP_WITH_APPROVAL);
    w.tick(T0);
    let total = mission_sdk::directives::MAX_PENDING_APPROVALS as u128 + 2;
    for n in 0..total {
        let id = thread_id(100 + n);
        let calls: Vec<Event> =
            (1..=3).map(|i| same_call("acme", id, T0 + i as u64 * SECOND)).collect();
        w.consume(&calls);
    }
    let pending = w.directives.approvals_for(None);
    assert_eq!(pending.len(), mission_sdk::directives::MAX_PENDING_APPROVALS);
    assert_eq!(w.directives.stats().approvals_refused, 2);
    let refused = &w.directives.runs_for(None, None, 1)[0];
    assert_eq!(refused.outcome, RunOutcome::Failed, "{refused:?}");
}

/// The README's workflow example: its directives load as written, and its Rust lines run
/// against them (a remedy registered, an approval decided, a run by hand).
#[test]
fn the_readmes_workflow_example_runs() -> Result<(), Box<dyn std::error::Error>> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))?;
    let start = readme.find("name = \"llm-failing\"").expect("the README's example");
    let block_start = readme[..start].rfind("```toml\n").expect("its TOML block") + 8;
    let block_end = block_start + readme[block_start..].find("```").expect("its end");
    let set = DirectiveSet::from_toml_str(&readme[block_start..block_end], "README")?;
    let names: Vec<&str> = set.directives().iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["llm-failing", "loop-guard"]);
    let mut w = world(&readme[block_start..block_end]);
    w.directives.register_remedy("cheaper-model", |request| {
        assert!(request.attempt >= 1);
        RemedyOutcome::Applied
    });
    let id = thread_id(9);
    let thread = w.thread("acme", id);
    plant_loop(&mut w, "acme", id);
    let directives = &w.directives;
    for approval in directives.approvals_for(Some("acme")) {
        directives.decide(approval.id, Verdict::Approve, "jo", "confirmed loop", Some("acme"))?;
    }
    assert_eq!(w.threads.state(thread), Some(ThreadState::Cancelled));
    let run = directives.run("loop-guard", "jo", Some("acme"), Some(id))?;
    assert_eq!(run.outcome, RunOutcome::PendingApproval);
    Ok(())
}

/// `set_budget` narrows the looping thread's budget (in its tenant only); an empty budget is
/// refused when the directive loads.
#[test]
fn set_budget_narrows_the_firing_threads_budget() {
    let mut w = world(
        r#"
[[directive]]
name = "tighten"
when = "3 same tool calls in a thread"
then = [{ action = "set_budget", budget = { tokens = 100, hard = true } }]
"#,
    );
    let id = thread_id(42);
    let acme = w.thread("acme", id);
    let globex = w.thread("globex", id);
    plant_loop(&mut w, "acme", id);
    let now = T0 + 10 * SECOND;
    let tightened = w.threads.remaining(acme, now).expect("a budget now");
    assert_eq!((tightened.tokens, tightened.hard), (Some(100), true));
    assert_eq!(w.threads.remaining(globex, now), None, "the same id in globex is untouched");
    let run = &w.directives.runs_for(Some("acme"), None, 1)[0];
    assert_eq!(run.actions[0].action, "set_budget");
    assert_eq!(run.actions[0].outcome, Outcome::Done, "{run:?}");
    let empty = "[[directive]]\nname = \"d\"\nwhen = \"2 failures in a row\"\n\
                 then = [{ action = \"set_budget\", budget = {} }]\n";
    let err = DirectiveSet::from_toml_str(empty, "test").expect_err("no limit");
    assert!(err.to_string().contains("at least one limit"), "{err}");
}

/// A remedy that acts elsewhere answers `Later` and reports with `report_remedy`: the run
/// stays running until then, and takes the reported outcome.
#[test]
fn a_remedy_acting_later_reports_its_outcome() {
    let mut w = world(
        r#"
[[directive]]
name = "flaky"
when = "2 failures in a row"
where = { kind = "tool_call" }
group_by = ["operation"]
then = [{ action = "reset_connection", name = "queued" }]
"#,
    );
    let asked = Arc::new(Mutex::new(Vec::new()));
    let keep = asked.clone();
    w.directives.register_remedy("queued", move |r: &RemedyRequest| {
        keep.lock().expect("lock").push((r.run_id, r.action_index));
        RemedyOutcome::Later
    });
    w.tick(T0);
    let s = |n: u64| T0 + n * SECOND;
    w.consume(&[tool("acme", "search", s(1), false), tool("acme", "search", s(2), false)]);
    let (run_id, index) = asked.lock().expect("lock")[0];
    let run = &w.directives.runs_for(None, None, 1)[0];
    assert_eq!((run.id, run.outcome), (run_id, RunOutcome::Running));
    assert_eq!(run.actions[index].outcome, Outcome::Pending);
    assert!(w.directives.report_remedy(run_id, index, Err("the pool would not reset".into())));
    let run = &w.directives.runs_for(None, None, 1)[0];
    assert_eq!(run.outcome, RunOutcome::Failed);
    assert_eq!(run.actions[index].detail, "attempt 1 of 3; the pool would not reset");
    assert!(!w.directives.report_remedy(999, 0, Ok(())), "an unknown run");
    assert_eq!(w.directives.stats().remedies_failed, 1);
}
