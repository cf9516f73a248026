//! Thread trees, states and budgets (issue 22): children linked to their parents in the store,
//! a child's spending charged to every ancestor, warnings and crossings recorded once and
//! audited, hard limits refusing calls, pause/cancel seen by the agent's code and stamped on
//! the root span, and a child in another instance continuing with what the budget had left.

use std::path::PathBuf;

use arrow::array::Array;
use mission_sdk::store::schema::col;
use mission_sdk::threads::{Budget, Stop, ThreadCommand, ThreadState};
use mission_sdk::{Error, MissionControl, ThreadId};

fn temp_root(name: &str) -> PathBuf {
    let root = std::env::temp_dir().join(format!("mission-control-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    root
}

fn control(root: &std::path::Path) -> MissionControl {
    MissionControl::builder().ignore_environment().with_store_root(root).build().expect("build")
}

/// One LLM call of `tokens` tokens (half in, half out) in `thread`.
fn spend(thread: &mission_sdk::Thread<'_>, tokens: u32) {
    let mut call = thread.llm_call("gpt-4o-mini", "openai");
    call.record_usage(tokens / 2, tokens - tokens / 2);
}

/// The attribute `key` of the rows of `store` named `name` in thread `thread_id`.
fn attribute_of(store: &mission_sdk::Store, thread_id: &str, name: &str, key: &str) -> Vec<String> {
    attribute_values(store.query().thread(thread_id).name(name), key)
}

/// The attribute `key` of the rows `query` finds.
fn attribute_values(query: mission_sdk::Query, key: &str) -> Vec<String> {
    let mut out = Vec::new();
    for batch in query.batches().unwrap() {
        let map = batch
            .column_by_name(col::ATTRIBUTES)
            .and_then(|c| c.as_any().downcast_ref::<arrow::array::MapArray>())
            .expect("attributes");
        for row in 0..batch.num_rows() {
            let entries = map.value(row);
            let keys = entries.column(0).as_any().downcast_ref::<arrow::array::StringArray>();
            let values = arrow::compute::cast(entries.column(1), &arrow::datatypes::DataType::Utf8)
                .expect("as text");
            let values = values.as_any().downcast_ref::<arrow::array::StringArray>();
            if let (Some(keys), Some(values)) = (keys, values) {
                for i in 0..keys.len() {
                    if keys.value(i) == key {
                        out.push(values.value(i).to_owned());
                    }
                }
            }
        }
    }
    out
}

fn audit_lines(root: &std::path::Path) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    let dir = root.join("audit");
    for entry in std::fs::read_dir(&dir).expect("audit dir") {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default();
        out.extend(text.lines().filter_map(|l| serde_json::from_str(l).ok()));
    }
    out
}

#[test]
fn children_link_to_parents_and_show_as_a_tree() {
    let root = temp_root("tree");
    let control = control(&root);
    let planner = control.agent("planner");
    let researcher = control.agent("researcher");
    let parent = planner.thread();
    let parent_id = parent.id().to_string();
    let child = parent.child_thread(&researcher);
    let grandchild = child.child_thread(&planner);
    let (child_id, grandchild_id) = (child.id().to_string(), grandchild.id().to_string());
    assert_ne!(child_id, parent_id, "a child is a thread of its own");
    // The start of a child is in the store while it still runs.
    control.flush().unwrap();
    let store = control.store().unwrap().unwrap();
    let started = store
        .query()
        .name(mission_core::thread::event::START)
        .attribute(mission_core::thread::attr::PARENT_ID, &parent_id)
        .count()
        .unwrap();
    assert_eq!(started, 1, "the child's start names its parent before it ends");
    spend(&grandchild, 100);
    grandchild.end();
    child.end();
    parent.end();
    control.flush().unwrap();
    let store = control.store().unwrap().unwrap();
    let children = store
        .query()
        .name("invoke_agent")
        .attribute(mission_core::thread::attr::PARENT_ID, &parent_id)
        .count()
        .unwrap();
    assert_eq!(children, 1, "one child's root span names the parent");
    assert_eq!(
        attribute_of(&store, &grandchild_id, "invoke_agent", mission_core::thread::attr::PARENT_ID),
        vec![child_id.clone()]
    );
    assert_eq!(
        attribute_of(&store, &grandchild_id, "invoke_agent", mission_core::thread::attr::DEPTH),
        vec!["2".to_owned()]
    );
    // The grandchild's spending shows on its parent's root span (a child's root span carries
    // what its subtree used).
    let used = |id: &str| {
        attribute_of(&store, id, "invoke_agent", mission_core::thread::attr::USED_TOKENS)
    };
    assert_eq!(used(&child_id), vec!["100".to_owned()]);
    // A plain root thread (no parent, no budget) carries no control attributes.
    assert!(used(&parent_id).is_empty());
    assert!(
        attribute_of(&store, &parent_id, "invoke_agent", mission_core::thread::attr::PARENT_ID)
            .is_empty()
    );
    drop(control);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_childs_spend_counts_against_every_ancestor_and_warns_once() {
    let root = temp_root("ancestors");
    let control = control(&root);
    let agent = control.agent("planner");
    let parent = agent.thread_with_budget(Budget::new().with_tokens(1_000).unwrap());
    let child = parent.child_thread(&agent);
    let grandchild =
        child.child_thread_with_budget(&agent, Budget::new().with_tokens(5_000).unwrap());
    spend(&grandchild, 500);
    spend(&child, 350);
    assert_eq!(parent.budget_used().tokens, 850);
    assert_eq!(child.budget_used().tokens, 850);
    assert_eq!(grandchild.budget_used().tokens, 500);
    assert_eq!(parent.budget_used().turns, 2);
    assert!(!grandchild.should_stop(), "850 of 1,000: warned, not stopped");
    spend(&grandchild, 100);
    assert!(!grandchild.should_stop());
    spend(&grandchild, 100);
    match grandchild.stop_reason() {
        Some(Stop::Budget { owner, used, limit, .. }) => {
            assert_eq!(owner, parent.id(), "the grandparent's budget is the one used up");
            assert_eq!((used, limit), (1_050.0, 1_000.0));
        }
        other => panic!("expected a budget stop: {other:?}"),
    }
    assert!(child.should_stop() && parent.should_stop());
    let parent_id = parent.id().to_string();
    drop((grandchild, child, parent));
    control.flush().unwrap();
    let store = control.store().unwrap().unwrap();
    let warnings = store.query().thread(&parent_id).name("mission.budget.warning").count().unwrap();
    let exceeded =
        store.query().thread(&parent_id).name("mission.budget.exceeded").count().unwrap();
    assert_eq!((warnings, exceeded), (1, 1), "each recorded once, in the owner's thread");
    assert_eq!(
        attribute_of(&store, &parent_id, "mission.budget.exceeded", "mission.budget.resource"),
        vec!["tokens".to_owned()]
    );
    drop(control);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn hard_limit_returns_budget_exceeded_from_try_guards() {
    let root = temp_root("hard");
    let control = control(&root);
    let agent = control.agent("support-bot");
    let soft = agent.thread_with_budget(Budget::new().with_turns(1).unwrap());
    spend(&soft, 10);
    assert!(soft.should_stop());
    assert!(soft.try_llm_call("gpt-4o-mini", "openai").is_ok(), "a soft budget only tells");
    let hard = agent.thread_with_budget(Budget::new().with_cost_usd(0.000_001).unwrap().hard());
    assert!(hard.try_tool_call("search").is_ok(), "nothing spent yet");
    spend(&hard, 10_000);
    match hard.try_llm_call("gpt-4o-mini", "openai") {
        Err(Error::BudgetExceeded { resource, owner_id, .. }) => {
            assert_eq!(resource, "cost_usd");
            assert_eq!(owner_id, hard.id().to_string());
        }
        other => panic!("expected BudgetExceeded: {:?}", other.map(|s| s.span_id())),
    }
    let err = hard.try_tool_call("search").map(|_| ()).unwrap_err().to_string();
    assert!(err.contains("over budget") && err.contains("cost_usd"), "{err}");
    drop((soft, hard));
    drop(control);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn cancel_and_pause_are_seen_by_should_stop_stamped_on_the_root_span_and_audited() {
    let root = temp_root("cancel");
    let control = control(&root);
    let agent = control.agent("support-bot");
    let thread = agent.thread();
    let child = thread.child_thread(&agent);
    let id = thread.id();
    assert!(!thread.should_stop());
    thread.pause("waiting for a human");
    assert_eq!(thread.state(), ThreadState::Paused);
    assert!(child.should_stop(), "a pause reaches the children");
    assert!(matches!(child.try_tool_call("search"), Err(Error::ThreadStopped { .. })));
    thread.resume();
    assert!(!child.should_stop());
    // An operator cancels it by id; another tenant's id would not be found.
    let state = control
        .control_thread(id, ThreadCommand::Cancel, "operator:ann", "runaway loop")
        .expect("running here");
    assert_eq!(state, ThreadState::Cancelled);
    match child.stop_reason() {
        Some(Stop::Cancelled { by, reason, .. }) => {
            assert_eq!((by.as_str(), reason.as_str()), ("operator:ann", "runaway loop"));
        }
        other => panic!("{other:?}"),
    }
    assert!(control.control_thread(id, ThreadCommand::Resume, "operator:ann", "").is_err());
    assert!(
        control.control_thread(ThreadId::generate(), ThreadCommand::Cancel, "x", "").is_err(),
        "an unknown thread is an error, not a silent success"
    );
    drop(child);
    thread.end();
    control.flush().unwrap();
    let store = control.store().unwrap().unwrap();
    let id = id.to_string();
    assert_eq!(
        attribute_of(&store, &id, "invoke_agent", "mission.thread.state"),
        vec!["cancelled"]
    );
    assert_eq!(
        attribute_of(&store, &id, "invoke_agent", "mission.thread.state.by"),
        vec!["operator:ann"]
    );
    let states = attribute_of(&store, &id, "mission.thread.state", "mission.thread.state");
    assert_eq!(states, vec!["paused", "running", "cancelled"]);
    drop(control);
    let audit = audit_lines(&root);
    let controls: Vec<_> = audit.iter().filter(|r| r["kind"] == "thread_control").collect();
    assert_eq!(controls.len(), 3, "pause, resume and cancel are audited: {audit:?}");
    assert!(
        controls
            .iter()
            .any(|r| r["actor"] == "operator:ann" && r["detail"]["state"] == "cancelled")
    );
    assert!(mission_sdk::audit::verify(&root).unwrap().is_ok());
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn budget_exceeded_is_audited_off_the_agent_thread() {
    let root = temp_root("audit");
    let control = control(&root);
    let thread =
        control.agent("support-bot").thread_with_budget(Budget::new().with_tokens(10).unwrap());
    spend(&thread, 50);
    assert!(thread.should_stop());
    thread.end();
    drop(control);
    let audit = audit_lines(&root);
    let exceeded: Vec<_> = audit.iter().filter(|r| r["kind"] == "budget_exceeded").collect();
    assert_eq!(exceeded.len(), 1, "{audit:?}");
    assert_eq!(exceeded[0]["detail"]["resource"], "tokens");
    assert!(mission_sdk::audit::verify(&root).unwrap().is_ok());
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_child_in_another_instance_continues_with_what_the_budget_had_left() {
    let (root_a, root_b) = (temp_root("handoff-a"), temp_root("handoff-b"));
    let here = control(&root_a);
    let there = control(&root_b);
    let parent = here.agent("planner").thread_with_budget(
        Budget::new().with_tokens(1_000).unwrap().with_turns(10).unwrap().hard(),
    );
    spend(&parent, 700);
    let (traceparent, baggage) = parent.child_handoff();
    let baggage = baggage.expect("the parent has a budget");
    assert!(baggage.contains("tokens:300"), "{baggage}");
    let child = there
        .agent("researcher")
        .child_thread_from(&traceparent, Some(&format!("userid=7,{baggage}")))
        .expect("a valid handoff");
    spend(&child, 250);
    assert!(!child.should_stop());
    spend(&child, 100);
    assert!(matches!(
        child.try_llm_call("gpt-4o-mini", "openai"),
        Err(Error::BudgetExceeded { .. })
    ));
    let (parent_id, child_id) = (parent.id().to_string(), child.id().to_string());
    drop(child);
    there.flush().unwrap();
    let store = there.store().unwrap().unwrap();
    assert_eq!(
        attribute_of(&store, &child_id, "invoke_agent", mission_core::thread::attr::PARENT_ID),
        vec![parent_id]
    );
    // Bad handoffs are typed errors naming what was wrong.
    let agent = there.agent("researcher");
    let bad = agent.child_thread_from("not-a-traceparent", None).map(|t| t.id()).unwrap_err();
    assert!(bad.to_string().contains("traceparent"), "{bad}");
    let bad = agent
        .child_thread_from(&traceparent, Some("mission.budget=tokens:0"))
        .map(|t| t.id())
        .unwrap_err();
    assert!(bad.to_string().contains("tokens"), "{bad}");
    drop(parent);
    drop((here, there));
    let _ = std::fs::remove_dir_all(&root_a);
    let _ = std::fs::remove_dir_all(&root_b);
}

/// The README's Control example, as written there (on a temporary store).
#[test]
fn the_readmes_control_example_runs() -> Result<(), Box<dyn std::error::Error>> {
    let root = temp_root("readme");
    let control = MissionControl::builder().ignore_environment().with_store_root(&root).build()?;
    let planner = control.agent("planner");
    let budget = Budget::new().with_tokens(50_000)?.with_cost_usd(0.50)?.hard();
    let run = planner.thread_with_budget(budget);
    let research = run.child_thread(&control.agent("researcher"));
    let mut calls = 0;
    while !research.should_stop() {
        let mut call = research.try_llm_call("gpt-4.1", "openai")?;
        call.record_usage(12_000, 3_000);
        calls += 1;
    }
    assert_eq!(calls, 4, "50,000 tokens allow three calls of 15,000 and stop after the fourth");
    assert!(matches!(
        research.try_llm_call("gpt-4.1", "openai"),
        Err(Error::BudgetExceeded { .. })
    ));
    let (traceparent, baggage) = run.child_handoff();
    assert!(traceparent.contains(&run.id().to_string()) && baggage.is_some());
    drop((research, run));
    drop(control);
    let _ = std::fs::remove_dir_all(&root);
    Ok(())
}

/// A configuration file gives agents' new threads budgets (`[budget.default]`,
/// `[budget.agent.NAME]`); a budget in code replaces the file's; a budget out of range in the
/// file is a configuration error naming its table and field.
#[test]
fn a_config_file_gives_agents_budgets() {
    let root = temp_root("config-budget");
    std::fs::create_dir_all(&root).unwrap();
    let file = root.join("mission.toml");
    std::fs::write(
        &file,
        "[budget.default]\ntokens = 1000\n\n[budget.agent.researcher]\nturns = 1\nhard = true\n",
    )
    .unwrap();
    let control = MissionControl::builder()
        .ignore_environment()
        .with_store_root(root.join("store"))
        .with_config_file(&file)
        .build()
        .expect("build");
    let planner = control.agent("planner").thread();
    spend(&planner, 1_200);
    assert!(
        matches!(planner.stop_reason(), Some(Stop::Budget { resource, .. }) if resource.as_str() == "tokens")
    );
    let researcher = planner.child_thread(&control.agent("researcher"));
    spend(&researcher, 10);
    assert!(
        matches!(
            researcher.try_llm_call("gpt-4o-mini", "openai"),
            Err(Error::BudgetExceeded { .. })
        ),
        "the researcher's own hard budget of one turn"
    );
    let coded =
        control.agent("planner").thread_with_budget(Budget::new().with_tokens(5_000).unwrap());
    spend(&coded, 1_200);
    assert!(!coded.should_stop(), "code's budget replaces the file's");
    drop((researcher, planner, coded));
    drop(control);

    std::fs::write(&file, "[budget.agent.researcher]\ntokens = 0\n").unwrap();
    let err = MissionControl::builder()
        .ignore_environment()
        .with_store_root(root.join("store"))
        .with_config_file(&file)
        .build()
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(err.contains("[budget.agent.researcher]") && err.contains("tokens"), "{err}");
    let _ = std::fs::remove_dir_all(&root);
}

/// A directive holding `pause_thread` for approval, run by hand on a live thread: the approval
/// and the runs are in the store, the remedy ran once approved, and the audit trail has the
/// proposal, the decision and the run with who made them.
#[test]
fn an_approved_run_by_hand_pauses_the_thread_and_is_stored_and_audited() {
    use mission_sdk::directives::{ApprovalState, DirectiveSet, RunOutcome, Verdict};
    let root = temp_root("approval");
    let tenant = "acme".to_owned();
    let control = MissionControl::builder()
        .ignore_environment()
        .with_store_root(&root)
        .with_tenant(&tenant)
        .build()
        .expect("build");
    let held = "[[directive]]\nname = \"held\"\nschedule = \"0 3 * * *\"\n\
                approve = { within = \"1h\", confidence = 0.9 }\n\
                then = [{ action = \"pause_thread\", reason = \"looks stuck\" }]\n";
    for spec in DirectiveSet::from_toml_str(held, "test").unwrap() {
        control.directives().add(spec).unwrap();
    }
    let thread = control.agent("support-bot").thread();
    let directives = control.directives();
    let run = directives.run("held", "operator:jo", Some(&tenant), Some(thread.id())).unwrap();
    assert_eq!(run.outcome, RunOutcome::PendingApproval);
    assert!(!thread.should_stop(), "held for approval");
    let approval = directives.approvals_for(Some(&tenant))[0].clone();
    let decided = directives
        .decide(approval.id, Verdict::Approve, "operator:kim", "go", Some(&tenant))
        .unwrap();
    assert_eq!(decided.state, ApprovalState::Approved);
    assert!(thread.should_stop(), "the approved remedy paused the thread");
    assert_eq!(directives.runs_for(None, Some("held"), 1)[0].outcome, RunOutcome::Approved);
    thread.end();
    control.flush().unwrap();
    let store = control.store().expect("a store").unwrap();
    let states = |name: &str, key: &str| {
        let mut out = attribute_values(store.query().name(name), key);
        out.sort();
        out
    };
    assert_eq!(states("mission.approval", "mission.approval.state"), ["approved", "pending"]);
    assert_eq!(
        states("mission.directive.run", "mission.run.outcome"),
        ["approved", "pending_approval"]
    );
    drop(store);
    drop(control);
    let audit = audit_lines(&root);
    let of = |kind: &str| -> Vec<String> {
        audit.iter().filter(|r| r["kind"] == kind).map(|r| r["actor"].to_string()).collect()
    };
    assert_eq!(of("approval"), ["\"directive:held\"", "\"operator:kim\""], "{audit:?}");
    assert_eq!(of("directive_run"), ["\"operator:jo\"", "\"operator:jo\""], "{audit:?}");
    assert!(mission_sdk::audit::verify(&root).unwrap().is_ok());
    let _ = std::fs::remove_dir_all(&root);
}
