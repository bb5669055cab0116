//! Execution against mockall mocks of every port: what setup refuses before writing
//! anything, and what finalize writes for each way a run can end.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use ports::mocks::*;
use ports::*;

use super::*;

fn preset() -> Preset {
    Preset {
        system_prompt: "Work in {{ cwd }}.".into(),
        is_default: true,
        ..Preset::new("p", "P", "openai:m")
    }
}

fn conversation(id: &str) -> Conversation {
    let at = now();
    Conversation {
        conversation_id: id.into(),
        title: None,
        default_preset_id: Some("p".into()),
        status: ConversationStatus::Active,
        created_at: at,
        updated_at: at,
        metadata: ports::Metadata::new(),
    }
}

fn committed(id: &str, conversation_id: &str) -> SessionRecord {
    let at = now();
    SessionRecord {
        session_id: id.into(),
        parent_session_id: None,
        conversation_id: conversation_id.into(),
        kind: SessionKind::Agent,
        transport: Transport::Sse,
        preset_id: Some("p".into()),
        status: SessionStatus::Committed,
        run_summary: None,
        pending_tool_calls: vec![],
        error: None,
        created_at: at,
        updated_at: at,
    }
}

fn text_input(text: &str) -> Vec<InputPart> {
    vec![InputPart::Text { text: text.into() }]
}

fn request(target: RunTarget, transport: Transport) -> RunRequest {
    RunRequest::new(target, text_input("hello"), transport)
}

/// How the mock model answers.
#[derive(Clone)]
enum Model {
    Answer(&'static [&'static str]),
    /// Streams nothing and never ends.
    Hang,
    /// Refuses every request (a bad key: not retried).
    Refuse,
}

/// What the mocks recorded.
#[derive(Default)]
struct Seen {
    requests: Vec<ModelRequest>,
    saved_state: Option<SessionState>,
    display: Option<Vec<DisplayMessage>>,
    outcome: Option<SessionOutcome>,
    created: Option<(SessionRecord, Option<Conversation>)>,
    /// Every event appended to the bus, in order.
    on_bus: Vec<Arc<EventEnvelope>>,
}

/// Mocks for a run that gets as far as the model; `save_fails` makes the state write fail.
struct World {
    presets: MockPresetRepo,
    conversations: MockConversationRepo,
    sessions: MockSessionRepo,
    mailbox: MockMailboxRepo,
    state: MockStateStore,
    bus: MockEventBus,
    provider: MockModelProvider,
    seen: Arc<Mutex<Seen>>,
}

impl World {
    fn new(model: Model, save_fails: bool) -> Self {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let mut presets = MockPresetRepo::new();
        presets
            .expect_default_preset()
            .returning(|| Ok(Some(preset())));
        presets.expect_get_preset().returning(|_| Ok(preset()));
        let mut sessions = MockSessionRepo::new();
        {
            let seen = seen.clone();
            sessions.expect_create_session().returning(move |s, c| {
                seen.lock().unwrap().created = Some((s.clone(), c));
                Ok(())
            });
        }
        {
            let seen = seen.clone();
            sessions.expect_finish_session().returning(move |_, o| {
                seen.lock().unwrap().outcome = Some(o.clone());
                Ok(())
            });
        }
        let mut state = MockStateStore::new();
        {
            let seen = seen.clone();
            state.expect_save_state().returning(move |_, s| {
                if save_fails {
                    return Err(StateStoreError::Unavailable("disk full".into()));
                }
                seen.lock().unwrap().saved_state = Some(s.clone());
                Ok(())
            });
        }
        {
            let seen = seen.clone();
            state.expect_save_display_messages().returning(move |_, d| {
                seen.lock().unwrap().display = Some(d.to_vec());
                Ok(())
            });
        }
        let mut bus = MockEventBus::new();
        {
            let seen = seen.clone();
            bus.expect_append_batch().returning(move |_, events| {
                seen.lock().unwrap().on_bus.extend(events.iter().cloned());
                Ok(())
            });
        }
        bus.expect_health().returning(|| Ok(()));
        let mut provider = MockModelProvider::new();
        {
            let seen = seen.clone();
            provider.expect_stream().returning(move |req| {
                seen.lock().unwrap().requests.push(req.clone());
                if matches!(model, Model::Refuse) {
                    return Err(ModelError::Auth("bad key".into()));
                }
                Ok(match model.clone() {
                    Model::Answer(chunks) => {
                        let mut items: Vec<Result<ModelDelta, ModelError>> = chunks
                            .iter()
                            .map(|c| Ok(ModelDelta::Text((*c).into())))
                            .collect();
                        items.push(Ok(ModelDelta::Finish {
                            reason: "stop".into(),
                        }));
                        futures::stream::iter(items).boxed()
                    }
                    Model::Hang | Model::Refuse => futures::stream::pending().boxed(),
                })
            });
        }
        Self {
            presets,
            conversations: MockConversationRepo::new(),
            sessions,
            mailbox: MockMailboxRepo::new(),
            state,
            bus,
            provider,
            seen,
        }
    }

