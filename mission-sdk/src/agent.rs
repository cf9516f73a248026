//! The agent API: [`Agent`] → [`Thread`] → [`Span`]s (LLM calls, tool calls, steps, retrievals),
//! each a guard that records when it ends or is dropped.

use std::fmt::Display;
use std::future::Future;
use std::sync::Arc;

use mission_core::{
    ActiveSpan, AttrValue, EventBody, LazySymbol, Level, LogRecord, Score, SpanId, SpanKind,
    Status, Symbol, Text, ThreadContext, ThreadId, Timestamp,
};

use mission_govern::threads::{
    Budget, Charge, Escalation, NewThread, PermissionSet, Stop, ThreadCommand, ThreadHandle,
    ThreadState, Usage,
};

use crate::inflight::{OpenSpan, Ticket};
use crate::{Error, MissionControl, Result};

/// A named agent program. Cheap to make; start threads from it.
#[derive(Clone, Copy)]
pub struct Agent<'c> {
    control: &'c MissionControl,
    name: Symbol,
}

impl std::fmt::Debug for Agent<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent").field("name", &self.name.as_str()).finish()
    }
}

impl<'c> Agent<'c> {
    pub(crate) fn new(control: &'c MissionControl, name: Symbol) -> Self {
        Self { control, name }
    }

    /// The agent's name.
    pub fn name(&self) -> &'static str {
        self.name.as_str()
    }

    /// A new thread (one run or conversation) with a fresh id.
    pub fn thread(&self) -> Thread<'c> {
        self.thread_with_id(ThreadId::generate())
    }

    /// A thread with a known id (to resume a conversation).
    pub fn thread_with_id(&self, id: ThreadId) -> Thread<'c> {
        let ctx = ThreadContext { tenant: self.control.tenant, agent: self.name, thread_id: id };
        Thread::start(self.control, ctx, None, None, self.configured_budget(), None)
    }

    /// A new thread holding only `permissions`: [`Thread::permit`] denies, as an escalation,
    /// whatever they do not allow, and its children hold at most these (see
    /// [`Thread::child_thread_with_permissions`]).
    pub fn thread_with_permissions(&self, permissions: PermissionSet) -> Thread<'c> {
        let ctx = ThreadContext::new(self.control.tenant, self.name);
        let budget = self.configured_budget();
        Thread::start(self.control, ctx, None, None, budget, Some(Arc::new(permissions)))
    }

    /// The budget the configuration file gives this agent's threads (`[budget]`), if any.
    fn configured_budget(&self) -> Option<Budget> {
        self.control.budgets.for_agent(self.name)
    }

    /// A new thread with a budget of its own (see [`Budget`]; it replaces one the configuration
    /// file gives the agent): at its warning share a
    /// `mission.budget.warning` is recorded; at a limit [`Thread::should_stop`] turns true (and,
    /// for a [`hard`](Budget::hard) budget, the `try_*` guards refuse new calls).
    pub fn thread_with_budget(&self, budget: Budget) -> Thread<'c> {
        let ctx = ThreadContext::new(self.control.tenant, self.name);
        Thread::start(self.control, ctx, None, None, Some(budget), None)
    }

    /// A child thread of this agent started by a thread in another process, from the
    /// `traceparent` and `baggage` that thread's [`child_handoff`](Thread::child_handoff) gave:
    /// a thread of its own (its own id) linked to its parent in the store, spending at most what
    /// the parent's budget had left (when the baggage carries one).
    ///
    /// # Errors
    /// [`Error::Config`] for a `traceparent` that is not valid version-00, or a budget in
    /// `baggage` that is not understood or out of range.
    pub fn child_thread_from(
        &self,
        traceparent: &str,
        baggage: Option<&str>,
    ) -> Result<Thread<'c>> {
        let (parent_id, parent_span) = parse_traceparent(traceparent)?;
        let inherited = match baggage {
            Some(b) => Budget::from_baggage(b)?,
            None => None,
        };
        // What the parent had left, narrowed by what the file gives this agent.
        let budget = match (inherited, self.configured_budget()) {
            (Some(a), Some(b)) => Some(a.narrowed(&b)),
            (a, b) => a.or(b),
        };
        let ctx = ThreadContext::new(self.control.tenant, self.name);
        let link =
            ParentLink { handle: None, thread_id: parent_id, span_id: parent_span, depth: 1 };
        Ok(Thread::start(self.control, ctx, None, Some(link), budget, None))
    }

    /// Scores a thread of this agent by its id, from anywhere — another process, after the
    /// thread ended (a user's feedback that arrives later, an offline evaluation). Needs only
    /// the pipeline, not the live thread; see [`Thread::score`] for the arguments.
    ///
    /// # Errors
    /// [`Error::Score`] for an empty name.
    pub fn score_thread(&self, thread_id: ThreadId, name: &str, score: Score) -> Result<bool> {
        let ctx = ThreadContext { tenant: self.control.tenant, agent: self.name, thread_id };
        record_score(self.control, &ctx, SpanId::NONE, name, score)
    }

    /// Scores one span of a thread of this agent by their ids, from anywhere (see
    /// [`score_thread`](Self::score_thread)).
    ///
    /// # Errors
    /// [`Error::Score`] for an empty name.
    pub fn score_span(
        &self,
        thread_id: ThreadId,
        span_id: SpanId,
        name: &str,
        score: Score,
    ) -> Result<bool> {
        let ctx = ThreadContext { tenant: self.control.tenant, agent: self.name, thread_id };
        record_score(self.control, &ctx, span_id, name, score)
    }

    /// A thread continuing a W3C `traceparent` received from another service: same trace id,
    /// and its root span is a child of the caller's span.
    ///
    /// # Errors
    /// [`Error::Config`] if the header is not a valid version-00 `traceparent`.
    pub fn continue_thread(&self, traceparent: &str) -> Result<Thread<'c>> {
        let (thread_id, parent) = parse_traceparent(traceparent)?;
        let ctx = ThreadContext { tenant: self.control.tenant, agent: self.name, thread_id };
        Ok(Thread::start(self.control, ctx, Some(parent), None, self.configured_budget(), None))
    }
}

