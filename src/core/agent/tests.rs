//! Unit tests of the loop with mocked provider, workspace and shell.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use ports::mocks::{MockModelProvider, MockShell, MockWorkspace};
use ports::{
    AssistantPart, ContentKind, EventPayload, ModelDelta, ModelError, ModelMessage, ModelRequest,
    SessionState, ShellOutput, TaskStatus, ToolCallStatus, ToolsetSpec, Usage, UserPart,
    WorkspaceError,
};

use super::*;
use crate::core::environment::{Environment, ShellLimits};
use crate::core::tools::{Tool, ToolError, ToolOutput};

// ---- scripted provider -------------------------------------------------------------

enum Answer {
    /// `stream()` itself fails.
    Refuse(ModelError),
    /// These items, then the stream ends.
    Items(Vec<Result<ModelDelta, ModelError>>),
    /// These deltas, then nothing ever again.
    Hang(Vec<ModelDelta>),
}

#[derive(Default)]
struct Script {
    answers: Mutex<VecDeque<Answer>>,
    requests: Mutex<Vec<ModelRequest>>,
}

impl Script {
    fn push(&self, answer: Answer) {
        self.answers.lock().unwrap().push_back(answer);
    }
    fn requests(&self) -> Vec<ModelRequest> {
        self.requests.lock().unwrap().clone()
    }
}

fn provider(script: &Arc<Script>) -> Arc<dyn ModelProvider> {
    let script = script.clone();
    let mut mock = MockModelProvider::new();
    mock.expect_stream().returning(move |req| {
        script.requests.lock().unwrap().push(req.clone());
        let answer = script
            .answers
            .lock()
            .unwrap()
            .pop_front()
            .expect("the test scripted enough answers");
        match answer {
            Answer::Refuse(e) => Err(e),
            Answer::Items(items) => Ok(futures::stream::iter(items).boxed()),
            Answer::Hang(deltas) => Ok(futures::stream::iter(deltas.into_iter().map(Ok))
                .chain(futures::stream::pending())
                .boxed()),
        }
    });
    Arc::new(mock)
}

fn usage(total: u64) -> ModelDelta {
    ModelDelta::Usage(Usage {
        total_tokens: total,
        prompt_tokens: total / 2,
        completion_tokens: total - total / 2,
        model_requests: 1,
        ..Default::default()
    })
}

fn finish() -> ModelDelta {
    ModelDelta::Finish {
        reason: "stop".into(),
    }
}

/// A text answer in the given chunks.
fn text(chunks: &[&str]) -> Answer {
    let mut items: Vec<_> = chunks
        .iter()
        .map(|c| Ok(ModelDelta::Text((*c).into())))
        .collect();
    items.push(Ok(usage(10)));
    items.push(Ok(finish()));
    Answer::Items(items)
}

/// Tool calls `(id, name, args)`, each with its arguments split in two fragments.
fn calls(list: &[(&str, &str, &str)]) -> Answer {
    let mut items = Vec::new();
    for (i, (id, name, args)) in list.iter().enumerate() {
        items.push(Ok(ModelDelta::ToolCallStart {
            index: i as u32,
            id: (*id).into(),
            name: (*name).into(),
        }));
        let mid = args.len() / 2;
        for fragment in [&args[..mid], &args[mid..]] {
            items.push(Ok(ModelDelta::ToolCallArgs {
                index: i as u32,
                fragment: fragment.into(),
            }));
        }
    }
    items.push(Ok(usage(20)));
    items.push(Ok(ModelDelta::Finish {
        reason: "tool_calls".into(),
    }));
    Answer::Items(items)
}

// ---- environment and agent ---------------------------------------------------------

fn env(workspace: MockWorkspace, shell: MockShell) -> Arc<Environment> {
    Arc::new(Environment {
        workspace: Arc::new(workspace),
        downloader: Arc::new(ports::mocks::MockDownloader::new()),
        search: None,
        scraper: None,
        shell: Arc::new(shell),
        command_vars: vec![("PATH".into(), "/usr/bin".into())],
        limits: ShellLimits::default(),
        redactor: Default::default(),
        files: Default::default(),
    })
}

fn quiet_env() -> Arc<Environment> {
    env(MockWorkspace::new(), MockShell::new())
}

fn toolsets(names: &[&str]) -> Toolbox {
    Toolbox::from_toolsets(
        &names
            .iter()
            .map(|n| ToolsetSpec {
                toolset_name: (*n).into(),
                enabled: true,
                exclude_tools: vec![],
            })
            .collect::<Vec<_>>(),
        crate::core::tools::WebServices::default(),
    )
}

fn spec(toolbox: Toolbox) -> AgentSpec {
    AgentSpec {
        agent_id: "main".into(),
        model: ports::ModelSettings {
            name: "test:scripted".into(),
            ..Default::default()
        },
        system_prompt: "be brief".into(),
        toolbox,
        limits: RunLimits::default(),
        retry: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
        },
        deferral: Deferral::default(),
    }
}

fn user(text: &str) -> Vec<UserPart> {
    vec![UserPart::Text { text: text.into() }]
}

fn types(events: &[(String, EventPayload)]) -> Vec<&'static str> {
    events.iter().map(|(_, e)| e.event_type()).collect()
}

fn last_user_text(req: &ModelRequest) -> String {
    req.messages
        .iter()
        .rev()
        .find_map(|m| match m {
            ModelMessage::User { parts } => Some(
                parts
                    .iter()
                    .filter_map(|p| match p {
                        UserPart::Text { text } => Some(text.as_str()),
                        UserPart::Image { .. } => None,
                    })
                    .collect::<Vec<_>>()
                    .join("|"),
            ),
            _ => None,
        })
        .unwrap_or_default()
}