    fn execution(self) -> (Execution, Arc<Mutex<Seen>>) {
        let mut environments = MockEnvironmentFactory::new();
        environments.expect_open().returning(|_| {
            let mut workspace = MockWorkspace::new();
            workspace.expect_working_dir().return_const("/w".to_owned());
            Ok(OpenedEnvironment {
                workspace: Arc::new(workspace),
                shell: Arc::new(MockShell::new()),
                warnings: Vec::new(),
            })
        });
        environments.expect_check_paths().returning(|_| Vec::new());
        environments.expect_host_var().returning(|_| None);
        // No preset here lists an MCP server: only shutdown reaches them.
        let mut tool_servers = MockToolServers::new();
        tool_servers.expect_shutdown().returning(|| ());
        let ports = Ports {
            presets: Arc::new(self.presets),
            conversations: Arc::new(self.conversations),
            sessions: Arc::new(self.sessions),
            mailbox: Arc::new(self.mailbox),
            state_store: Arc::new(self.state),
            bus: Arc::new(self.bus),
            provider: Arc::new(self.provider),
            environments: Arc::new(environments),
            downloader: Arc::new(MockDownloader::new()),
            search: None,
            scraper: None,
            tool_servers: Arc::new(tool_servers),
            metrics: Arc::new(ports::NoMetrics),
            notifier: crate::core::notifications::Notifier::disabled(),
        };
        (Execution::new(ports, Settings::default()), self.seen)
    }
}

async fn events_of(run: &StartedRun) -> Vec<Arc<EventEnvelope>> {
    tokio::time::timeout(Duration::from_secs(10), run.log.subscribe(0).collect())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_root_run_creates_its_conversation_and_commits_state_then_status_then_the_terminal_event()
{
    let (exec, seen) = World::new(Model::Answer(&["hi ", "there"]), false).execution();
    let run = exec
        .runs
        .start(request(RunTarget::NewConversation, Transport::Sse))
        .await
        .unwrap();
    assert_eq!(
        run.conversation_id,
        ConversationId::rooted_at(&run.session_id),
        "a root names its conversation"
    );
    let events = events_of(&run).await;
    let types: Vec<&str> = events.iter().map(|e| e.payload.event_type()).collect();
    assert_eq!(types.first(), Some(&"run_started"));
    assert_eq!(types.last(), Some(&"run_completed"));
    assert_eq!(types.iter().filter(|t| **t == "run_completed").count(), 1);
    let ids: Vec<u64> = events.iter().map(|e| e.event_id).collect();
    assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>());

    let seen = seen.lock().unwrap();
    let (record, new_conversation) = seen.created.clone().unwrap();
    assert_eq!(record.status, SessionStatus::Created);
    assert_eq!(record.parent_session_id, None);
    let new_conversation = new_conversation.unwrap();
    assert_eq!(
        new_conversation.conversation_id,
        ConversationId::rooted_at(&run.session_id)
    );
    assert_eq!(new_conversation.default_preset_id.as_deref(), Some("p"));
    assert_eq!(seen.requests[0].system, "Work in /w.");
    let state = seen.saved_state.clone().unwrap();
    assert_eq!(state.message_history.len(), 2, "input and answer");
    assert_eq!(
        seen.display.clone().unwrap(),
        vec![
            DisplayMessage::User {
                text: "hello".into()
            },
            DisplayMessage::AssistantText {
                agent_id: MAIN_AGENT.into(),
                text: "hi there".into()
            },
        ]
    );
    let outcome = seen.outcome.clone().unwrap();
    assert_eq!(outcome.status, SessionStatus::Committed);
    assert!(exec.runs.registry.get(&run.session_id).is_none());
}