/// Where a child thread comes from.
#[derive(Clone, Copy, Debug)]
struct ParentLink {
    /// The parent in this process's registry (its budget and state reach the child).
    handle: Option<ThreadHandle>,
    thread_id: ThreadId,
    span_id: SpanId,
    depth: u8,
}

/// Records a score event named `name` on `span_id` (none: the whole thread) of `ctx`.
pub(crate) fn record_score(
    control: &MissionControl,
    ctx: &ThreadContext,
    span_id: SpanId,
    name: &str,
    score: Score,
) -> Result<bool> {
    let name = mission_core::score_name(name)?;
    let event = ctx.event(name, span_id, EventBody::Score(score));
    Ok(control.recorder().record(event))
}

/// Parses `00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`.
pub fn parse_traceparent(header: &str) -> Result<(ThreadId, SpanId)> {
    let bad = |why: &str| Error::Config {
        origin: "traceparent".into(),
        message: format!("{why}: {header:?}"),
    };
    let parts: Vec<&str> = header.trim().split('-').collect();
    if parts.len() != 4 || parts[0] != "00" || parts[3].len() != 2 {
        return Err(bad("expected 00-<trace id>-<span id>-<flags>"));
    }
    let thread: ThreadId = parts[1].parse().map_err(|_| bad("invalid trace id"))?;
    let span: SpanId = parts[2].parse().map_err(|_| bad("invalid parent span id"))?;
    u8::from_str_radix(parts[3], 16).map_err(|_| bad("invalid flags"))?;
    Ok((thread, span))
}

/// One run of an agent: a trace whose root span (`invoke_agent`, exported over OTLP as
/// `invoke_agent {agent}`) covers the whole run and is
/// recorded when the thread is dropped or [`end`](Thread::end)ed.
///
/// A thread can start child threads (subagents, [`child_thread`](Thread::child_thread)), carry a
/// [`Budget`], and be paused or cancelled — by its own code, an operator or a directive; its code
/// asks [`should_stop`](Thread::should_stop) between steps.
pub struct Thread<'c> {
    control: &'c MissionControl,
    ctx: ThreadContext,
    root: Span<'c>,
    handle: Option<ThreadHandle>,
    depth: u8,
    child: bool,
    /// Its own permissions, checked here too when the table had no room for it.
    permissions: Option<Arc<PermissionSet>>,
}

impl std::fmt::Debug for Thread<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Thread").field("id", &self.ctx.thread_id).finish()
    }
}