fn tool_results(req: &ModelRequest) -> Vec<ports::ToolResult> {
    req.messages
        .iter()
        .filter_map(|m| match m {
            ModelMessage::Tool { results } => Some(results.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

async fn run(
    agent: &Agent,
    state: SessionState,
    input: &str,
    control: &RunControl,
) -> (RunOutcome, Vec<(String, EventPayload)>) {
    let sink = CollectingSink::default();
    let outcome = agent.run(state, user(input), control, &sink).await;
    (outcome, sink.events())
}

// ---- a controllable tool -----------------------------------------------------------

/// A tool the tests steer: it can wait on a shared barrier, hang, or record overlap.
struct Probe {
    name: &'static str,
    mutates: bool,
    barrier: Option<Arc<tokio::sync::Barrier>>,
    hang: bool,
    dropped: Arc<AtomicBool>,
    active: Arc<AtomicUsize>,
    max_active: Arc<AtomicUsize>,
    on_call: Option<Box<dyn Fn() + Send + Sync>>,
}

impl Probe {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            mutates: false,
            barrier: None,
            hang: false,
            dropped: Arc::new(AtomicBool::new(false)),
            active: Arc::new(AtomicUsize::new(0)),
            max_active: Arc::new(AtomicUsize::new(0)),
            on_call: None,
        }
    }
}

struct DropFlag(Arc<AtomicBool>);
impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[async_trait]
impl Tool for Probe {
    fn name(&self) -> &str {
        self.name
    }
    fn description(&self) -> &str {
        "probe"
    }
    fn parameters(&self) -> serde_json::Value {
        serde_json::json!({"type": "object"})
    }
    fn mutates_files(&self) -> bool {
        self.mutates
    }
    async fn call(&self, _: &ToolContext<'_>, arguments: &str) -> Result<ToolOutput, ToolError> {
        let _flag = DropFlag(self.dropped.clone());
        if let Some(f) = &self.on_call {
            f();
        }
        let now = self.active.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_active.fetch_max(now, Ordering::SeqCst);
        if let Some(b) = &self.barrier {
            b.wait().await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        if self.hang {
            futures::future::pending::<()>().await;
        }
        self.active.fetch_sub(1, Ordering::SeqCst);
        if arguments.contains("fail") {
            return Err(ToolError("probe failed as asked".into()));
        }
        Ok(ToolOutput::text(format!("{} ok {arguments}", self.name)))
    }
}

// ---- tests ---------------------------------------------------------------------------

#[tokio::test]
async fn text_answer_streams_events_and_completes() {
    let script = Arc::new(Script::default());
    script.push(text(&["Hel", "lo"]));
    let agent = Agent::new(provider(&script), quiet_env(), spec(Toolbox::default()));
    let (out, events) = run(&agent, SessionState::default(), "hi", &RunControl::new()).await;

    assert_eq!(out.end, RunEnd::Completed);
    assert_eq!(
        types(&events),
        [
            "message_start",
            "content_delta",
            "content_delta",
            "content_done",
            "message_end",
            "usage_snapshot"
        ]
    );
    assert!(
        matches!(&events[3].1, EventPayload::ContentDone(d) if d.text == "Hello" && d.kind == ContentKind::Text)
    );
    assert_eq!(
        out.state.message_history,
        vec![
            ModelMessage::User { parts: user("hi") },
            ModelMessage::Assistant {
                parts: vec![AssistantPart::Text {
                    text: "Hello".into()
                }]
            }
        ]
    );
    assert_eq!(out.usage.model_requests, 1);
    assert_eq!(out.state.context_state.usage, out.usage);
    let req = &script.requests()[0];
    assert_eq!(req.system, "be brief");
    assert_eq!(req.model, "test:scripted");
}

#[tokio::test]
async fn a_tool_call_runs_and_the_model_sees_its_result() {
    let script = Arc::new(Script::default());
    script.push(calls(&[(
        "c1",
        "write",
        r#"{"path":"notes.txt","content":"hi there"}"#,
    )]));
    script.push(text(&["done"]));
    let mut ws = MockWorkspace::new();
    ws.expect_write()
        .withf(|path, contents| path == "notes.txt" && contents == b"hi there")
        .times(1)
        .returning(|_, _| Ok(()));
    let agent = Agent::new(
        provider(&script),
        env(ws, MockShell::new()),
        spec(toolsets(&["core"])),
    );
    let (out, events) = run(
        &agent,
        SessionState::default(),
        "write it",
        &RunControl::new(),
    )
    .await;

    assert_eq!(out.end, RunEnd::Completed);
    let t = types(&events);
    assert_eq!(
        &t[..8],
        [
            "message_start",
            "tool_call_start",
            "tool_call_args_delta",
            "tool_call_args_delta",
            "message_end",
            "usage_snapshot",
            "tool_call_result",
            "tool_call_end"
        ]
    );
    let results = tool_results(&script.requests()[1]);
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].tool_call_id, "c1");
    assert_eq!(results[0].content, "Wrote 8 bytes to notes.txt");
    assert!(!results[0].is_error);
    // The assistant message keeps the reassembled arguments verbatim.
    assert!(matches!(
        &out.state.message_history[1],
        ModelMessage::Assistant { parts } if parts == &vec![AssistantPart::ToolCall {
            id: "c1".into(), name: "write".into(),
            arguments: r#"{"path":"notes.txt","content":"hi there"}"#.into()
        }]
    ));
    assert_eq!(out.state.message_history.len(), 4);
    assert_eq!(out.usage.model_requests, 2);
    assert_eq!(out.usage.total_tokens, 30);
}

#[tokio::test]
async fn shell_calls_get_the_run_environment_and_report_exit_codes() {
    let script = Arc::new(Script::default());
    script.push(calls(&[(
        "c1",
        "shell",
        r#"{"command":"ls","cwd":"src","timeout_secs":5}"#,
    )]));
    script.push(text(&["ok"]));
    let mut ws = MockWorkspace::new();
    ws.expect_shell_dir()
        .withf(|p| p == "src")
        .returning(|_| Ok("/work/src".into()));
    let mut shell = MockShell::new();
    shell
        .expect_run()
        .withf(|r| {
            r.command == "ls"
                && r.cwd == "/work/src"
                && r.timeout == Duration::from_secs(5)
                && r.env == vec![("PATH".to_owned(), "/usr/bin".to_owned())]
        })
        .returning(|_| {
            Ok(ShellOutput {
                exit_code: Some(2),
                stdout: "a\n".into(),
                stderr: "oops".into(),
                ..Default::default()
            })
        });
    let agent = Agent::new(
        provider(&script),
        env(ws, shell),
        spec(toolsets(&["shell"])),
    );
    let (out, _) = run(&agent, SessionState::default(), "go", &RunControl::new()).await;
    assert_eq!(out.end, RunEnd::Completed);
    let result = &tool_results(&script.requests()[1])[0];
    let report: serde_json::Value = serde_json::from_str(&result.content).unwrap();
    assert_eq!(report["exit_code"], 2);
    assert_eq!(report["stdout"], "a\n");
    assert_eq!(report["stderr"], "oops");
    assert_eq!(report["timed_out"], false);
}

#[tokio::test]
async fn independent_calls_run_in_parallel_and_file_changes_one_at_a_time() {
    let script = Arc::new(Script::default());
    script.push(calls(&[("a", "slow_a", "{}"), ("b", "slow_b", "{}")]));
    script.push(calls(&[
        ("c", "change", "{}"),
        ("d", "change", "{}"),
        ("e", "change", "{}"),
    ]));
    script.push(text(&["ok"]));
    // Both reads must be inside the tool at once to pass the barrier.
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let mut a = Probe::new("slow_a");
    a.barrier = Some(barrier.clone());
    let mut b = Probe::new("slow_b");
    b.barrier = Some(barrier);
    let mut change = Probe::new("change");
    change.mutates = true;
    let max_active = change.max_active.clone();
    let mut toolbox = Toolbox::default();
    toolbox.insert(Arc::new(a));
    toolbox.insert(Arc::new(b));
    toolbox.insert(Arc::new(change));
    let agent = Agent::new(provider(&script), quiet_env(), spec(toolbox));
    let (out, _) = tokio::time::timeout(
        Duration::from_secs(5),
        run(&agent, SessionState::default(), "go", &RunControl::new()),
    )
    .await
    .expect("parallel calls did not deadlock");
    assert_eq!(out.end, RunEnd::Completed);
    assert_eq!(
        max_active.load(Ordering::SeqCst),
        1,
        "mutating calls overlapped"
    );
    let results = tool_results(&script.requests()[2]);
    let ids: Vec<_> = results.iter().map(|r| r.tool_call_id.as_str()).collect();
    assert_eq!(ids, ["a", "b", "c", "d", "e"], "results keep call order");
}

#[tokio::test]
async fn tool_errors_bad_arguments_and_unknown_tools_go_back_to_the_model() {
    let script = Arc::new(Script::default());
    script.push(calls(&[
        ("c1", "view", r#"{"path":"missing.txt"}"#),
        ("c2", "view", r#"{"file":"x"}"#),
        ("c3", "teleport", "{}"),
    ]));
    script.push(text(&["recovered"]));
    let mut ws = MockWorkspace::new();
    ws.expect_read_lines()
        .returning(|p, _| Err(WorkspaceError::NotFound(p.to_owned())));
    let agent = Agent::new(
        provider(&script),
        env(ws, MockShell::new()),
        spec(toolsets(&["core"])),
    );
    let (out, events) = run(&agent, SessionState::default(), "go", &RunControl::new()).await;

    assert_eq!(out.end, RunEnd::Completed, "tool errors never fail the run");
    let results = tool_results(&script.requests()[1]);
    assert!(results.iter().all(|r| r.is_error));
    assert_eq!(results[0].content, "not found: missing.txt");
    assert!(
        results[1]
            .content
            .starts_with("invalid arguments for view: unknown field `file`"),
        "{}",
        results[1].content
    );
    assert!(results[2].content.contains("unknown tool \"teleport\""));
    let ends: Vec<_> = events
        .iter()
        .filter_map(|(_, e)| match e {
            EventPayload::ToolCallEnd(end) => Some(end.status),
            _ => None,
        })
        .collect();
    assert_eq!(ends, vec![ToolCallStatus::Error; 3]);
}

#[tokio::test]
async fn the_request_limit_ends_the_run_with_a_valid_history() {
    let script = Arc::new(Script::default());
    for i in 0..3 {
        script.push(calls(&[(&format!("c{i}"), "task_list", "{}")]));
    }
    let mut s = spec(toolsets(&["task"]));
    s.limits.max_model_requests = Some(3);
    let agent = Agent::new(provider(&script), quiet_env(), s);
    let (out, _) = run(&agent, SessionState::default(), "loop", &RunControl::new()).await;
    assert!(matches!(
        &out.end,
        RunEnd::LimitReached { limit: Limit::MaxModelRequests, message } if message.contains("3 of 3 model requests")
    ));
    assert_eq!(script.requests().len(), 3);
    assert!(matches!(
        out.state.message_history.last(),
        Some(ModelMessage::Tool { .. })
    ));
}

#[tokio::test]
async fn the_token_budget_ends_the_run() {
    let script = Arc::new(Script::default());
    script.push(calls(&[("c0", "task_list", "{}")]));
    script.push(calls(&[("c1", "task_list", "{}")]));
    let mut s = spec(toolsets(&["task"]));
    s.limits.max_total_tokens = Some(40);
    let agent = Agent::new(provider(&script), quiet_env(), s);
    let (out, _) = run(&agent, SessionState::default(), "loop", &RunControl::new()).await;
    assert!(matches!(
        out.end,
        RunEnd::LimitReached {
            limit: Limit::MaxTotalTokens,
            ..
        }
    ));
    assert_eq!(out.usage.total_tokens, 40);
}

/// The `warning` events of a run, as (code, message).
fn warnings(events: &[(String, EventPayload)]) -> Vec<(String, String)> {
    events
        .iter()
        .filter_map(|(_, e)| match e {
            EventPayload::Warning(w) => Some((w.code.clone(), w.message.clone())),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn each_limit_warns_once_at_eighty_percent() {
    let script = Arc::new(Script::default());
    for i in 0..5 {
        script.push(calls(&[(&format!("c{i}"), "task_list", "{}")]));
    }
    let mut s = spec(toolsets(&["task"]));
    s.limits.max_model_requests = Some(5);
    let agent = Agent::new(provider(&script), quiet_env(), s);
    let (out, events) = run(&agent, SessionState::default(), "loop", &RunControl::new()).await;
    assert!(matches!(
        out.end,
        RunEnd::LimitReached {
            limit: Limit::MaxModelRequests,
            ..
        }
    ));
    let warned = warnings(&events);
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert_eq!(warned[0].0, LIMIT_WARNING);
    assert!(
        warned[0]
            .1
            .starts_with("max_model_requests: 4 of 5 model requests"),
        "{warned:?}"
    );
}

/// Calls past the cap are answered "not run" (the history stays valid) and the run ends
/// at the limit before asking the model again.
#[tokio::test]
async fn the_tool_call_limit_answers_the_calls_past_it_and_ends_the_run() {
    let script = Arc::new(Script::default());
    let first: Vec<(String, &str, &str)> = (0..4)
        .map(|i| (format!("c{i}"), "task_list", "{}"))
        .collect();
    let first: Vec<(&str, &str, &str)> =
        first.iter().map(|(a, b, c)| (a.as_str(), *b, *c)).collect();
    script.push(calls(&first));
    script.push(calls(&[
        ("c4", "task_list", "{}"),
        ("c5", "task_list", "{}"),
        ("c6", "task_list", "{}"),
    ]));
    let mut s = spec(toolsets(&["task"]));
    s.limits.max_tool_calls = Some(5);
    let agent = Agent::new(provider(&script), quiet_env(), s);
    let (out, events) = run(&agent, SessionState::default(), "loop", &RunControl::new()).await;
    let RunEnd::LimitReached { limit, message } = &out.end else {
        panic!("{:?}", out.end);
    };
    assert_eq!(*limit, Limit::MaxToolCalls);
    assert!(message.contains("5 of 5 tool calls"), "{message}");
    assert_eq!(script.requests().len(), 2, "no request after the limit");
    let Some(ModelMessage::Tool { results }) = out.state.message_history.last() else {
        panic!("the last step's calls are answered");
    };
    let refused: Vec<(&str, bool)> = results
        .iter()
        .map(|r| (r.tool_call_id.as_str(), r.is_error))
        .collect();
    assert_eq!(refused, [("c4", false), ("c5", true), ("c6", true)]);
    assert!(results[1].content.contains("max_tool_calls"));
    let warned = warnings(&events);
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(
        warned[0].1.starts_with("max_tool_calls: 4 of 5"),
        "{warned:?}"
    );
}

/// The deadline stops a run in the middle of a response that never ends, and the run
/// ends at the limit (not as an interrupt); the warning came first.
#[tokio::test(start_paused = true)]
async fn the_duration_limit_stops_a_hanging_response() {
    let script = Arc::new(Script::default());
    script.push(Answer::Hang(vec![ModelDelta::Text(
        "thinking out loud".into(),
    )]));
    let mut s = spec(toolsets(&[]));
    s.limits.max_duration_secs = Some(30);
    let agent = Agent::new(provider(&script), quiet_env(), s);
    let control = RunControl::new();
    let (out, events) = run(&agent, SessionState::default(), "go", &control).await;
    let RunEnd::LimitReached { limit, message } = &out.end else {
        panic!("{:?}", out.end);
    };
    assert_eq!(*limit, Limit::MaxDurationSecs);
    assert!(message.contains("of 30 seconds"), "{message}");
    let warned = warnings(&events);
    assert_eq!(warned.len(), 1);
    assert!(
        warned[0].1.starts_with("max_duration_secs: 24 of 30"),
        "{warned:?}"
    );
    assert!(
        !events
            .iter()
            .any(|(_, e)| matches!(e, EventPayload::InterruptReceived(_))),
        "a limit is not an interrupt"
    );
    // The partial answer is kept, as after an interrupt.
    assert!(matches!(
        out.state.message_history.last(),
        Some(ModelMessage::Assistant { .. })
    ));
}

#[tokio::test]
async fn steering_is_injected_at_turn_boundaries_and_keeps_the_run_going() {
    let script = Arc::new(Script::default());
    script.push(calls(&[("c1", "probe", "{}")]));
    script.push(text(&["first answer"]));
    script.push(text(&["second answer"]));
    let control = RunControl::new();
    let mut probe = Probe::new("probe");
    let steer_from_tool = control.clone();
    probe.on_call = Some(Box::new(move || {
        steer_from_tool
            .steering()
            .push(text_steer("m1", "use tabs"))
            .unwrap();
    }));
    let mut toolbox = Toolbox::default();
    toolbox.insert(Arc::new(probe));
    let agent = Agent::new(provider(&script), quiet_env(), spec(toolbox));
    // Queued before the first request, it waits for the first step boundary (after the
    // tool results), together with the one sent while the tool ran.
    control
        .steering()
        .push(text_steer("m0", "be careful"))
        .unwrap();
    let (out, events) = run(&agent, SessionState::default(), "go", &control).await;
    assert_eq!(out.end, RunEnd::Completed);
    let reqs = script.requests();
    assert_eq!(reqs.len(), 2, "two requests: the steer joins the second");
    assert_eq!(last_user_text(&reqs[1]), "be careful|use tabs");
    let injected: Vec<_> = events
        .iter()
        .filter_map(|(_, e)| match e {
            EventPayload::SteeringInjected(s) => Some(s.text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(injected, ["be careful", "use tabs"]);
    // Once finished, a steer is refused rather than lost.
    assert!(
        control
            .steering()
            .push(text_steer("late", "too late"))
            .is_err()
    );
}

#[tokio::test]
async fn a_run_with_pending_steering_does_not_finish() {
    let script = Arc::new(Script::default());
    script.push(text(&["answer one"]));
    script.push(text(&["answer two"]));
    let control = RunControl::new();
    struct SteerOnFirstText(RunControl, AtomicBool);
    impl EventSink for SteerOnFirstText {
        fn emit(&self, _: &str, payload: EventPayload) {
            if matches!(payload, EventPayload::ContentDelta(_))
                && !self.1.swap(true, Ordering::SeqCst)
            {
                self.0
                    .steering()
                    .push(text_steer("m", "also do X"))
                    .unwrap();
            }
        }
    }
    let sink = SteerOnFirstText(control.clone(), AtomicBool::new(false));
    let agent = Agent::new(provider(&script), quiet_env(), spec(Toolbox::default()));
    let out = agent
        .run(SessionState::default(), user("go"), &control, &sink)
        .await;
    assert_eq!(out.end, RunEnd::Completed);
    let reqs = script.requests();
    assert_eq!(reqs.len(), 2, "the steer forced a second turn");
    assert_eq!(last_user_text(&reqs[1]), "also do X");
    assert_eq!(out.state.message_history.len(), 4);
}

#[tokio::test]
async fn interrupt_mid_stream_keeps_the_partial_answer() {
    let script = Arc::new(Script::default());
    script.push(Answer::Hang(vec![
        ModelDelta::Text("partial ".into()),
        ModelDelta::ToolCallStart {
            index: 0,
            id: "c1".into(),
            name: "shell".into(),
        },
    ]));
    let control = RunControl::new();
    struct InterruptOnToolStart(RunControl);
    impl EventSink for InterruptOnToolStart {
        fn emit(&self, _: &str, payload: EventPayload) {
            if matches!(payload, EventPayload::ToolCallStart(_)) {
                self.0.interrupt(Some("user".into()));
            }
        }
    }
    let agent = Agent::new(provider(&script), quiet_env(), spec(toolsets(&["shell"])));
    let out = tokio::time::timeout(
        Duration::from_secs(5),
        agent.run(
            SessionState::default(),
            user("go"),
            &control,
            &InterruptOnToolStart(control.clone()),
        ),
    )
    .await
    .expect("the interrupt stopped the hanging stream");
    assert_eq!(
        out.end,
        RunEnd::Interrupted {
            reason: Some("user".into())
        }
    );
    // The half-streamed tool call is not kept; the text is.
    assert_eq!(
        out.state.message_history.last(),
        Some(&ModelMessage::Assistant {
            parts: vec![AssistantPart::Text {
                text: "partial ".into()
            }]
        })
    );
}

#[tokio::test]
async fn interrupt_mid_tool_cancels_the_call_and_keeps_history_valid() {
    let script = Arc::new(Script::default());
    script.push(calls(&[("c1", "probe", "{}")]));
    let mut probe = Probe::new("probe");
    probe.hang = true;
    let dropped = probe.dropped.clone();
    let control = RunControl::new();
    let interrupter = control.clone();
    probe.on_call = Some(Box::new(move || {
        let c = interrupter.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            c.interrupt(None);
        });
    }));
    let mut toolbox = Toolbox::default();
    toolbox.insert(Arc::new(probe));
    let agent = Agent::new(provider(&script), quiet_env(), spec(toolbox));
    let (out, events) = tokio::time::timeout(
        Duration::from_secs(5),
        run(&agent, SessionState::default(), "go", &control),
    )
    .await
    .expect("the interrupt stopped the hanging tool");
    assert_eq!(out.end, RunEnd::Interrupted { reason: None });
    assert!(
        dropped.load(Ordering::SeqCst),
        "the tool future was dropped"
    );
    let Some(ModelMessage::Tool { results }) = out.state.message_history.last() else {
        panic!(
            "history ends with the call's result: {:?}",
            out.state.message_history
        );
    };
    assert!(results[0].is_error && results[0].content.starts_with("interrupted"));
    assert!(events.iter().any(|(_, e)| matches!(e, EventPayload::ToolCallEnd(end) if end.status == ToolCallStatus::Cancelled)));
    assert_eq!(types(&events).last(), Some(&"interrupt_received"));
}

#[tokio::test]
async fn compaction_summarizes_older_history_near_the_window() {
    let script = Arc::new(Script::default());
    script.push(text(&["SUMMARY"]));
    script.push(text(&["fresh answer"]));
    let mut s = spec(Toolbox::default());
    s.model.context_window = Some(1_000);
    let agent = Agent::new(provider(&script), quiet_env(), s);
    let long = "x".repeat(4_000);
    let state = SessionState {
        message_history: vec![
            ModelMessage::User { parts: user(&long) },
            ModelMessage::Assistant {
                parts: vec![AssistantPart::Text { text: long.clone() }],
            },
        ],
        ..Default::default()
    };
    let (out, events) = run(&agent, state, "next question", &RunControl::new()).await;
    assert_eq!(out.end, RunEnd::Completed);
    let reqs = script.requests();
    assert!(reqs[0].tools.is_empty());
    assert!(last_user_text(&reqs[0]).starts_with("Summarize the conversation"));
    assert_eq!(reqs[1].messages.len(), 2);
    assert!(
        last_user_text(&ModelRequest {
            messages: reqs[1].messages[..1].to_vec(),
            ..reqs[1].clone()
        })
        .ends_with("SUMMARY")
    );
    assert_eq!(last_user_text(&reqs[1]), "next question");
    let t = types(&events);
    assert_eq!(t[0], "compact_started");
    assert_eq!(t[1], "compact_completed");
    assert!(
        matches!(&events[1].1, EventPayload::CompactCompleted(c) if c.messages_before == 3 && c.messages_after == 2)
    );
    assert_eq!(out.usage.model_requests, 2, "the summary request counts");
}

/// The items of a scripted answer that streams.
fn items(answer: Answer) -> Vec<Result<ModelDelta, ModelError>> {
    match answer {
        Answer::Items(items) => items,
        _ => unreachable!("only streamed answers here"),
    }
}

/// Every tool result answers a call of the assistant message right before it.
fn assert_valid(history: &[ModelMessage]) {
    for (i, message) in history.iter().enumerate() {
        if let ModelMessage::Tool { results } = message {
            let Some(ModelMessage::Assistant { parts }) = i.checked_sub(1).map(|p| &history[p])
            else {
                panic!("results at {i} follow no assistant message");
            };
            let calls: Vec<&str> = parts
                .iter()
                .filter_map(|p| match p {
                    AssistantPart::ToolCall { id, .. } => Some(id.as_str()),
                    _ => None,
                })
                .collect();
            let answered: Vec<&str> = results.iter().map(|r| r.tool_call_id.as_str()).collect();
            assert_eq!(answered, calls, "results at {i}");
        }
    }
}

/// One long turn: 60 tool calls after a single user message, against a window that holds
/// about a dozen exchanges. Compaction summarizes older exchanges of the turn itself, every
/// request stays under the threshold, a summary is never summarized alone, and the run
/// ends with the model's answer.
#[tokio::test]
async fn a_sixty_call_turn_stays_under_a_small_window() {
    const WINDOW: u64 = 2_000;
    let requests = Arc::new(Mutex::new(Vec::<ModelRequest>::new()));
    let steps = Arc::new(AtomicUsize::new(0));
    let mut mock = MockModelProvider::new();
    {
        let (requests, steps) = (requests.clone(), steps.clone());
        mock.expect_stream().returning(move |req| {
            requests.lock().unwrap().push(req.clone());
            let answer = if last_user_text(req).starts_with("Summarize the conversation") {
                text(&["goal: sixty thoughts; done: the earlier ones"])
            } else {
                let n = steps.fetch_add(1, Ordering::SeqCst);
                if n < 60 {
                    let thought = format!("{n} {}", "t".repeat(600));
                    let args = serde_json::json!({"thought": thought}).to_string();
                    calls(&[(&format!("c{n}"), "thinking", &args)])
                } else {
                    text(&["all sixty done"])
                }
            };
            Ok(futures::stream::iter(items(answer)).boxed())
        });
    }
    let mut s = spec(toolsets(&["context"]));
    s.model.context_window = Some(WINDOW as u32);
    s.limits.max_model_requests = Some(200);
    let agent = Agent::new(Arc::new(mock), quiet_env(), s);
    let (out, events) = run(
        &agent,
        SessionState::default(),
        "think sixty times",
        &RunControl::new(),
    )
    .await;
    assert_eq!(out.end, RunEnd::Completed);
    let requests = requests.lock().unwrap().clone();
    let (summaries, steps): (Vec<_>, Vec<_>) = requests
        .iter()
        .partition(|r| last_user_text(r).starts_with("Summarize the conversation"));
    assert_eq!(steps.len(), 61);
    assert!(
        (2..=20).contains(&summaries.len()),
        "compacted now and then, not before every request: {}",
        summaries.len()
    );
    for step in &steps {
        let estimate = compaction::estimate_tokens(&step.system, &step.messages, &step.tools);
        assert!(
            estimate * 100 <= WINDOW * 80,
            "a request of {estimate} tokens"
        );
        assert_valid(&step.messages);
    }
    for summary in &summaries {
        // The instruction follows at least one message that is not an earlier summary.
        let before = &summary.messages[..summary.messages.len() - 1];
        assert!(
            before.iter().any(|m| !matches!(m, ModelMessage::User { parts }
                if matches!(parts.first(), Some(UserPart::Text { text }) if text.starts_with("[Summary")))),
            "a summary summarized alone"
        );
        assert_valid(before);
    }
    let completed = events
        .iter()
        .filter(|(_, e)| matches!(e, EventPayload::CompactCompleted(c) if c.messages_after < c.messages_before))
        .count();
    assert_eq!(
        completed,
        summaries.len(),
        "every compaction shrank the history"
    );
    assert_valid(&out.state.message_history);
}

#[tokio::test]
async fn exported_state_continues_exactly_in_a_later_run() {
    let script = Arc::new(Script::default());
    script.push(calls(&[("c1", "task_create", r#"{"subject":"ship it"}"#)]));
    script.push(text(&["planned"]));
    script.push(calls(&[(
        "c2",
        "task_update",
        r#"{"id":"1","status":"completed"}"#,
    )]));
    script.push(text(&["shipped"]));
    let agent = Agent::new(provider(&script), quiet_env(), spec(toolsets(&["task"])));
    let (first, _) = run(&agent, SessionState::default(), "plan", &RunControl::new()).await;
    assert_eq!(first.state.context_state.tasks[0].subject, "ship it");

    let json = serde_json::to_string(&first.state).unwrap();
    let restored: SessionState = serde_json::from_str(&json).unwrap();
    assert_eq!(restored, first.state);
    let (second, _) = run(&agent, restored, "finish", &RunControl::new()).await;

    let reqs = script.requests();
    // The third request carries the whole first run plus the new message.
    assert_eq!(reqs[2].messages[..4], first.state.message_history[..]);
    assert_eq!(last_user_text(&reqs[2]), "finish");
    assert_eq!(
        second.state.context_state.tasks[0].status,
        TaskStatus::Completed
    );
    assert_eq!(second.state.context_state.usage.model_requests, 4);
    assert_eq!(second.usage.model_requests, 2);
}

#[tokio::test]
async fn handoff_restarts_the_context_from_the_summary() {
    let script = Arc::new(Script::default());
    script.push(calls(&[(
        "c1",
        "handoff",
        r#"{"summary":"goal: X; done: Y"}"#,
    )]));
    script.push(text(&["continuing"]));
    script.push(text(&["next run"]));
    let agent = Agent::new(provider(&script), quiet_env(), spec(toolsets(&["context"])));
    let (out, events) = run(
        &agent,
        SessionState::default(),
        "long task",
        &RunControl::new(),
    )
    .await;
    assert_eq!(out.end, RunEnd::Completed);
    let reqs = script.requests();
    assert_eq!(reqs[0].system, "be brief", "no notes before the handoff");
    assert_eq!(reqs[1].messages.len(), 1);
    assert!(last_user_text(&reqs[1]).contains("Continue the task"));
    assert!(
        reqs[1].system.starts_with("be brief\n\n## Handoff notes\n")
            && reqs[1].system.ends_with("goal: X; done: Y"),
        "{}",
        reqs[1].system
    );
    assert!(events.iter().any(
        |(_, e)| matches!(e, EventPayload::HandoffCompleted(h) if h.summary == "goal: X; done: Y")
    ));
    // Kept in the state, the notes reach the next run's system prompt.
    assert_eq!(
        out.state.context_state.handoff_notes.as_deref(),
        Some("goal: X; done: Y")
    );
    let (next, _) = run(&agent, out.state, "and then?", &RunControl::new()).await;
    assert_eq!(next.end, RunEnd::Completed);
    assert_eq!(script.requests()[2].system, reqs[1].system);
    assert_eq!(
        next.state.context_state.handoff_notes.as_deref(),
        Some("goal: X; done: Y")
    );
}

/// A fallback answers only when the model is down; a request the provider refuses for
/// what it is (a bad key, a bad request) fails the run without trying another model.
#[tokio::test(start_paused = true)]
async fn fallbacks_answer_outages_but_not_refusals() {
    let script = Arc::new(Script::default());
    for _ in 0..3 {
        script.push(Answer::Refuse(ModelError::Server {
            status: 503,
            message: "down".into(),
        }));
    }
    script.push(text(&["from the fallback"]));
    script.push(Answer::Refuse(ModelError::Auth("bad key".into())));
    let mut s = spec(toolsets(&[]));
    s.model.fallbacks = vec!["test:backup".into()];
    let agent = Agent::new(provider(&script), quiet_env(), s);
    let (out, events) = run(&agent, SessionState::default(), "hi", &RunControl::new()).await;
    assert_eq!(out.end, RunEnd::Completed);
    assert_eq!(out.model.as_deref(), Some("test:backup"));
    let models: Vec<String> = script.requests().iter().map(|r| r.model.clone()).collect();
    assert_eq!(
        models,
        [
            "test:scripted",
            "test:scripted",
            "test:scripted",
            "test:backup"
        ]
    );
    assert_eq!(warnings(&events).len(), 1);
    assert_eq!(warnings(&events)[0].0, MODEL_FALLBACK);

    let (out, _) = run(&agent, SessionState::default(), "hi", &RunControl::new()).await;
    assert!(matches!(
        out.end,
        RunEnd::Failed {
            code: "model_auth",
            ..
        }
    ));
    assert_eq!(script.requests().len(), 5, "no fallback after a refusal");
}

#[tokio::test(start_paused = true)]
async fn rate_limits_and_server_errors_are_retried_then_succeed() {
    let script = Arc::new(Script::default());
    script.push(Answer::Refuse(ModelError::RateLimited {
        retry_after: Some(Duration::from_secs(7)),
        message: "HTTP 429: slow down".into(),
    }));
    // Fails before any content: safe to retry.
    script.push(Answer::Items(vec![Err(ModelError::Server {
        status: 502,
        message: "bad gateway".into(),
    })]));
    script.push(text(&["finally"]));
    let agent = Agent::new(provider(&script), quiet_env(), spec(Toolbox::default()));
    let started = tokio::time::Instant::now();
    let (out, _) = run(&agent, SessionState::default(), "go", &RunControl::new()).await;
    assert_eq!(out.end, RunEnd::Completed);
    assert_eq!(script.requests().len(), 3);
    assert!(
        started.elapsed() >= Duration::from_millis(50),
        "Retry-After honoured (capped)"
    );
}

#[tokio::test(start_paused = true)]
async fn retries_are_bounded_and_end_in_run_failed() {
    let script = Arc::new(Script::default());
    for _ in 0..3 {
        script.push(Answer::Refuse(ModelError::Server {
            status: 500,
            message: "boom".into(),
        }));
    }
    let agent = Agent::new(provider(&script), quiet_env(), spec(Toolbox::default()));
    let (out, _) = run(&agent, SessionState::default(), "go", &RunControl::new()).await;
    assert_eq!(
        out.end,
        RunEnd::Failed {
            code: "model_error",
            message: "provider error 500: boom".into()
        }
    );
    assert_eq!(script.requests().len(), 3, "max_attempts bounds the tries");
    // The user's message stays, so the conversation can go on.
    assert_eq!(out.state.message_history.len(), 1);
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let script = Arc::new(Script::default());
    script.push(Answer::Refuse(ModelError::InvalidRequest {
        status: 400,
        message: "bad tool schema".into(),
    }));
    let agent = Agent::new(provider(&script), quiet_env(), spec(Toolbox::default()));
    let (out, _) = run(&agent, SessionState::default(), "go", &RunControl::new()).await;
    assert!(
        matches!(out.end, RunEnd::Failed { code: "model_error", ref message } if message.contains("bad tool schema"))
    );
    assert_eq!(script.requests().len(), 1);
}

#[tokio::test]
async fn a_stream_cut_after_content_fails_the_run_without_retry() {
    let script = Arc::new(Script::default());
    script.push(Answer::Items(vec![
        Ok(ModelDelta::Text("half an ans".into())),
        Err(ModelError::StreamCut("connection reset".into())),
    ]));
    // A stream that simply stops without Finish is cut too.
    script.push(Answer::Items(vec![Ok(ModelDelta::Text(
        "also half".into(),
    ))]));
    let agent = Agent::new(provider(&script), quiet_env(), spec(Toolbox::default()));
    let (out, events) = run(&agent, SessionState::default(), "go", &RunControl::new()).await;
    assert!(matches!(
        out.end,
        RunEnd::Failed {
            code: "model_stream_cut",
            ..
        }
    ));
    assert_eq!(script.requests().len(), 1, "content was emitted: no retry");
    assert!(types(&events).contains(&"message_end"));

    let (out, _) = run(&agent, SessionState::default(), "again", &RunControl::new()).await;
    assert!(matches!(
        out.end,
        RunEnd::Failed {
            code: "model_stream_cut",
            ..
        }
    ));
}

#[tokio::test]
async fn thinking_blocks_keep_their_signature_in_history() {
    let script = Arc::new(Script::default());
    script.push(Answer::Items(vec![
        Ok(ModelDelta::Thinking("let me ".into())),
        Ok(ModelDelta::Thinking("think".into())),
        Ok(ModelDelta::ThinkingSignature("sig-1".into())),
        Ok(ModelDelta::Text("answer".into())),
        Ok(finish()),
    ]));
    let agent = Agent::new(provider(&script), quiet_env(), spec(Toolbox::default()));
    let (out, events) = run(&agent, SessionState::default(), "go", &RunControl::new()).await;
    assert_eq!(
        out.state.message_history[1],
        ModelMessage::Assistant {
            parts: vec![
                AssistantPart::Thinking {
                    text: "let me think".into(),
                    signature: Some("sig-1".into())
                },
                AssistantPart::Text {
                    text: "answer".into()
                }
            ]
        }
    );
    let kinds: Vec<_> = events
        .iter()
        .filter_map(|(_, e)| match e {
            EventPayload::ContentDone(d) => Some((d.kind, d.text.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(
        kinds,
        [
            (ContentKind::Thinking, "let me think"),
            (ContentKind::Text, "answer")
        ]
    );
}

// ---- deferred calls (human in the loop, external tools) ------------------------------

fn hitl_agent(script: &Arc<Script>, probe: Probe) -> Agent {
    let mut toolbox = Toolbox::default();
    toolbox.insert(Arc::new(probe));
    toolbox.insert(Arc::new(Probe::new("read")));
    let mut spec = spec(toolbox);
    spec.deferral = Deferral {
        approval: ["danger".to_owned()].into(),
        external: vec![ports::ToolSchema {
            name: "lookup".into(),
            description: "caller-side lookup".into(),
            parameters: serde_json::json!({"type": "object"}),
        }],
        nested: false,
    };
    Agent::new(provider(script), quiet_env(), spec)
}

/// A first run whose one step calls `read` (runs), `danger` (approval) and `lookup`
/// (external); it must stop awaiting the last two.
async fn awaiting_run(script: &Arc<Script>, agent: &Agent) -> RunOutcome {
    script.push(calls(&[
        ("r1", "read", r#"{"n":1}"#),
        ("d1", "danger", r#"{"rm":"all"}"#),
        ("x1", "lookup", r#"{"q":"weather"}"#),
    ]));
    let (out, events) = run(agent, SessionState::default(), "go", &RunControl::new()).await;
    let ends: Vec<&str> = events
        .iter()
        .filter_map(|(_, e)| match e {
            EventPayload::ToolCallEnd(end) => Some(end.tool_call_id.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(ends, ["r1"], "only the call that needs nothing ran");
    out
}

#[tokio::test]
async fn deferred_calls_end_the_run_awaiting_them_with_a_valid_partial_turn() {
    let script = Arc::new(Script::default());
    let probe = Probe::new("danger");
    let dropped = probe.dropped.clone();
    let agent = hitl_agent(&script, probe);
    let out = awaiting_run(&script, &agent).await;

    let RunEnd::AwaitingToolResults { pending } = &out.end else {
        panic!("{:?}", out.end)
    };
    let summary: Vec<(&str, &str, ports::PendingKind)> = pending
        .iter()
        .map(|p| (p.tool_call_id.as_str(), p.tool_name.as_str(), p.kind))
        .collect();
    assert_eq!(
        summary,
        [
            ("d1", "danger", ports::PendingKind::Approval),
            ("x1", "lookup", ports::PendingKind::External)
        ]
    );
    assert_eq!(pending[0].args, serde_json::json!({"rm": "all"}));
    assert_eq!(out.state.context_state.pending_tool_calls, *pending);
    assert!(
        !dropped.load(Ordering::SeqCst),
        "the deferred tool never ran"
    );
    // One model request only; the external tool was offered with the built-in ones.
    let reqs = script.requests();
    assert_eq!(reqs.len(), 1);
    let offered: Vec<&str> = reqs[0].tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(offered, ["danger", "read", "lookup"]);
    let results = tool_results(&ModelRequest {
        messages: out.state.message_history.clone(),
        ..reqs[0].clone()
    });
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].tool_call_id, "r1");
}

#[tokio::test]
async fn approved_calls_run_in_the_next_run_and_values_and_denials_reach_the_model() {
    let script = Arc::new(Script::default());
    let probe = Probe::new("danger");
    let dropped = probe.dropped.clone();
    let agent = hitl_agent(&script, probe);
    let first = awaiting_run(&script, &agent).await;

    script.push(text(&["all done"]));
    let sink = CollectingSink::default();
    let second = agent
        .resume(
            first.state,
            Resolutions {
                interactions: vec![Interaction {
                    tool_call_id: "d1".into(),
                    approved: true,
                    reason: None,
                }],
                results: vec![ExternalResult {
                    tool_call_id: "x1".into(),
                    output: "sunny".into(),
                    is_error: false,
                }],
            },
            user("and now?"),
            &RunControl::new(),
            &sink,
        )
        .await;
    assert_eq!(second.end, RunEnd::Completed);
    assert!(dropped.load(Ordering::SeqCst), "the approved call ran");
    assert!(second.state.context_state.pending_tool_calls.is_empty());
    let reqs = script.requests();
    let results = tool_results(&reqs[1]);
    let seen: Vec<(&str, &str, bool)> = results
        .iter()
        .map(|r| (r.tool_call_id.as_str(), r.content.as_str(), r.is_error))
        .collect();
    assert_eq!(
        seen,
        [
            ("r1", "read ok {\"n\":1}", false),
            ("d1", "danger ok {\"rm\":\"all\"}", false),
            ("x1", "sunny", false)
        ],
        "one tool message with every result in call order"
    );
    assert_eq!(last_user_text(&reqs[1]), "and now?");
    // The resolved calls are announced in this run's events, whole.
    let events = sink.events();
    let t = types(&events);
    assert_eq!(
        &t[..8],
        [
            "tool_call_start",
            "tool_call_args_delta",
            "tool_call_start",
            "tool_call_args_delta",
            "tool_call_result",
            "tool_call_end",
            "tool_call_result",
            "tool_call_end"
        ]
    );
}

#[tokio::test]
async fn denied_and_uncovered_calls_are_answered_so_history_stays_valid() {
    let script = Arc::new(Script::default());
    let probe = Probe::new("danger");
    let dropped = probe.dropped.clone();
    let agent = hitl_agent(&script, probe);
    let first = awaiting_run(&script, &agent).await;

    script.push(text(&["ok"]));
    let sink = CollectingSink::default();
    let second = agent
        .resume(
            first.state,
            Resolutions {
                interactions: vec![Interaction {
                    tool_call_id: "d1".into(),
                    approved: false,
                    reason: Some("not today".into()),
                }],
                results: vec![],
            },
            Vec::new(),
            &RunControl::new(),
            &sink,
        )
        .await;
    assert_eq!(second.end, RunEnd::Completed);
    assert!(!dropped.load(Ordering::SeqCst), "a denied call never runs");
    let results = tool_results(&script.requests()[1]);
    assert_eq!(results[1].content, "The user denied this call: not today");
    assert!(results[1].is_error);
    assert!(results[2].content.contains("automatically failed"));
    // No new user message: the model continues from the results.
    assert!(matches!(
        script.requests()[1].messages.last(),
        Some(ModelMessage::Tool { .. })
    ));
}

#[tokio::test]
async fn approval_inside_a_nested_agent_is_refused_not_deferred() {
    let script = Arc::new(Script::default());
    let probe = Probe::new("danger");
    let dropped = probe.dropped.clone();
    let mut toolbox = Toolbox::default();
    toolbox.insert(Arc::new(probe));
    let mut spec = spec(toolbox);
    spec.deferral = Deferral {
        approval: ["danger".to_owned()].into(),
        external: vec![],
        nested: true,
    };
    let agent = Agent::new(provider(&script), quiet_env(), spec);
    script.push(calls(&[("d1", "danger", "{}")]));
    script.push(text(&["understood"]));
    let (out, _) = run(&agent, SessionState::default(), "go", &RunControl::new()).await;
    assert_eq!(out.end, RunEnd::Completed);
    assert!(!dropped.load(Ordering::SeqCst));
    let results = tool_results(&script.requests()[1]);
    assert!(results[0].is_error && results[0].content.contains("approval"));
}

#[tokio::test]
async fn an_interrupt_in_a_turn_with_deferred_calls_cancels_them() {
    let script = Arc::new(Script::default());
    let control = RunControl::new();
    let mut hang = Probe::new("read");
    hang.hang = true;
    let c2 = control.clone();
    hang.on_call = Some(Box::new(move || c2.interrupt(Some("stop".into()))));
    let mut toolbox = Toolbox::default();
    toolbox.insert(Arc::new(hang));
    let mut spec = spec(toolbox);
    spec.deferral.approval = ["danger".to_owned()].into();
    let agent = Agent::new(provider(&script), quiet_env(), spec);
    script.push(calls(&[("r1", "read", "{}"), ("d1", "danger", "{}")]));
    let (out, _) = run(&agent, SessionState::default(), "go", &control).await;
    assert!(
        matches!(out.end, RunEnd::Interrupted { .. }),
        "{:?}",
        out.end
    );
    assert!(out.state.context_state.pending_tool_calls.is_empty());
    let Some(ModelMessage::Tool { results }) = out.state.message_history.last() else {
        panic!("{:?}", out.state.message_history)
    };
    let ids: Vec<&str> = results.iter().map(|r| r.tool_call_id.as_str()).collect();
    assert_eq!(ids, ["r1", "d1"]);
    assert!(results.iter().all(|r| r.is_error));
}

fn text_steer(message_id: &str, text: &str) -> Steer {
    Steer {
        message_id: message_id.into(),
        parts: vec![UserPart::Text { text: text.into() }],
        text: text.into(),
    }
}