#[tokio::test]
async fn a_continue_sends_the_parent_history_and_commits_it_extended() {
    let mut world = World::new(Model::Answer(&["again"]), false);
    world
        .conversations
        .expect_get_conversation()
        .returning(|id| Ok(conversation(id)));
    world
        .sessions
        .expect_latest_continuable()
        .returning(|c| Ok(Some(committed("parent", c))));
    let earlier = vec![
        ModelMessage::User {
            parts: vec![UserPart::Text {
                text: "first".into(),
            }],
        },
        ModelMessage::Assistant {
            parts: vec![AssistantPart::Text { text: "one".into() }],
        },
    ];
    {
        let earlier = earlier.clone();
        world
            .state
            .expect_load_state()
            .withf(|id| id == "parent")
            .returning(move |_| {
                Ok(SessionState {
                    message_history: earlier.clone(),
                    ..Default::default()
                })
            });
    }
    let (exec, seen) = world.execution();
    let run = exec
        .runs
        .start(request(
            RunTarget::Continue {
                conversation_id: "c".into(),
            },
            Transport::Sse,
        ))
        .await
        .unwrap();
    events_of(&run).await;
    let seen = seen.lock().unwrap();
    assert_eq!(run.conversation_id, "c");
    let (record, new_conversation) = seen.created.clone().unwrap();
    assert_eq!(record.parent_session_id.as_deref(), Some("parent"));
    assert!(new_conversation.is_none());
    assert_eq!(seen.requests[0].messages[..2], earlier[..]);
    assert_eq!(seen.saved_state.as_ref().unwrap().message_history.len(), 4);
}

#[tokio::test]
async fn a_busy_conversation_is_a_conflict_naming_the_running_session() {
    let mut world = World::new(Model::Answer(&["x"]), false);
    world
        .conversations
        .expect_get_conversation()
        .returning(|id| Ok(conversation(id)));
    // Forget the default expectations: this session row must not be created.
    world.sessions.checkpoint();
    world
        .sessions
        .expect_latest_continuable()
        .returning(|_| Ok(None));
    world.sessions.expect_create_session().returning(|_, _| {
        Err(StorageError::ConversationBusy {
            session_id: "running".into(),
        })
    });
    world.sessions.expect_get_session().returning(|id| {
        let mut s = committed(id, "c");
        s.status = SessionStatus::Created;
        s.transport = Transport::Stream;
        Ok(s)
    });
    let (exec, seen) = world.execution();
    let err = exec
        .runs
        .start(request(
            RunTarget::Continue {
                conversation_id: "c".into(),
            },
            Transport::Sse,
        ))
        .await
        .err()
        .unwrap();
    match err {
        RunError::Busy(active) => {
            assert_eq!(active.session_id, "running");
            assert_eq!(active.stream_key, StreamKey::for_session(&"running".into()));
            assert_eq!(active.transport, Transport::Stream);
        }
        other => panic!("{other:?}"),
    }
    assert!(seen.lock().unwrap().requests.is_empty(), "no model call");
    assert!(exec.runs.registry.all().is_empty());
}

#[tokio::test]
async fn bad_input_and_unknown_targets_are_refused_before_anything_is_written() {
    let mut world = World::new(Model::Answer(&["x"]), false);
    world
        .conversations
        .expect_get_conversation()
        .returning(|_| Err(StorageError::NotFound));
    world.sessions.checkpoint();
    let (exec, seen) = world.execution();
    let mut empty = request(RunTarget::NewConversation, Transport::Sse);
    empty.input = vec![];
    assert!(matches!(
        exec.runs.start(empty).await.err().unwrap(),
        RunError::Invalid(fields) if fields[0].field == "input"
    ));
    let missing = request(
        RunTarget::Continue {
            conversation_id: "nope".into(),
        },
        Transport::Sse,
    );
    assert!(matches!(
        exec.runs.start(missing).await.err().unwrap(),
        RunError::NotFound("conversation")
    ));
    let mut broken = request(RunTarget::NewConversation, Transport::Sse);
    broken.config_override = Some(ConfigOverride {
        toolsets: Some(vec![ToolsetSpec {
            toolset_name: "nonsense".into(),
            enabled: true,
            exclude_tools: vec![],
        }]),
        ..Default::default()
    });
    assert!(matches!(
        exec.runs.start(broken).await.err().unwrap(),
        RunError::Invalid(fields) if fields[0].field.starts_with("config_override.toolsets")
    ));
    assert!(seen.lock().unwrap().created.is_none());
}