impl<'c> Thread<'c> {
    fn start(
        control: &'c MissionControl,
        ctx: ThreadContext,
        remote_parent: Option<SpanId>,
        link: Option<ParentLink>,
        budget: Option<Budget>,
        permissions: Option<Arc<PermissionSet>>,
    ) -> Self {
        static INVOKE_AGENT: LazySymbol = LazySymbol::new("invoke_agent");
        let mut root =
            Span::start(control, ctx, SpanKind::AgentStep, INVOKE_AGENT.get(), remote_parent, None);
        let mut new =
            NewThread::new(ctx.tenant, ctx.agent, ctx.thread_id, root.inner.start_time().0)
                .with_root_span(root.span_id());
        new.parent = link.and_then(|l| l.handle);
        new.budget = match (budget, control.pack_budget) {
            (Some(b), Some(pack)) => Some(b.narrowed(&pack)),
            (b, pack) => b.or(pack),
        };
        new.permissions = permissions.clone();
        let handle = control.threads.register(new);
        root.thread = handle;
        let depth = link.map_or(0, |l| l.depth);
        if let Some(link) = link {
            use mission_core::thread::{TARGET, attr, event};
            let parent_id = link.thread_id.to_string();
            let parent_span = link.span_id.to_string();
            root.set_attribute(attr::PARENT_ID, parent_id.as_str())
                .set_attribute(attr::PARENT_SPAN_ID, parent_span.as_str())
                .set_attribute(attr::DEPTH, i64::from(depth));
            // Recorded now, so the tree shows while the child runs.
            let mut start = ctx.event(
                Symbol::intern(event::START),
                root.span_id(),
                EventBody::Log(LogRecord {
                    level: Level::Info,
                    target: Symbol::intern(TARGET),
                    message: Text::from(format!("child thread of {parent_id} started")),
                }),
            );
            start.attributes.set(Symbol::intern(attr::PARENT_ID), parent_id.as_str());
            start.attributes.set(Symbol::intern(attr::PARENT_SPAN_ID), parent_span.as_str());
            start.attributes.set(Symbol::intern(attr::DEPTH), i64::from(depth));
            control.recorder().record(start);
        }
        Self { control, ctx, root, handle, depth, child: link.is_some(), permissions }
    }

    /// Starts a child thread (a subagent) run by `agent`: a thread of its own, linked to this
    /// one in the store (`mission.thread.parent_id`) and shown under it as a tree. Its spending
    /// counts against this thread's budget (and every ancestor's); pausing or cancelling this
    /// thread reaches it.
    pub fn child_thread(&self, agent: &Agent<'c>) -> Thread<'c> {
        self.child_thread_inner(agent, None, None)
    }

    /// Like [`child_thread`](Self::child_thread), with a budget of the child's own — it can
    /// only narrow what it may spend, since its ancestors' budgets still apply.
    pub fn child_thread_with_budget(&self, agent: &Agent<'c>, budget: Budget) -> Thread<'c> {
        self.child_thread_inner(agent, Some(budget), None)
    }

    /// Like [`child_thread`](Self::child_thread), with permissions of the child's own. It
    /// holds the intersection of these and every ancestor's: asking for more than its parent
    /// holds widens nothing, and using it is an escalation [`permit`](Self::permit) denies,
    /// naming the ancestor that narrowed it.
    pub fn child_thread_with_permissions(
        &self,
        agent: &Agent<'c>,
        permissions: PermissionSet,
    ) -> Thread<'c> {
        self.child_thread_inner(agent, None, Some(Arc::new(permissions)))
    }

    fn child_thread_inner(
        &self,
        agent: &Agent<'c>,
        budget: Option<Budget>,
        permissions: Option<Arc<PermissionSet>>,
    ) -> Thread<'c> {
        let ctx = ThreadContext::new(self.ctx.tenant, agent.name);
        let link = ParentLink {
            handle: self.handle,
            thread_id: self.ctx.thread_id,
            span_id: self.root.span_id(),
            depth: self.depth.saturating_add(1).min(mission_core::thread::MAX_THREAD_DEPTH),
        };
        let budget = budget.or_else(|| agent.configured_budget());
        Thread::start(self.control, ctx, None, Some(link), budget, permissions)
    }

    /// What a child thread in another process needs: the `traceparent` naming this thread's
    /// root span, and a W3C `baggage` member carrying what is left of the budgets this thread
    /// is under (`None` when it has none). Start the child there with
    /// [`Agent::child_thread_from`].
    pub fn child_handoff(&self) -> (String, Option<String>) {
        let now = Timestamp::now().0;
        let budget = self.handle.and_then(|h| self.control.threads.remaining(h, now));
        (self.traceparent(), budget.map(|b| b.to_baggage()))
    }

