//! `mission-ctl control <dashboard-url>`: an operator's writes to a running agent through its
//! dashboard's write routes — run a directive by hand, approve or reject a proposed remedy,
//! pause, resume or cancel a thread. The token (an operator's or admin's) goes in the
//! `Authorization` header, the body as JSON, as the dashboard's own page sends them; a
//! tenant-scoped token acts in its tenant only (the agent refuses anything else).

use std::io::Write;
use std::time::Duration;

use serde_json::{Value, json};

use crate::{Error, invalid};

/// How long one request may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// What to do.
#[derive(Clone, Debug, clap::Subcommand)]
pub enum ControlCommand {
    /// Runs a directive by hand now (its remedies wait for approval if it asks for one).
    Run {
        /// The directive's name.
        directive: String,
        /// The thread its thread actions act on (32 hex digits).
        #[arg(long)]
        thread: Option<String>,
        /// For a token of every tenant: the tenant to run it for.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Approves a pending approval: its remedies run now.
    Approve {
        /// The approval's id (from the dashboard, MCP `list_approvals` or Python).
        id: u64,
        /// Why (kept in the audit trail).
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Rejects a pending approval: its remedies never run.
    Reject {
        /// The approval's id.
        id: u64,
        /// Why (kept in the audit trail).
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Pauses a running thread (its code sees `should_stop()`).
    Pause(ThreadArgs),
    /// Resumes a paused thread.
    Resume(ThreadArgs),
    /// Cancels a running thread and its children.
    Cancel(ThreadArgs),
}

/// A thread to act on.
#[derive(Clone, Debug, clap::Args)]
pub struct ThreadArgs {
    /// The thread's id (32 hex digits).
    pub thread: String,
    /// Why (kept in the thread's record and the audit trail).
    #[arg(long, default_value = "")]
    pub reason: String,
    /// For a token of every tenant: the thread's tenant, when two tenants share its id.
    #[arg(long)]
    pub tenant: Option<String>,
}

impl ControlCommand {
    /// The tenant this command names, if any (the isolation suite's `--tenant` check).
    pub fn tenant(&self) -> Option<&str> {
        match self {
            ControlCommand::Run { tenant, .. } => tenant.as_deref(),
            ControlCommand::Pause(a) | ControlCommand::Resume(a) | ControlCommand::Cancel(a) => {
                a.tenant.as_deref()
            }
            _ => None,
        }
    }

    /// The route and the body.
    fn request(&self) -> (String, Value) {
        let thread = |command: &str, a: &ThreadArgs| {
            let mut body = json!({"command": command, "reason": a.reason});
            if let Some(t) = &a.tenant {
                body["tenant"] = json!(t);
            }
            (format!("/api/threads/{}/control", a.thread), body)
        };
        match self {
            ControlCommand::Run { directive, thread, tenant } => {
                let mut body = json!({});
                if let Some(t) = thread {
                    body["thread_id"] = json!(t);
                }
                if let Some(t) = tenant {
                    body["tenant"] = json!(t);
                }
                (format!("/api/directives/{}/run", escape(directive)), body)
            }
            ControlCommand::Approve { id, note } => {
                (format!("/api/approvals/{id}"), json!({"decision": "approve", "note": note}))
            }
            ControlCommand::Reject { id, note } => {
                (format!("/api/approvals/{id}"), json!({"decision": "reject", "note": note}))
            }
            ControlCommand::Pause(a) => thread("pause", a),
            ControlCommand::Resume(a) => thread("resume", a),
            ControlCommand::Cancel(a) => thread("cancel", a),
        }
    }
}

/// A path segment with everything but unreserved characters %-escaped.
fn escape(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Sends `command` to the dashboard at `url` with `token`, prints the agent's JSON answer;
/// returns whether it succeeded (a refusal is printed to stderr with the agent's reason).
///
/// # Errors
/// An invalid URL, or no answer from the agent.
pub fn run_control(
    url: &str,
    token: &str,
    command: &ControlCommand,
    out: &mut dyn Write,
) -> Result<bool, Error> {
    let base = url.trim_end_matches('/');
    if !base.starts_with("http://") && !base.starts_with("https://") {
        return Err(invalid("url", format!("{url:?} is not an http:// or https:// URL")));
    }
    if token.is_empty() {
        return Err(invalid("token", "give --token or set MISSION_TOKEN".into()));
    }
    let (path, body) = command.request();
    // A build whose reqwest speaks rustls (another crate of the build turned TLS on) needs the
    // process's crypto provider first.
    mission_sdk::tls::install_default_provider();
    let client = reqwest::blocking::Client::builder().timeout(TIMEOUT).build()?;
    let reply = client
        .post(format!("{base}{path}"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .map_err(|e| invalid("url", format!("no answer from {base}: {e}")))?;
    let status = reply.status();
    let text = reply.text().unwrap_or_default();
    if status.is_success() {
        writeln!(out, "{text}")?;
        return Ok(true);
    }
    let reason = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_owned))
        .unwrap_or(text);
    eprintln!("refused ({}): {reason}", status.as_u16());
    Ok(false)
}