#[tokio::test]
async fn the_stream_transport_needs_a_working_bus() {
    let mut world = World::new(Model::Answer(&["x"]), false);
    world.bus.checkpoint();
    world
        .bus
        .expect_health()
        .returning(|| Err(EventBusError::Unavailable("down".into())));
    let (exec, seen) = world.execution();
    assert!(matches!(
        exec.runs
            .start(request(RunTarget::NewConversation, Transport::Stream))
            .await
            .err()
            .unwrap(),
        RunError::Unavailable(_)
    ));
    assert!(seen.lock().unwrap().created.is_none());
}

#[tokio::test]
async fn a_failed_state_write_fails_the_session_and_the_run() {
    let (exec, seen) = World::new(Model::Answer(&["x"]), true).execution();
    let run = exec
        .runs
        .start(request(RunTarget::NewConversation, Transport::Sse))
        .await
        .unwrap();
    let events = events_of(&run).await;
    match &events.last().unwrap().payload {
        EventPayload::RunFailed(f) => assert_eq!(f.code, "state_write_failed"),
        other => panic!("{other:?}"),
    }
    let seen = seen.lock().unwrap();
    let outcome = seen.outcome.clone().unwrap();
    assert_eq!(outcome.status, SessionStatus::Failed);
    assert!(outcome.error.unwrap().starts_with("state_write_failed"));
    let display = seen.display.clone().unwrap();
    assert!(
        matches!(display.last(), Some(DisplayMessage::Error { code, .. }) if code == "state_write_failed"),
        "the transcript says why: {display:?}"
    );
}