    /// Whether the thread should stop now: it or an ancestor was cancelled or is paused, or a
    /// budget it is under is used up (wall time judged now). Ask it between steps.
    pub fn should_stop(&self) -> bool {
        self.stop_reason().is_some()
    }

    /// Why the thread should stop, if it should (see [`should_stop`](Self::should_stop)).
    pub fn stop_reason(&self) -> Option<Stop> {
        let h = self.handle?;
        self.control.threads.poll(h, Timestamp::now().0)
    }

    /// Cancels the thread (and so its children) from its own code; recorded and audited.
    pub fn cancel(&self, reason: &str) {
        self.command(ThreadCommand::Cancel, reason);
    }

    /// Pauses the thread: [`should_stop`](Self::should_stop) is true until it is resumed.
    pub fn pause(&self, reason: &str) {
        self.command(ThreadCommand::Pause, reason);
    }

    /// Resumes a paused thread (a cancelled one stays cancelled).
    pub fn resume(&self) {
        self.command(ThreadCommand::Resume, "");
    }

    fn command(&self, command: ThreadCommand, reason: &str) {
        if let Some(h) = self.handle {
            // A refusal (resuming a cancelled thread) changes nothing, which is what it says.
            let _ = self.control.threads.control_handle(h, command, "code", reason);
        }
    }

    /// The thread's state (`Running` for a thread the table had no room for).
    pub fn state(&self) -> ThreadState {
        self.handle.and_then(|h| self.control.threads.state(h)).unwrap_or(ThreadState::Running)
    }

    /// What the thread and its children have used so far.
    pub fn budget_used(&self) -> Usage {
        let now = Timestamp::now().0;
        self.handle.and_then(|h| self.control.threads.usage(h, now)).unwrap_or_default()
    }

