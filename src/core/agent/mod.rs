//! The agent loop (spec 03), our `create_agent` + `stream_agent`: history and a user
//! message in; model requests, tool calls, steering and compaction until the model is done,
//! the run is interrupted, a limit is hit or the provider fails; the exported state out.
//!
//! The loop never fails half-way: whatever ends it, the returned state is a valid history
//! (every tool call has a result) that a later run continues exactly.

mod budget;
mod compaction;
mod deferred;
mod response;
mod retry;
mod tool_calls;

#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex};

use ports::{
    CompactCompleted, CompactStarted, EventPayload, HandoffCompleted, InterruptReceived,
    ModelError, ModelMessage, ModelProvider, ModelRequest, ModelSettings, PendingToolCall,
    SessionState, SteeringInjected, ToolCallArgsDelta, ToolCallStart, ToolCallStatus, ToolResult,
    Usage, UsageSnapshot, UserPart, Warning,
};
pub use ports::{Limit, RunLimits};

pub use budget::LIMIT_WARNING;
pub use deferred::{
    Deferral, ExternalResult, Interaction, Resolutions, check as check_resolutions,
};
pub use retry::RetryPolicy;

use super::environment::Environment;
use super::run::{CollectingSink, EventSink, RunControl, Steer};
use super::tools::{Scratch, ToolContext, Toolbox};
use budget::Budget;
use deferred::{Disposition, Plan};
use response::{Reply, StreamEnd};
use tool_calls::CallRequest;

/// The `warning` code of a switch to a fallback model.
pub const MODEL_FALLBACK: &str = "model_fallback";

/// Heads the handoff notes at the end of the system prompt.
const HANDOFF_SECTION: &str = "\n\n## Handoff notes\nNotes you wrote when you last handed off \
    the context (it was restarted then):\n";

/// The history's first message after a handoff.
const HANDOFF_RESTART: &str = "[Handoff: the context was restarted. Your notes are in the \
    system prompt under \"Handoff notes\".]\n\nContinue the task.";

/// Everything that shapes one agent, resolved before the run.
#[derive(Clone)]
pub struct AgentSpec {
    /// `main`, or the subagent's id.
    pub agent_id: String,
    pub model: ModelSettings,
    /// Already rendered.
    pub system_prompt: String,
    pub toolbox: Toolbox,
    /// The effective caps: the preset's over the service's defaults, lowered by the run's
    /// override.
    pub limits: RunLimits,
    pub retry: RetryPolicy,
    /// Calls that wait for a human or the caller instead of running.
    pub deferral: Deferral,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum RunEnd {
    /// The model answered without calling tools and no steering was pending.
    Completed,
    Interrupted {
        reason: Option<String>,
    },
    LimitReached {
        limit: Limit,
        message: String,
    },
    /// The model called tools that wait for a human's approval or for the caller; the
    /// other calls of that step ran.
    AwaitingToolResults {
        pending: Vec<PendingToolCall>,
    },
    /// The provider failed after retries. `code` is stable: `model_rate_limited`,
    /// `model_auth`, `model_context_too_long`, `model_stream_cut`, `model_unknown`,
    /// `model_error`.
    Failed {
        code: &'static str,
        message: String,
    },
}

/// What a run leaves behind.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutcome {
    /// The state to commit; `context_state.usage` includes this run.
    pub state: SessionState,
    pub end: RunEnd,
    /// This run's usage alone.
    pub usage: Usage,
    /// The model that answered the last request, if any answered.
    pub model: Option<String>,
}

/// An agent bound to a provider and an environment.
pub struct Agent {
    provider: Arc<dyn ModelProvider>,
    env: Arc<Environment>,
    spec: AgentSpec,
}

/// A run's mutable state, threaded through the steps of the loop.
struct Run<'a> {
    control: &'a RunControl,
    sink: &'a dyn EventSink,
    budget: &'a Budget,
    history: Vec<ModelMessage>,
    usage: Usage,
    /// Tokens the provider reported for the last request and its answer.
    last_reported: u64,
    /// The model that answered the last request.
    model: Option<String>,
    /// The notes of the latest `handoff` (this run's or an earlier one's), shown in the
    /// system prompt so they survive compaction and later runs.
    notes: Option<String>,
    scratch: Arc<Mutex<Scratch>>,
}

impl Agent {
    pub fn new(provider: Arc<dyn ModelProvider>, env: Arc<Environment>, spec: AgentSpec) -> Self {
        Self {
            provider,
            env,
            spec,
        }
    }