#[tokio::test]
async fn an_interrupt_before_any_output_fails_the_session() {
    let mut world = World::new(Model::Hang, false);
    world.sessions.expect_get_session().returning(|id| {
        let mut s = committed(id, id);
        s.status = SessionStatus::Failed;
        Ok(s)
    });
    let (exec, seen) = world.execution();
    let run = exec
        .runs
        .start(request(RunTarget::NewConversation, Transport::Sse))
        .await
        .unwrap();
    exec.live
        .interrupt_session(&run.session_id, Some("stop".into()))
        .await
        .unwrap();
    let events = events_of(&run).await;
    assert!(
        events
            .iter()
            .any(|e| e.payload.event_type() == "interrupt_received")
    );
    match &events.last().unwrap().payload {
        EventPayload::RunFailed(f) => assert_eq!(f.code, "interrupted"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        seen.lock().unwrap().outcome.clone().unwrap().status,
        SessionStatus::Failed
    );
    assert!(matches!(
        exec.live.interrupt_session(&run.session_id, None).await,
        Err(ControlError::NotRunning(_))
    ));
}

#[tokio::test]
async fn shutdown_interrupts_what_is_still_running_after_the_grace_period() {
    let (exec, seen) = World::new(Model::Hang, false).execution();
    let run = exec
        .runs
        .start(request(RunTarget::NewConversation, Transport::Sse))
        .await
        .unwrap();
    exec.runs.shutdown(Duration::from_millis(50)).await;
    assert!(exec.runs.registry.all().is_empty());
    assert!(seen.lock().unwrap().outcome.is_some());
    assert!(run.log.is_finished());
    assert!(matches!(
        exec.runs
            .start(request(RunTarget::NewConversation, Transport::Sse))
            .await
            .err()
            .unwrap(),
        RunError::Unavailable(_)
    ));
}

#[tokio::test]
async fn shutdown_returns_once_every_run_is_whole_on_the_bus() {
    let (exec, seen) = World::new(Model::Hang, false).execution();
    let interrupted = exec
        .runs
        .start(request(RunTarget::NewConversation, Transport::Stream))
        .await
        .unwrap();
    exec.runs.shutdown(Duration::from_millis(50)).await;
    let on_bus = std::mem::take(&mut seen.lock().unwrap().on_bus);
    assert_eq!(
        on_bus,
        interrupted.log.snapshot(),
        "every event of the run, in order"
    );
    assert!(on_bus.last().unwrap().is_terminal(), "{on_bus:?}");
}

// ---- async subagents, the mailbox and fire -------------------------------------------

fn message(id: &str, source: &str, name: &str, kind: MailboxSource) -> MailboxMessage {
    MailboxMessage {
        message_id: id.into(),
        conversation_id: "c".into(),
        source_session_id: source.into(),
        source_type: kind,
        subagent_name: name.into(),
        created_at: now(),
        delivered_to: None,
    }
}

fn fire_request() -> RunRequest {
    RunRequest::new(
        RunTarget::Continue {
            conversation_id: "c".into(),
        },
        text_input("and now?"),
        Transport::Sse,
    )
}

/// A world where conversation `c` exists, continues from `parent`, and whose mailbox
/// holds a result of `alpha` and a failure of `beta`, drained into the session recorded
/// in the returned cell.
fn fire_world(model: Model) -> (World, Arc<Mutex<Option<SessionId>>>) {
    let mut world = World::new(model, false);
    world
        .conversations
        .expect_get_conversation()
        .returning(|id| Ok(conversation(id)));
    let drained = Arc::new(Mutex::new(None));
    {
        let drained = drained.clone();
        world
            .mailbox
            .expect_take_undelivered()
            .times(1)
            .returning(move |_, session| {
                *drained.lock().unwrap() = Some(session.to_owned());
                Ok(vec![
                    message("m1", "sa", "alpha", MailboxSource::SubagentResult),
                    message("m2", "sb", "beta", MailboxSource::SubagentFailed),
                ])
            });
    }
    world.sessions.expect_get_session().returning(|id| {
        let mut s = committed(id, "c");
        if id == "sb" {
            s.status = SessionStatus::Failed;
            s.error = Some("model_error: refused".into());
        }
        Ok(s)
    });
    world
        .state
        .expect_load_display_messages()
        .withf(|id| id == "sa")
        .returning(|_| {
            Ok(vec![DisplayMessage::AssistantText {
                agent_id: MAIN_AGENT.into(),
                text: "alpha's answer".into(),
            }])
        });
    world
        .state
        .expect_load_state()
        .returning(|_| Ok(SessionState::default()));
    (world, drained)
}

#[tokio::test]
async fn fire_drains_the_mailbox_into_one_continuation_of_the_latest_session() {
    let (mut world, drained) = fire_world(Model::Answer(&["ok"]));
    world
        .sessions
        .expect_latest_continuable()
        .returning(|c| Ok(Some(committed("parent", c))));
    world.mailbox.expect_release_delivered().times(0);
    let (exec, seen) = world.execution();
    let run = exec.runs.fire(fire_request()).await.unwrap();
    events_of(&run).await;
    assert_eq!(
        drained.lock().unwrap().as_deref(),
        Some(run.session_id.as_str()),
        "the messages are marked delivered to the continuation"
    );
    let seen = seen.lock().unwrap();
    let (record, _) = seen.created.clone().unwrap();
    assert_eq!(record.parent_session_id.as_deref(), Some("parent"));
    let Some(ModelMessage::User { parts }) = seen.requests[0].messages.last() else {
        panic!("{:?}", seen.requests[0].messages)
    };
    let texts: Vec<&str> = parts
        .iter()
        .filter_map(|p| match p {
            UserPart::Text { text } => Some(text.as_str()),
            UserPart::Image { .. } => None,
        })
        .collect();
    assert_eq!(
        texts,
        [
            "Results of 2 subagents:\n\n## alpha (session sa): completed\nalpha's answer\
             \n\n## beta (session sb): failed\nmodel_error: refused",
            "and now?"
        ]
    );
    let display = seen.display.clone().unwrap();
    assert!(
        matches!(&display[0], DisplayMessage::User { text } if text.starts_with("Results of 2") && text.ends_with("\n\nand now?")),
        "{display:?}"
    );
}

#[tokio::test]
async fn a_fire_that_cannot_start_returns_its_messages_to_pending() {
    let (mut world, drained) = fire_world(Model::Answer(&["ok"]));
    world
        .sessions
        .expect_latest_continuable()
        .returning(|_| Err(StorageError::Unavailable("db down".into())));
    let released = Arc::new(Mutex::new(None));
    {
        let released = released.clone();
        world
            .mailbox
            .expect_release_delivered()
            .times(1)
            .returning(move |session| {
                *released.lock().unwrap() = Some(session.to_owned());
                Ok(2)
            });
    }
    let (exec, seen) = world.execution();
    let err = exec.runs.fire(fire_request()).await.err().unwrap();
    assert!(
        matches!(err, RunError::Storage(StorageError::Unavailable(_))),
        "{err:?}"
    );
    let drained = drained.lock().unwrap().clone().unwrap();
    assert_eq!(released.lock().unwrap().as_deref(), Some(drained.as_str()));
    assert!(seen.lock().unwrap().created.is_none());
}

#[tokio::test]
async fn an_empty_mailbox_fires_nothing() {
    let mut world = World::new(Model::Answer(&["x"]), false);
    world
        .conversations
        .expect_get_conversation()
        .returning(|id| Ok(conversation(id)));
    world
        .mailbox
        .expect_take_undelivered()
        .returning(|_, _| Ok(vec![]));
    world.mailbox.expect_release_delivered().times(0);
    let (exec, seen) = world.execution();
    let err = exec.runs.fire(fire_request()).await.err().unwrap();
    assert!(matches!(err, RunError::MailboxEmpty), "{err:?}");
    assert!(seen.lock().unwrap().created.is_none());
}

/// An async subagent session: its record says so, and its outcome reaches the mailbox
/// before its terminal event.
async fn subagent_outcome(model: Model) -> (SessionRecord, MailboxMessage, bool) {
    let mut world = World::new(model, false);
    world
        .conversations
        .expect_get_conversation()
        .returning(|id| Ok(conversation(id)));
    let posted = Arc::new(Mutex::new(None));
    let (exec, seen) = {
        let posted = posted.clone();
        world
            .mailbox
            .expect_post_message()
            .times(1)
            .returning(move |m| {
                *posted.lock().unwrap() = Some(m.clone());
                Ok(())
            });
        world.execution()
    };
    let mut req = request(
        RunTarget::AsyncSubagent {
            conversation_id: "c".into(),
            spawned_by: "boss".into(),
            name: "alpha".into(),
            previous: None,
        },
        Transport::Stream,
    );
    req.preset_id = Some("p".into());
    let run = exec.runs.start(req).await.unwrap();
    let mut events = run.log.subscribe(0);
    let mut posted_before_terminal = false;
    while let Some(e) = tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .unwrap()
    {
        if e.is_terminal() {
            posted_before_terminal = posted.lock().unwrap().is_some();
            break;
        }
    }
    let record = seen.lock().unwrap().created.clone().unwrap().0;
    let message = posted.lock().unwrap().clone().unwrap();
    (record, message, posted_before_terminal)
}

#[tokio::test]
async fn an_async_subagent_posts_its_result_before_its_terminal_event() {
    let (record, message, in_order) = subagent_outcome(Model::Answer(&["done"])).await;
    assert_eq!(
        record.kind,
        SessionKind::AsyncSubagent {
            spawned_by: "boss".into(),
            subagent_name: "alpha".into(),
        }
    );
    assert_eq!(record.conversation_id, "c");
    assert_eq!(record.parent_session_id, None);
    assert_eq!(message.source_type, MailboxSource::SubagentResult);
    assert_eq!(message.subagent_name, "alpha");
    assert_eq!(message.source_session_id, record.session_id);
    assert_eq!(message.conversation_id, "c");
    assert!(in_order);
}

#[tokio::test]
async fn a_failing_async_subagent_posts_a_failure() {
    let (_, message, in_order) = subagent_outcome(Model::Refuse).await;
    assert_eq!(message.source_type, MailboxSource::SubagentFailed);
    assert!(in_order);
}