    /// Starts an LLM call unless the thread must not make one: it was cancelled or is paused
    /// ([`Error::ThreadStopped`]) or a hard budget is used up ([`Error::BudgetExceeded`]).
    ///
    /// # Errors
    /// As above; the refused call is not recorded.
    pub fn try_llm_call(&self, model: &str, provider: &str) -> Result<Span<'c>> {
        self.guard()?;
        Ok(self.llm_call(model, provider))
    }

    /// Starts a tool call unless the thread must not make one (see
    /// [`try_llm_call`](Self::try_llm_call)).
    ///
    /// # Errors
    /// As [`try_llm_call`](Self::try_llm_call).
    pub fn try_tool_call(&self, tool: &str) -> Result<Span<'c>> {
        self.guard()?;
        Ok(self.tool_call(tool))
    }

    fn guard(&self) -> Result<()> {
        match self.stop_reason() {
            None | Some(Stop::Budget { hard: false, .. }) => Ok(()),
            Some(Stop::Budget { owner, resource, used, limit, .. }) => Err(Error::BudgetExceeded {
                thread_id: self.ctx.thread_id.to_string(),
                owner_id: owner.to_string(),
                resource: resource.as_str(),
                used,
                limit,
            }),
            Some(Stop::Cancelled { thread_id, by, reason }) => Err(Error::ThreadStopped {
                thread_id: self.ctx.thread_id.to_string(),
                reason: format!("thread {thread_id} was cancelled by {by}: {reason}"),
            }),
            Some(Stop::Paused { thread_id }) => Err(Error::ThreadStopped {
                thread_id: self.ctx.thread_id.to_string(),
                reason: format!("thread {thread_id} is paused"),
            }),
        }
    }

    /// May `actor` do `action` to `resource` in this thread? The policy, the circuit breakers
    /// and the thread's permission lineage decide; see
    /// [`MissionControl::permit_in_thread`].
    ///
    /// ```
    /// use mission_sdk::MissionControl;
    /// use mission_sdk::threads::PermissionSet;
    /// let control = MissionControl::builder().without_store().ignore_environment().build()?;
    /// let planner = control.agent("planner");
    /// let thread = planner.thread_with_permissions(PermissionSet::new(["tool_call:search_*"])?);
    /// // The child asks for every tool; it holds only what its parent holds.
    /// let child = thread.child_thread_with_permissions(
    ///     &control.agent("researcher"),
    ///     PermissionSet::new(["tool_call:*"])?,
    /// );
    /// assert!(child.permit("agent:researcher", "tool_call", "search_web").allowed);
    /// let denied = child.permit("agent:researcher", "tool_call", "refund_payment");
    /// assert!(!denied.allowed);
    /// assert_eq!(denied.lineage.expect("narrowed").thread_id, thread.id().to_string());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn permit(&self, actor: &str, action: &str, resource: &str) -> crate::PolicyDecision {
        self.control.permit_in_thread(self, actor, action, resource)
    }

    /// The escalation `action` on `resource` would be in this thread, if its lineage does not
    /// allow it.
    pub(crate) fn escalation(&self, action: &str, resource: &str) -> Option<Escalation> {
        match self.handle {
            Some(h) => self.control.threads.check_permission(h, action, resource),
            // Untracked (the table was full): its own permissions still hold.
            None => self
                .permissions
                .as_deref()
                .and_then(|set| set.escalation(self.ctx.thread_id, self.depth, action, resource)),
        }
    }

    /// The thread's tenant, agent and id.
    pub(crate) fn context(&self) -> ThreadContext {
        self.ctx
    }

    /// The root span's id.
    pub(crate) fn root_span_id(&self) -> SpanId {
        self.root.span_id()
    }

    /// The thread id (a W3C trace id).
    pub fn id(&self) -> ThreadId {
        self.ctx.thread_id
    }

    /// The W3C `traceparent` to hand to a downstream call, naming this thread's root span.
    pub fn traceparent(&self) -> String {
        self.root.traceparent()
    }

    /// The root span (to set attributes on the whole run, or mark it failed).
    pub fn root(&mut self) -> &mut Span<'c> {
        &mut self.root
    }

    /// Starts an LLM call under the root span.
    pub fn llm_call(&self, model: &str, provider: &str) -> Span<'c> {
        self.root.llm_call(model, provider)
    }

    /// Starts a tool call under the root span.
    pub fn tool_call(&self, tool: &str) -> Span<'c> {
        self.root.tool_call(tool)
    }

    /// Starts an agent step under the root span.
    pub fn step(&self, name: &str) -> Span<'c> {
        self.root.step(name)
    }

    /// Starts a retrieval under the root span.
    pub fn retrieval(&self, name: &str) -> Span<'c> {
        self.root.retrieval(name)
    }

    /// Records a log record in the thread, inside the root span.
    pub fn log(&self, level: Level, message: &str) {
        self.root.log(level, message);
    }

    /// Records a permission decision inside this thread: `actor` asked to do `action` to
    /// `resource`; `rule` decided.
    pub fn permission(
        &self,
        actor: &str,
        action: &str,
        resource: &str,
        decision: mission_core::Decision,
        rule: &str,
    ) {
        let event = self.ctx.event(
            Symbol::intern(action),
            self.root.span_id(),
            EventBody::Permission(mission_core::PermissionDecision {
                actor: Text::new(actor),
                action: Symbol::intern(action),
                resource: Text::new(resource),
                decision,
                policy: Symbol::intern(rule),
            }),
        );
        self.control.recorder().record(event);
    }

    /// Scores the whole thread: `name` (`helpfulness`, `thumbs`; cut to
    /// [`MAX_SCORE_NAME_BYTES`](mission_core::limits::MAX_SCORE_NAME_BYTES)) and a
    /// [`Score`] — a finite value, optional label and comment (the comment is content: omitted
    /// unless the tenant captures content), and who gave it. Exported over OTLP as a
    /// `gen_ai.evaluation.result` event. A score can also come later, from elsewhere:
    /// [`MissionControl::score_thread`].
    ///
    /// Returns whether the event was accepted (a drop is counted like any other).
    ///
    /// ```
    /// use mission_sdk::{MissionControl, Score, ScoreSource};
    /// let control = MissionControl::builder().without_store().ignore_environment().build()?;
    /// let thread = control.agent("support-bot").thread();
    /// thread.score("helpfulness", Score::new(0.9)?.with_label("good").with_source(ScoreSource::Llm))?;
    /// thread.end();
    /// assert_eq!(control.shutdown().accounting.delivered, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Score`] for an empty name.
    pub fn score(&self, name: &str, score: Score) -> Result<bool> {
        self.root.score(name, score)
    }

    /// Ends the thread now (its root span records).
    pub fn end(self) {
        drop(self);
    }

    /// The control this thread records into.
    pub fn control(&self) -> &'c MissionControl {
        self.control
    }
}