    /// Runs until done; see the module docs.
    pub async fn run(
        &self,
        state: SessionState,
        input: Vec<UserPart>,
        control: &RunControl,
        sink: &dyn EventSink,
    ) -> RunOutcome {
        self.resume(state, Resolutions::default(), input, control, sink)
            .await
    }

    /// Like [`Self::run`], but first resolves the calls `state` left pending (approved ones
    /// run now, the rest are answered), then adds `input`, which may be empty.
    pub async fn resume(
        &self,
        state: SessionState,
        resolutions: Resolutions,
        input: Vec<UserPart>,
        control: &RunControl,
        sink: &dyn EventSink,
    ) -> RunOutcome {
        let SessionState {
            mut context_state,
            message_history,
        } = state;
        let pending = std::mem::take(&mut context_state.pending_tool_calls);
        let scratch = Arc::new(Mutex::new(Scratch::take_from(&mut context_state)));
        let budget = Budget::new(self.spec.limits);
        let mut run = Run {
            control,
            sink,
            budget: &budget,
            history: message_history,
            usage: Usage::default(),
            last_reported: 0,
            model: None,
            notes: context_state.handoff_notes.take(),
            scratch: scratch.clone(),
        };
        self.resolve(&mut run, pending, resolutions).await;
        if !input.is_empty() {
            run.history.push(ModelMessage::User { parts: input });
        }
        let end = self.steps_within_deadline(&mut run).await;
        self.wind_down(&mut run, &end);
        let scratch = std::mem::take(
            &mut *scratch
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        run.usage.add(&scratch.restore_into(&mut context_state));
        if let RunEnd::AwaitingToolResults { pending } = &end {
            context_state.pending_tool_calls.clone_from(pending);
        }
        context_state.usage.add(&run.usage);
        context_state.handoff_notes = run.notes;
        RunOutcome {
            state: SessionState {
                context_state,
                message_history: run.history,
            },
            end,
            usage: run.usage,
            model: run.model,
        }
    }

    /// The steps, with the duration cap's timer running beside them.
    async fn steps_within_deadline(&self, run: &mut Run<'_>) -> RunEnd {
        let (budget, control, sink) = (run.budget, run.control, run.sink);
        let deadline = budget.enforce_deadline(control, sink, &self.spec.agent_id);
        tokio::select! {
            biased;
            end = self.steps(run) => end,
            never = deadline => match never {},
        }
    }

    /// What follows the last step: steering that came too late joins the history, and an
    /// interrupt is announced.
    fn wind_down(&self, run: &mut Run<'_>, end: &RunEnd) {
        let leftover = run.control.steering().close();
        self.inject(run, leftover);
        if let RunEnd::Interrupted { reason } = end {
            run.sink.emit(
                &self.spec.agent_id,
                EventPayload::InterruptReceived(InterruptReceived {
                    reason: reason.clone(),
                }),
            );
        }
    }

    /// Steps (model request, tools, steering), repeated until something ends the run.
    async fn steps(&self, run: &mut Run<'_>) -> RunEnd {
        let toolbox = &self.spec.toolbox;
        let mut schemas = toolbox.schemas();
        schemas.extend(self.spec.deferral.external.iter().cloned());
        loop {
            if run.control.is_interrupted() {
                return self.interrupted(run);
            }
            if let Some(end) = run.budget.check(&run.usage, run.sink, &self.spec.agent_id) {
                return end;
            }
            if let Some(end) = self.compact_if_needed(run, &schemas).await {
                return end;
            }
            // The history moves into the request and back: each attempt clones it once.
            let mut request = self.request(
                run.notes.as_deref(),
                std::mem::take(&mut run.history),
                schemas.clone(),
            );
            let reply = self.ask(&mut request, run, run.sink).await;
            run.history = request.messages;
            if reply.answered() {
                run.model = Some(request.model);
            }
            run.usage.add(&reply.usage);
            run.last_reported = reply.usage.total_tokens;
            run.sink.emit(
                &self.spec.agent_id,
                EventPayload::UsageSnapshot(UsageSnapshot { usage: run.usage }),
            );
            let calls: Vec<CallRequest> = reply
                .tool_calls()
                .map(|(id, name, arguments)| CallRequest {
                    id: id.to_owned(),
                    name: name.to_owned(),
                    arguments: arguments.to_owned(),
                })
                .collect();
            let end = match reply.end {
                StreamEnd::Finished => None,
                StreamEnd::Interrupted => Some(self.interrupted(run)),
                StreamEnd::Failed(e) => Some(failed(e)),
            };
            // A partial answer stays in history (it reached the caller); tool calls only
            // come with a complete response.
            if !reply.parts.is_empty() && !matches!(end, Some(RunEnd::Failed { .. })) {
                run.history
                    .push(ModelMessage::Assistant { parts: reply.parts });
            }
            if let Some(end) = end {
                return end;
            }
            if calls.is_empty() {
                let steers = run.control.steering().take_or_close();
                if steers.is_empty() {
                    return RunEnd::Completed;
                }
                self.inject(run, steers);
                continue;
            }
            let pending = self.run_calls(run, calls).await;
            if run.control.is_interrupted() {
                return self.interrupted(run);
            }
            if !pending.is_empty() {
                return RunEnd::AwaitingToolResults { pending };
            }
            self.handoff_if_requested(run);
            let steers = run.control.steering().take();
            self.inject(run, steers);
        }
    }

    /// Runs the calls of one step that need nothing, answers refused ones, and
    /// returns the deferred ones. Appends one tool message with every result, in call
    /// order; after an interrupt the deferred calls are answered as cancelled instead, so
    /// the history stays valid.
    async fn run_calls(&self, run: &mut Run<'_>, calls: Vec<CallRequest>) -> Vec<PendingToolCall> {
        let agent_id = self.spec.agent_id.as_str();
        let mut results: Vec<(usize, ToolResult)> = Vec::new();
        let mut to_run = Vec::new();
        let mut order = Vec::new();
        let mut pending = Vec::new();
        let mut deferred_at = Vec::new();
        let mut left = run.budget.tool_calls_left();
        for (i, call) in calls.into_iter().enumerate() {
            let disposition = match left {
                Some(0) => Disposition::Refuse(format!(
                    "not run: the run reached its limit of {} tool calls (max_tool_calls)",
                    self.spec.limits.max_tool_calls.unwrap_or(0)
                )),
                _ => self.spec.deferral.disposition(&call.name, &call.arguments),
            };
            match disposition {
                Disposition::Run => {
                    left = left.map(|l| l - 1);
                    order.push(i);
                    to_run.push(call);
                }
                Disposition::Defer(kind) => {
                    deferred_at.push(i);
                    pending.push(PendingToolCall {
                        args: deferred::args_value(&call.arguments),
                        tool_call_id: call.id,
                        tool_name: call.name,
                        kind,
                    });
                }
                Disposition::Refuse(message) => {
                    let result = error_result(call.id, call.name, message);
                    tool_calls::report(run.sink, agent_id, &result, ToolCallStatus::Error);
                    results.push((i, result));
                }
            }
        }
        let ran = self.run_tools(run, to_run).await;
        results.extend(order.into_iter().zip(ran));
        if run.control.is_interrupted() {
            for (i, call) in deferred_at.into_iter().zip(pending.drain(..)) {
                let result = error_result(
                    call.tool_call_id,
                    call.tool_name,
                    "interrupted: the call was not run".to_owned(),
                );
                tool_calls::report(run.sink, agent_id, &result, ToolCallStatus::Cancelled);
                results.push((i, result));
            }
        }
        // In call order, cancelled ones included: providers pair results with calls.
        results.sort_by_key(|(i, _)| *i);
        let results: Vec<ToolResult> = results.into_iter().map(|(_, r)| r).collect();
        if !results.is_empty() {
            run.history.push(ModelMessage::Tool { results });
        }
        pending
    }

    /// Runs calls with the run's tool context; what nested agents used joins the run's usage.
    async fn run_tools(&self, run: &mut Run<'_>, calls: Vec<CallRequest>) -> Vec<ToolResult> {
        if calls.is_empty() {
            return Vec::new();
        }
        run.budget.count_tool_calls(calls.len());
        let ctx = ToolContext {
            env: self.env.clone(),
            scratch: run.scratch.clone(),
            control: run.control,
            sink: run.sink,
        };
        let results = tool_calls::run_calls(
            calls,
            &self.spec.toolbox,
            &ctx,
            run.control,
            run.sink,
            &self.spec.agent_id,
        )
        .await;
        let nested = std::mem::take(
            &mut run
                .scratch
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .nested_usage,
        );
        run.usage.add(&nested);
        results
    }

    /// Resolves the calls the parent session left pending (spec 05): approved calls run
    /// now, the others are answered from the resolutions or automatically. Each call is
    /// announced again (start, arguments) so this run's transcript shows it whole.
    async fn resolve(
        &self,
        run: &mut Run<'_>,
        pending: Vec<PendingToolCall>,
        resolutions: Resolutions,
    ) {
        if pending.is_empty() {
            return;
        }
        let agent_id = self.spec.agent_id.as_str();
        let plans = deferred::plan(pending, resolutions, &run.history);
        let mut results: Vec<Option<ToolResult>> = Vec::with_capacity(plans.len());
        let mut to_run = Vec::new();
        for (call, plan) in plans {
            run.sink.emit(
                agent_id,
                EventPayload::ToolCallStart(ToolCallStart {
                    tool_call_id: call.tool_call_id.clone(),
                    tool_name: call.tool_name.clone(),
                }),
            );
            run.sink.emit(
                agent_id,
                EventPayload::ToolCallArgsDelta(ToolCallArgsDelta {
                    tool_call_id: call.tool_call_id.clone(),
                    delta: deferred::args_text(&call.args),
                }),
            );
            match plan {
                Plan::Run(request) => {
                    to_run.push(request);
                    results.push(None);
                }
                Plan::Answer(result) => {
                    let status = if result.is_error {
                        ToolCallStatus::Error
                    } else {
                        ToolCallStatus::Success
                    };
                    tool_calls::report(run.sink, agent_id, &result, status);
                    results.push(Some(result));
                }
            }
        }
        let mut ran = self.run_tools(run, to_run).await.into_iter();
        let results: Vec<ToolResult> = results
            .into_iter()
            .filter_map(|r| r.or_else(|| ran.next()))
            .collect();
        deferred::insert_results(&mut run.history, results);
    }

    fn request(
        &self,
        notes: Option<&str>,
        messages: Vec<ModelMessage>,
        tools: Vec<ports::ToolSchema>,
    ) -> ModelRequest {
        let system = match notes {
            Some(notes) => format!("{}{HANDOFF_SECTION}{notes}", self.spec.system_prompt),
            None => self.spec.system_prompt.clone(),
        };
        ModelRequest {
            model: self.spec.model.name.clone(),
            system,
            messages,
            tools,
            temperature: self.spec.model.temperature,
            max_tokens: self.spec.model.max_tokens,
            thinking: self.spec.model.thinking,
            reasoning_effort: self.spec.model.reasoning_effort,
            prompt_cache: self.spec.model.prompt_cache,
        }
    }

    /// One model response from the preset's model or, when it is down (its retries spent
    /// on outages, or its endpoint's breaker open) before it said anything, from its
    /// fallbacks in order, each announced with a `model_fallback` warning. On return
    /// `request.model` names the model that answered last.
    async fn ask(&self, request: &mut ModelRequest, run: &Run<'_>, sink: &dyn EventSink) -> Reply {
        let mut reply = self.ask_model(request, run, sink).await;
        for fallback in &self.spec.model.fallbacks {
            let StreamEnd::Failed(e) = &reply.end else {
                break;
            };
            if reply.emitted || !e.warrants_fallback() {
                break;
            }
            run.sink.emit(
                &self.spec.agent_id,
                EventPayload::Warning(Warning {
                    code: MODEL_FALLBACK.to_owned(),
                    message: format!("{} failed ({e}); trying {fallback}", request.model),
                }),
            );
            request.model.clone_from(fallback);
            reply = self.ask_model(request, run, sink).await;
        }
        reply
    }

    /// One model response from `request.model`, retrying failures that happen before
    /// anything was emitted (a refused request, or a stream that fails before its first
    /// event).
    async fn ask_model(
        &self,
        request: &ModelRequest,
        run: &Run<'_>,
        sink: &dyn EventSink,
    ) -> Reply {
        let policy = &self.spec.retry;
        let mut attempt = 1;
        loop {
            let opened = tokio::select! {
                biased;
                () = run.control.interrupted() => return empty_reply(StreamEnd::Interrupted),
                r = self.provider.stream(request) => r,
            };
            let reply = match opened {
                Ok(stream) => {
                    response::consume(stream, run.control, sink, &self.spec.agent_id).await
                }
                Err(e) => empty_reply(StreamEnd::Failed(e)),
            };
            match &reply.end {
                StreamEnd::Failed(e)
                    if !reply.emitted && e.is_retryable() && attempt < policy.max_attempts =>
                {
                    let wait = policy.delay(attempt, e);
                    tracing::warn!(attempt, wait_ms = wait.as_millis() as u64, error = %e, "model request failed before any content; retrying");
                    tokio::select! {
                        biased;
                        () = run.control.interrupted() => return empty_reply(StreamEnd::Interrupted),
                        () = tokio::time::sleep(wait) => {}
                    }
                    attempt += 1;
                }
                _ => return reply,
            }
        }
    }

    /// Summarizes older history when the next request would be too large. A failed summary
    /// leaves the history as it was (the provider may still cope); an interrupt ends the run.
    async fn compact_if_needed(
        &self,
        run: &mut Run<'_>,
        schemas: &[ports::ToolSchema],
    ) -> Option<RunEnd> {
        let window = compaction::context_window(&self.spec.model);
        let estimate = compaction::estimate_tokens(&self.spec.system_prompt, &run.history, schemas)
            .max(run.last_reported);
        if !compaction::needs_compaction(estimate, window) {
            return None;
        }
        let overhead = compaction::estimate_tokens(&self.spec.system_prompt, &[], schemas);
        let split = compaction::split_point(&run.history, window, overhead)?;
        let before = run.history.len() as u64;
        run.sink.emit(
            &self.spec.agent_id,
            EventPayload::CompactStarted(CompactStarted {
                messages_before: before,
            }),
        );
        let old = compaction::summary_request(&run.history[..split]);
        let mut request = self.request(run.notes.as_deref(), old, Vec::new());
        // The summary is internal: its deltas are not the conversation's content.
        let quiet = CollectingSink::default();
        let reply = self.ask(&mut request, run, &quiet).await;
        run.usage.add(&reply.usage);
        match reply.end {
            StreamEnd::Interrupted => return Some(self.interrupted(run)),
            StreamEnd::Failed(e) => {
                tracing::warn!(error = %e, "context compaction failed; continuing uncompacted");
            }
            StreamEnd::Finished => {
                let summary = ports::AssistantPart::text_of(&reply.parts);
                let tail = run.history.split_off(split);
                run.history = compaction::compacted(&summary, tail, window);
                run.last_reported = 0;
            }
        }
        run.sink.emit(
            &self.spec.agent_id,
            EventPayload::CompactCompleted(CompactCompleted {
                messages_before: before,
                messages_after: run.history.len() as u64,
            }),
        );
        None
    }

    /// After a `handoff` call, the context restarts from the model's summary.
    fn handoff_if_requested(&self, run: &mut Run<'_>) {
        let summary = run
            .scratch
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .handoff
            .take();
        let Some(summary) = summary else { return };
        run.history = vec![ModelMessage::User {
            parts: vec![UserPart::Text {
                text: HANDOFF_RESTART.to_owned(),
            }],
        }];
        run.notes = Some(summary.clone());
        run.sink.emit(
            &self.spec.agent_id,
            EventPayload::HandoffCompleted(HandoffCompleted { summary }),
        );
    }

    /// Appends steering messages as one user message, announcing each.
    fn inject(&self, run: &mut Run<'_>, steers: Vec<Steer>) {
        if steers.is_empty() {
            return;
        }
        let mut parts = Vec::with_capacity(steers.len());
        for steer in steers {
            run.sink.emit(
                &self.spec.agent_id,
                EventPayload::SteeringInjected(SteeringInjected {
                    message_id: Some(steer.message_id),
                    text: steer.text,
                }),
            );
            parts.extend(steer.parts);
        }
        run.history.push(ModelMessage::User { parts });
    }

    /// How an interrupted run ends: at its duration limit when the deadline stopped it.
    fn interrupted(&self, run: &Run<'_>) -> RunEnd {
        if let Some(end) = run.budget.deadline_end() {
            return end;
        }
        RunEnd::Interrupted {
            reason: run.control.interrupt_reason(),
        }
    }
}

fn error_result(tool_call_id: String, tool_name: String, content: String) -> ToolResult {
    ToolResult {
        tool_call_id,
        tool_name,
        content,
        is_error: true,
        images: Vec::new(),
    }
}

fn empty_reply(end: StreamEnd) -> Reply {
    Reply {
        parts: Vec::new(),
        usage: Usage::default(),
        end,
        emitted: false,
    }
}

/// The stable code and message of a provider failure.
fn failed(e: ModelError) -> RunEnd {
    RunEnd::Failed {
        code: e.code(),
        message: e.to_string(),
    }
}