impl Drop for Thread<'_> {
    fn drop(&mut self) {
        let Some(h) = self.handle.take() else { return };
        let Some(done) = self.control.threads.deregister(h, Timestamp::now().0) else { return };
        use mission_core::thread::attr;
        if done.state != ThreadState::Running {
            self.root.set_attribute(attr::STATE, done.state.as_str());
            if let Some((by, reason)) = &done.change {
                self.root.set_attribute(attr::STATE_BY, by.as_str());
                self.root.set_attribute(attr::STATE_REASON, reason.as_str());
            }
        }
        if done.budget.is_some() || self.child {
            self.root
                .set_attribute(attr::USED_TURNS, i64::try_from(done.used.turns).unwrap_or(i64::MAX))
                .set_attribute(
                    attr::USED_TOKENS,
                    i64::try_from(done.used.tokens).unwrap_or(i64::MAX),
                )
                .set_attribute(attr::USED_COST_USD, done.used.cost_usd);
        }
        // `root` records itself when dropped right after this.
    }
}

/// A timed operation in a thread. Records when [`end`](Span::end)ed or dropped — an early
/// return, a `?` or a panic still leaves a record (a panic marks it failed). Errors seen
/// through [`check`](Span::check) or [`instrument`](Span::instrument) mark it failed with their
/// message.
#[must_use = "a span records when it ends; bind it to a variable"]
pub struct Span<'c> {
    control: &'c MissionControl,
    ctx: ThreadContext,
    inner: ActiveSpan<'c>,
    ticket: Option<Ticket>,
    kind: SpanKind,
    /// The thread's place in the registry: an LLM call charges its budget when it ends.
    thread: Option<ThreadHandle>,
}

impl<'c> Span<'c> {
    fn start(
        control: &'c MissionControl,
        ctx: ThreadContext,
        kind: SpanKind,
        name: Symbol,
        parent: Option<SpanId>,
        thread: Option<ThreadHandle>,
    ) -> Self {
        let inner = control.recorder().start_span(&ctx, kind, name, parent);
        let ticket = control.in_flight.register(OpenSpan {
            tenant: ctx.tenant,
            agent: ctx.agent,
            thread_id: ctx.thread_id,
            span_id: inner.span_id(),
            name,
            kind,
            start: inner.start_time(),
        });
        Self { control, ctx, inner, ticket, kind, thread }
    }

    /// The usage of an LLM call; `None` for the other kinds.
    fn llm_call_usage(&mut self) -> Option<&mut mission_core::LlmUsage> {
        if self.kind == SpanKind::LlmCall { self.inner.llm_usage_mut() } else { None }
    }

    fn child(&self, kind: SpanKind, name: Symbol) -> Span<'c> {
        Span::start(self.control, self.ctx, kind, name, Some(self.inner.span_id()), self.thread)
    }

    /// This span's id.
    pub fn span_id(&self) -> SpanId {
        self.inner.span_id()
    }

    /// The thread it belongs to.
    pub fn thread_id(&self) -> ThreadId {
        self.ctx.thread_id
    }

    /// The W3C `traceparent` naming this span, for a downstream call.
    pub fn traceparent(&self) -> String {
        format!("00-{}-{}-01", self.ctx.thread_id, self.inner.span_id())
    }

    /// Starts a child LLM call. Its name is the operation, `chat` (exported over OTLP as
    /// `chat {model}`); the model and provider are typed fields. No allocation once the model
    /// and provider names have been seen.
    pub fn llm_call(&self, model: &str, provider: &str) -> Span<'c> {
        static CHAT: LazySymbol = LazySymbol::new("chat");
        let mut span = self.child(SpanKind::LlmCall, CHAT.get());
        if let Some(usage) = span.inner.llm_usage_mut() {
            usage.model = Symbol::intern(model);
            usage.provider = Symbol::intern(provider);
        }
        span
    }

    /// Starts a child tool call named after the tool (exported over OTLP as
    /// `execute_tool {tool}` with `gen_ai.tool.name`). No allocation once the tool name has
    /// been seen.
    pub fn tool_call(&self, tool: &str) -> Span<'c> {
        self.child(SpanKind::ToolCall, Symbol::intern(tool))
    }

    /// Starts a child agent step.
    pub fn step(&self, name: &str) -> Span<'c> {
        self.child(SpanKind::AgentStep, Symbol::intern(name))
    }

    /// Starts a child retrieval.
    pub fn retrieval(&self, name: &str) -> Span<'c> {
        self.child(SpanKind::Retrieval, Symbol::intern(name))
    }

    /// Records a log record inside this span (unless
    /// [`MissionControl::log_enabled`] says no).
    pub fn log(&self, level: Level, message: &str) {
        if !self.control.log_enabled(level) {
            return;
        }
        let target = Symbol::intern("agent");
        let event = self.ctx.event(
            Symbol::intern("log"),
            self.inner.span_id(),
            EventBody::Log(LogRecord { level, target, message: Text::new(message) }),
        );
        self.control.recorder().record(event);
    }

    /// Scores this span (an LLM call's answer, a tool's result); see [`Thread::score`].
    ///
    /// # Errors
    /// [`Error::Score`] for an empty name.
    pub fn score(&self, name: &str, score: Score) -> Result<bool> {
        record_score(self.control, &self.ctx, self.inner.span_id(), name, score)
    }

    /// Sets the token usage of an LLM call (input includes cached tokens, output includes
    /// reasoning tokens, as providers report them).
    pub fn record_usage(&mut self, input_tokens: u32, output_tokens: u32) -> &mut Self {
        if let Some(usage) = self.inner.llm_usage_mut() {
            usage.input_tokens = input_tokens;
            usage.output_tokens = output_tokens;
        }
        self
    }

    /// Of the input tokens, how many the provider read from its cache (billed at the cached
    /// price).
    pub fn record_cached_tokens(&mut self, cached_input_tokens: u32) -> &mut Self {
        if let Some(usage) = self.inner.llm_usage_mut() {
            usage.cached_input_tokens = cached_input_tokens;
        }
        self
    }

    /// Of the output tokens, how many were reasoning tokens (already in the output count).
    pub fn record_reasoning_tokens(&mut self, reasoning_tokens: u32) -> &mut Self {
        if let Some(usage) = self.inner.llm_usage_mut() {
            usage.reasoning_tokens = reasoning_tokens;
        }
        self
    }

    /// Sets an LLM call's model once it is known (`gen_ai.request.model`), for calls whose
    /// model is decided after they start (an agent framework picking it, or the Responses API
    /// naming it only in its answer). The cost is priced from the model set last when the span
    /// ends. An empty `model` is ignored; on a span that is not an LLM call, it does nothing.
    pub fn set_model(&mut self, model: &str) -> &mut Self {
        if !model.is_empty()
            && let Some(usage) = self.llm_call_usage()
        {
            usage.model = Symbol::intern(model);
        }
        self
    }

    /// The model that answered (`gen_ai.response.model`, often a dated snapshot of the one
    /// asked for). When no request model was given, it also becomes the model the call is
    /// priced by. On a span that is not an LLM call, it does nothing.
    pub fn set_response_model(&mut self, model: &str) -> &mut Self {
        let Some(usage) = self.llm_call_usage().filter(|_| !model.is_empty()) else {
            return self;
        };
        if usage.model.is_empty() {
            usage.model = Symbol::intern(model);
        }
        self.set_attribute("gen_ai.response.model", model)
    }

    /// Why the model stopped (`gen_ai.response.finish_reasons`).
    pub fn set_finish_reason(&mut self, reason: &str) -> &mut Self {
        self.set_attribute("gen_ai.response.finish_reasons", reason)
    }

    /// Marks the first streamed token now (`gen_ai.server.time_to_first_token`, seconds).
    pub fn first_token(&mut self) -> &mut Self {
        let elapsed = Timestamp::now().saturating_duration_since(self.inner.start_time());
        self.set_attribute("gen_ai.server.time_to_first_token", elapsed.as_secs_f64())
    }

    /// Size of a tool call's arguments, in bytes.
    pub fn set_arguments_size(&mut self, bytes: u64) -> &mut Self {
        self.set_attribute(
            "gen_ai.tool.call.arguments.size",
            i64::try_from(bytes).unwrap_or(i64::MAX),
        )
    }

    /// Size of a tool call's result (bytes, items — your unit).
    pub fn set_result_size(&mut self, size: u64) -> &mut Self {
        self.set_attribute("gen_ai.tool.call.result.size", i64::try_from(size).unwrap_or(i64::MAX))
    }

    /// The provider's id of this tool call (`gen_ai.tool.call.id`).
    pub fn set_call_id(&mut self, id: &str) -> &mut Self {
        self.set_attribute("gen_ai.tool.call.id", id)
    }

    /// A tool call's arguments, as JSON: records their fingerprint
    /// ([`TOOL_ARGS_HASH`](mission_core::fingerprint::attr::TOOL_ARGS_HASH), 16 hex digits)
    /// and their size, never the arguments themselves, so a directive can catch a loop
    /// (`3 same tool calls in a thread`) with content capture off. Give the same text for the
    /// same arguments (e.g. keys in a fixed order). On a span that is not a tool call, it does
    /// nothing.
    pub fn set_arguments(&mut self, json: &str) -> &mut Self {
        use mission_core::fingerprint::attr::TOOL_ARGS_HASH;
        if self.set_fingerprint(SpanKind::ToolCall, TOOL_ARGS_HASH, json) {
            self.set_arguments_size(json.len() as u64);
        }
        self
    }

    /// An LLM call's request in a canonical text form (e.g. the model and the messages as
    /// JSON): records its fingerprint
    /// ([`LLM_REQUEST_HASH`](mission_core::fingerprint::attr::LLM_REQUEST_HASH), 16 hex
    /// digits), never the request, so a directive can catch the same request sent again and
    /// again (`3 same llm requests in a thread`). On a span that is not an LLM call, it does
    /// nothing.
    pub fn set_request(&mut self, canonical_request: &str) -> &mut Self {
        use mission_core::fingerprint::attr::LLM_REQUEST_HASH;
        self.set_fingerprint(SpanKind::LlmCall, LLM_REQUEST_HASH, canonical_request);
        self
    }

    /// Sets attribute `key` to the fingerprint of `text` if this span is of `kind`; returns
    /// whether it is.
    fn set_fingerprint(&mut self, kind: SpanKind, key: &str, text: &str) -> bool {
        use mission_core::fingerprint::{fingerprint, hex};
        if self.kind == kind {
            self.set_attribute(key, hex(fingerprint(text.as_bytes())));
        }
        self.kind == kind
    }

    /// Sets an attribute.
    pub fn set_attribute(&mut self, key: &str, value: impl Into<AttrValue>) -> &mut Self {
        self.inner.set_attribute(Symbol::intern(key), value);
        self
    }

    /// Marks the span failed with `message`.
    pub fn set_error(&mut self, message: &str) -> &mut Self {
        self.inner.set_error(message);
        self
    }

    /// Marks the span succeeded.
    pub fn set_ok(&mut self) -> &mut Self {
        self.inner.set_status(Status::Ok);
        self
    }

    /// Passes `result` through, marking the span failed if it is an error:
    /// `let rows = span.check(query())?;`.
    pub fn check<T, E: Display>(
        &mut self,
        result: std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        if let Err(e) = &result {
            self.set_error(&e.to_string());
        }
        result
    }

    /// Awaits `future` inside this span and ends it, failed if the future returned an error.
    pub async fn instrument<T, E: Display>(
        mut self,
        future: impl Future<Output = std::result::Result<T, E>>,
    ) -> std::result::Result<T, E> {
        let result = future.await;
        let result = self.check(result);
        self.end();
        result
    }

    /// Ends the span now.
    pub fn end(self) {
        drop(self);
    }

    /// An LLM call spends its thread's budget (and every ancestor's).
    fn charge(&mut self) {
        let Some(h) = self.thread else { return };
        let Some(usage) = self.llm_call_usage() else { return };
        let charge = Charge {
            turns: 1,
            tokens: u64::from(usage.input_tokens) + u64::from(usage.output_tokens),
            cost_usd: usage.cost_usd,
            context_tokens: u64::from(usage.input_tokens),
        };
        self.control.threads.charge(h, charge, Timestamp::now().0);
    }

    fn price(&mut self) {
        let prices = &self.control.prices;
        if let Some(usage) = self.inner.llm_usage_mut()
            && usage.cost_usd == 0.0
            && !usage.model.is_empty()
            && let Some(cost) = prices.cost(usage)
        {
            usage.cost_usd = cost;
        }
    }
}

impl Drop for Span<'_> {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            self.control.in_flight.deregister(ticket);
        }
        self.price();
        self.charge();
        // `inner` records itself when dropped right after this.
    }
}
