//! Setup and execute, the first two phases of a run (spec 03). Setup does everything that
//! can refuse the request before anything is created; once the session row exists the run
//! is committed to finishing, and `finalize.rs` always ends it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ports::{
    Conversation, ConversationRepo, ConversationStatus, Downloader, EnvironmentFactory, EventBus,
    EventPayload, MAIN_AGENT, MailboxRepo, ModelProvider, Preset, PresetRepo, RunStarted,
    SessionRecord, SessionRepo, SessionState, SessionStatus, SessionType, StateStore,
    StateStoreError, StorageError, StreamKey, Transport, UserPart, now,
};
use tokio::time::Instant;

use super::external;
use super::forward;
use super::input::{self, InputLimits};
use super::launch;
use super::registry::{Registry, RunHandle};
use super::request::{ActiveSession, RunError, RunRequest, RunTarget, StartedRun};
use super::run_log::RunLog;
use crate::core::agent::{
    Agent, AgentSpec, Deferral, Resolutions, RetryPolicy, RunControl, RunLimits, check_resolutions,
};
use crate::core::environment::{Environment, ShellLimits, shell_env};
use crate::core::preset_validation::{self, FieldError};
use crate::core::prompt::{self, PromptVars};
use crate::core::subagents;
use crate::core::tools::Toolbox;

/// The ports a run needs.
#[derive(Clone)]
pub struct Ports {
    pub presets: Arc<dyn PresetRepo>,
    pub conversations: Arc<dyn ConversationRepo>,
    pub sessions: Arc<dyn SessionRepo>,
    pub mailbox: Arc<dyn MailboxRepo>,
    pub state_store: Arc<dyn StateStore>,
    pub bus: Arc<dyn EventBus>,
    pub provider: Arc<dyn ModelProvider>,
    pub environments: Arc<dyn EnvironmentFactory>,
    pub downloader: Arc<dyn Downloader>,
}

/// Tunables of every run.
#[derive(Debug, Clone)]
pub struct Settings {
    pub input: InputLimits,
    pub limits: RunLimits,
    pub retry: RetryPolicy,
    pub shell: ShellLimits,
    /// How long finalize keeps retrying the session's final write while the database is
    /// unreachable, before leaving the row to startup recovery.
    pub finish_retry_for: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            input: InputLimits::default(),
            limits: RunLimits::default(),
            retry: RetryPolicy::default(),
            shell: ShellLimits::default(),
            finish_retry_for: Duration::from_secs(30),
        }
    }
}

/// Starts, tracks and finishes runs.
pub struct Coordinator {
    pub(super) ports: Ports,
    pub(super) settings: Settings,
    pub(super) registry: Arc<Registry>,
    closing: AtomicBool,
}

/// Where a new session goes in the DAG.
struct Placement {
    conversation_id: String,
    parent: Option<SessionRecord>,
    new_conversation: Option<Conversation>,
    /// The conversation's default preset, for runs that name none.
    default_preset: Option<String>,
    session_type: SessionType,
    spawned_by: Option<String>,
    /// The async subagent's name, for its mailbox message.
    subagent_name: Option<String>,
}

impl Placement {
    /// An agent session of an existing conversation.
    fn within(
        conversation_id: String,
        parent: Option<SessionRecord>,
        default_preset: Option<String>,
    ) -> Self {
        Self {
            conversation_id,
            parent,
            new_conversation: None,
            default_preset,
            session_type: SessionType::Agent,
            spawned_by: None,
            subagent_name: None,
        }
    }

    /// The root of a new conversation (`parent` for a fork).
    fn root(session_id: &str, parent: Option<SessionRecord>, conversation: Conversation) -> Self {
        Self {
            conversation_id: session_id.to_owned(),
            parent,
            default_preset: conversation.default_preset_id.clone(),
            new_conversation: Some(conversation),
            session_type: SessionType::Agent,
            spawned_by: None,
            subagent_name: None,
        }
    }
}

/// Everything the execute phase takes over from setup.
pub(super) struct Prepared {
    pub handle: Arc<RunHandle>,
    pub record: SessionRecord,
    pub agent: Agent,
    pub state: SessionState,
    pub input: Vec<UserPart>,
    pub resolutions: Resolutions,
    pub user_text: String,
    pub started: Instant,
    pub subagent_name: Option<String>,
}

impl Coordinator {
    pub fn new(ports: Ports, settings: Settings) -> Arc<Self> {
        Arc::new(Self {
            ports,
            settings,
            registry: Arc::new(Registry::new()),
            closing: AtomicBool::new(false),
        })
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    pub fn ports(&self) -> &Ports {
        &self.ports
    }

    /// Setup (spec 03): validates and resolves everything, creates the session, registers
    /// it and starts the execute phase. On `Ok` the run's `run_started` event is in its log.
    ///
    /// # Errors
    /// See [`RunError`]; nothing is created when one is returned.
    pub async fn start(self: &Arc<Self>, req: RunRequest) -> Result<StartedRun, RunError> {
        self.start_as(uuid::Uuid::now_v7().to_string(), req, None)
            .await
    }

    /// [`Self::start`] with the session id chosen by the caller (fire marks mailbox
    /// messages delivered to it before the run starts) and text the runtime puts before
    /// the caller's input.
    pub(super) async fn start_as(
        self: &Arc<Self>,
        session_id: String,
        req: RunRequest,
        prelude: Option<String>,
    ) -> Result<StartedRun, RunError> {
        if req.input.is_empty() {
            if req.resolutions.is_empty() && prelude.is_none() {
                return Err(RunError::invalid(
                    "input",
                    "give at least one of input, user_interactions or tool_results",
                ));
            }
        } else {
            input::validate(&req.input, &self.settings.input).map_err(RunError::Invalid)?;
        }
        if self.closing.load(Ordering::SeqCst) {
            return Err(RunError::Unavailable(
                "the service is shutting down".to_owned(),
            ));
        }
        if req.transport == Transport::Stream {
            self.ports
                .bus
                .health()
                .await
                .map_err(|e| RunError::Unavailable(format!("the event bus is unavailable: {e}")))?;
        }
        let mut place = self.place(&req.target, &session_id).await?;
        let preset = self
            .preset_for(&req, place.default_preset.as_deref())
            .await?;
        if let Some(conversation) = &mut place.new_conversation {
            // A new conversation keeps running the preset it started with.
            conversation.default_preset_id = Some(preset.preset_id.clone());
        }
        let state = match &place.parent {
            Some(parent) => self.load_state(&parent.session_id).await?,
            None => SessionState::default(),
        };
        let unresolvable =
            check_resolutions(&state.context_state.pending_tool_calls, &req.resolutions);
        if !unresolvable.is_empty() {
            return Err(RunError::Invalid(unresolvable));
        }

        let opened = self
            .ports
            .environments
            .open(&preset.environment)
            .await
            .map_err(|e| RunError::invalid("environment.default_path", e.to_string()))?;
        let env = Environment {
            workspace: opened.workspace,
            shell: opened.shell,
            shell_env: shell_env(&preset.environment, |name| {
                self.ports.environments.host_var(name)
            }),
            limits: self.settings.shell,
        };
        let mut toolbox = Toolbox::from_toolsets(&preset.toolsets);
        external::check(&req.external_tools).map_err(RunError::Invalid)?;
        let mut materialized = input::materialize(
            req.input,
            &*env.workspace,
            &*self.ports.downloader,
            &session_id,
            &self.settings.input,
        )
        .await
        .map_err(RunError::Invalid)?;
        if let Some(prelude) = prelude {
            materialized.display_text = if materialized.display_text.is_empty() {
                prelude.clone()
            } else {
                format!("{prelude}\n\n{}", materialized.display_text)
            };
            materialized
                .parts
                .insert(0, UserPart::Text { text: prelude });
        }

        let env = Arc::new(env);
        // Async subagents dispatch no subagents of their own: their results go to the
        // conversation's mailbox, which only the conversation's agent is fired with.
        let dispatcher =
            (place.session_type == SessionType::Agent).then(|| subagents::Dispatcher {
                launcher: Arc::new(launch::CoordinatorLauncher::new(self)),
                conversation_id: place.conversation_id.clone(),
                session_id: session_id.clone(),
            });
        let caller = subagents::Caller {
            preset: &preset,
            agent_id: MAIN_AGENT,
            depth: 0,
        };
        let mut vars = PromptVars {
            cwd: env.workspace.working_dir(),
            date: now().format("%Y-%m-%d").to_string(),
            datetime: now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            toolsets: preset
                .toolsets
                .iter()
                .filter(|t| t.enabled)
                .map(|t| t.toolset_name.clone())
                .collect(),
            tools: Vec::new(),
            model: preset.model.name.clone(),
            preset_id: preset.preset_id.clone(),
            session_id: session_id.clone(),
            conversation_id: place.conversation_id.clone(),
        };
        let kit = subagents::Kit {
            presets: self.ports.presets.clone(),
            provider: self.ports.provider.clone(),
            limits: self.settings.limits,
            retry: self.settings.retry,
            vars: vars.clone(),
        };
        let section = subagents::equip(&mut toolbox, &kit, &caller, dispatcher);
        vars.tools = toolbox.names().into_iter().map(str::to_owned).collect();
        let system_prompt = prompt::render(&preset.system_prompt, &vars)
            .map_err(|m| RunError::invalid("system_prompt", m))?
            + &section;

        let at = now();
        let record = SessionRecord {
            session_id: session_id.clone(),
            parent_session_id: place.parent.as_ref().map(|p| p.session_id.clone()),
            conversation_id: place.conversation_id.clone(),
            session_type: place.session_type,
            transport: req.transport,
            spawned_by: place.spawned_by.clone(),
            preset_id: Some(preset.preset_id.clone()),
            status: SessionStatus::Created,
            run_summary: None,
            pending_tool_calls: Vec::new(),
            error: None,
            created_at: at,
            updated_at: at,
        };
        match self
            .ports
            .sessions
            .create_session(&record, place.new_conversation)
            .await
        {
            Ok(()) => {}
            Err(StorageError::ConversationBusy { session_id }) => {
                return Err(RunError::Busy(self.active_session(&session_id).await));
            }
            Err(StorageError::NotFound) => return Err(RunError::NotFound("conversation")),
            Err(e) => return Err(e.into()),
        }

        let log = RunLog::new(session_id.clone());
        let handle = Arc::new(RunHandle::new(
            session_id.clone(),
            record.conversation_id.clone(),
            record.session_type,
            record.transport,
            RunControl::new(),
            log.clone(),
        ));
        self.registry.insert(handle.clone());
        log.push(
            MAIN_AGENT,
            EventPayload::RunStarted(RunStarted {
                conversation_id: record.conversation_id.clone(),
                session_type: record.session_type,
                transport: record.transport,
                parent_session_id: record.parent_session_id.clone(),
                preset_id: record.preset_id.clone(),
            }),
        );
        tokio::spawn(forward::forward(
            log.clone(),
            self.ports.bus.clone(),
            handle.stream_key.clone(),
            self.registry.clone(),
        ));

        let agent = Agent::new(
            self.ports.provider.clone(),
            env,
            AgentSpec {
                agent_id: MAIN_AGENT.to_owned(),
                model: preset.model.clone(),
                system_prompt,
                toolbox,
                limits: self.settings.limits,
                retry: self.settings.retry,
                deferral: Deferral {
                    approval: preset
                        .tool_config
                        .require_approval
                        .iter()
                        .cloned()
                        .collect(),
                    external: req.external_tools,
                    nested: false,
                },
            },
        );
        let started = StartedRun {
            session_id,
            conversation_id: record.conversation_id.clone(),
            stream_key: handle.stream_key.clone(),
            transport: record.transport,
            log,
        };
        let prepared = Prepared {
            handle,
            record,
            agent,
            state,
            input: materialized.parts,
            resolutions: req.resolutions,
            user_text: materialized.display_text,
            started: Instant::now(),
            subagent_name: place.subagent_name,
        };
        let this = Arc::clone(self);
        tokio::spawn(async move { this.execute(prepared).await });
        Ok(started)
    }

    /// Execute (spec 03): the agent runs in a task of its own, so a panic in it is caught
    /// here and still finalized; nothing a consumer does reaches it.
    async fn execute(self: Arc<Self>, p: Prepared) {
        let Prepared {
            handle,
            record,
            agent,
            state,
            input,
            resolutions,
            user_text,
            started,
            subagent_name,
        } = p;
        let control = handle.control.clone();
        let sink = handle.log.clone();
        let result = tokio::spawn(async move {
            agent
                .resume(state, resolutions, input, &control, &*sink)
                .await
        })
        .await;
        self.finalize(
            &handle,
            &record,
            result,
            &user_text,
            started,
            subagent_name.as_deref(),
        )
        .await;
    }

    /// Stops taking runs, lets running ones finish for up to `grace`, then interrupts the
    /// rest and waits (bounded) for their partial commits.
    pub async fn shutdown(&self, grace: Duration) {
        self.closing.store(true, Ordering::SeqCst);
        if tokio::time::timeout(grace, self.registry.wait_idle())
            .await
            .is_ok()
        {
            return;
        }
        let running = self.registry.all();
        tracing::warn!(
            runs = running.len(),
            "interrupting runs still going at shutdown"
        );
        for handle in running {
            handle
                .control
                .interrupt(Some("the service is shutting down".to_owned()));
        }
        if tokio::time::timeout(Duration::from_secs(10), self.registry.wait_idle())
            .await
            .is_err()
        {
            tracing::error!(
                "runs did not finish after interrupt; leaving them to startup recovery"
            );
        }
    }

    async fn place(&self, target: &RunTarget, session_id: &str) -> Result<Placement, RunError> {
        match target {
            RunTarget::NewConversation => Ok(Placement::root(
                session_id,
                None,
                new_conversation(session_id, None, None),
            )),
            RunTarget::Continue { conversation_id } => {
                let conversation = self.conversation(conversation_id).await?;
                if let Some(h) = self.registry.agent_run_of(conversation_id) {
                    return Err(RunError::Busy(ActiveSession {
                        session_id: h.session_id.clone(),
                        stream_key: h.stream_key.clone(),
                        transport: h.transport,
                    }));
                }
                let parent = self
                    .ports
                    .sessions
                    .latest_continuable(conversation_id)
                    .await?;
                Ok(Placement::within(
                    conversation_id.clone(),
                    parent,
                    conversation.default_preset_id,
                ))
            }
            RunTarget::Fork {
                conversation_id,
                from_session_id,
            } => {
                let conversation = self.conversation(conversation_id).await?;
                let parent = match from_session_id {
                    Some(id) => {
                        let parent = self.parent_session(id, "from_session_id").await?;
                        if parent.conversation_id != *conversation_id {
                            return Err(RunError::invalid(
                                "from_session_id",
                                "the session belongs to another conversation",
                            ));
                        }
                        parent
                    }
                    None => self
                        .ports
                        .sessions
                        .latest_continuable(conversation_id)
                        .await?
                        .ok_or_else(|| {
                            RunError::invalid(
                                "from_session_id",
                                "the conversation has no committed session to fork from",
                            )
                        })?,
                };
                Ok(Placement::root(
                    session_id,
                    Some(parent),
                    new_conversation(
                        session_id,
                        conversation.title,
                        conversation.default_preset_id,
                    ),
                ))
            }
            RunTarget::Parent {
                parent_session_id,
                fork,
            } => {
                let parent = self
                    .parent_session(parent_session_id, "parent_session_id")
                    .await?;
                let conversation = self.conversation(&parent.conversation_id).await?;
                if *fork {
                    return Ok(Placement::root(
                        session_id,
                        Some(parent),
                        new_conversation(
                            session_id,
                            conversation.title,
                            conversation.default_preset_id,
                        ),
                    ));
                }
                if parent.session_type == SessionType::AsyncSubagent {
                    // Continuing a subagent's session (e.g. resolving its pending calls)
                    // stays in its chain and reports to the mailbox like it.
                    let name = self.subagent_name_of(&parent).await?;
                    return Ok(Placement {
                        session_type: SessionType::AsyncSubagent,
                        spawned_by: parent.spawned_by.clone(),
                        subagent_name: Some(name),
                        ..Placement::within(parent.conversation_id.clone(), Some(parent), None)
                    });
                }
                let conversation_id = parent.conversation_id.clone();
                Ok(Placement::within(
                    conversation_id,
                    Some(parent),
                    conversation.default_preset_id,
                ))
            }
            RunTarget::AsyncSubagent {
                conversation_id,
                spawned_by,
                name,
                previous,
            } => {
                self.conversation(conversation_id).await?;
                let parent = match previous {
                    Some(previous) => self.chain_tip(previous).await?,
                    None => None,
                };
                Ok(Placement {
                    session_type: SessionType::AsyncSubagent,
                    spawned_by: Some(spawned_by.clone()),
                    subagent_name: Some(name.clone()),
                    ..Placement::within(conversation_id.clone(), parent, None)
                })
            }
        }
    }

    /// The session an async subagent's next task continues from: its latest session when
    /// that committed, else the last committed one before it (a failed task leaves no
    /// snapshot); `None` starts the chain afresh.
    async fn chain_tip(&self, previous: &str) -> Result<Option<SessionRecord>, RunError> {
        let mut id = previous.to_owned();
        // Chains are short; the bound only guards against a cycle in corrupt data.
        for _ in 0..64 {
            let still_working = || {
                RunError::invalid(
                    "subagent",
                    format!(
                        "it is still working on its previous task (session {id}); its result \
                         will arrive in the mailbox"
                    ),
                )
            };
            if self.registry.get(&id).is_some() {
                return Err(still_working());
            }
            let session = match self.ports.sessions.get_session(&id).await {
                Err(StorageError::NotFound) => return Ok(None),
                other => other?,
            };
            match session.status {
                SessionStatus::Committed | SessionStatus::AwaitingToolResults => {
                    return Ok(Some(session));
                }
                SessionStatus::Created => return Err(still_working()),
                SessionStatus::Failed | SessionStatus::Archived => {
                    match session.parent_session_id {
                        Some(parent) => id = parent,
                        None => return Ok(None),
                    }
                }
            }
        }
        Ok(None)
    }

    /// The name an async subagent session reported under, from its mailbox message.
    async fn subagent_name_of(&self, session: &SessionRecord) -> Result<String, RunError> {
        let messages = self
            .ports
            .mailbox
            .list_messages(&session.conversation_id)
            .await?;
        Ok(messages
            .into_iter()
            .find(|m| m.source_session_id == session.session_id)
            .map_or_else(|| "subagent".to_owned(), |m| m.subagent_name))
    }

    pub(super) async fn conversation(
        &self,
        conversation_id: &str,
    ) -> Result<Conversation, RunError> {
        match self
            .ports
            .conversations
            .get_conversation(conversation_id)
            .await
        {
            Err(StorageError::NotFound) => Err(RunError::NotFound("conversation")),
            other => Ok(other?),
        }
    }

    /// A session a new run may start from: committed (or waiting for tool results).
    async fn parent_session(
        &self,
        session_id: &str,
        field: &str,
    ) -> Result<SessionRecord, RunError> {
        let parent = match self.ports.sessions.get_session(session_id).await {
            Err(StorageError::NotFound) => {
                return Err(RunError::invalid(field, "no such session"));
            }
            other => other?,
        };
        match parent.status {
            SessionStatus::Committed | SessionStatus::AwaitingToolResults => Ok(parent),
            status => Err(RunError::invalid(
                field,
                format!(
                    "session is {}; only committed sessions can be continued",
                    status.as_str()
                ),
            )),
        }
    }

    /// The requested preset, else the conversation's default, else the default preset,
    /// with the request's override applied and checked.
    async fn preset_for(
        &self,
        req: &RunRequest,
        conversation_default: Option<&str>,
    ) -> Result<Preset, RunError> {
        let presets = &self.ports.presets;
        let preset = match (&req.preset_id, conversation_default) {
            (Some(id), _) => match presets.get_preset(id).await {
                Err(StorageError::NotFound) => {
                    return Err(RunError::invalid("preset_id", format!("no preset {id}")));
                }
                other => other?,
            },
            (None, Some(id)) => match presets.get_preset(id).await {
                Err(StorageError::NotFound) => self.default_preset().await?,
                other => other?,
            },
            (None, None) => self.default_preset().await?,
        };
        let Some(over) = &req.config_override else {
            return Ok(preset);
        };
        let merged = over.apply(preset);
        let errors = preset_validation::validate(&merged, &[]);
        if errors.is_empty() {
            Ok(merged)
        } else {
            Err(RunError::Invalid(
                errors
                    .into_iter()
                    .map(|e| FieldError {
                        field: format!("config_override.{}", e.field),
                        message: e.message,
                    })
                    .collect(),
            ))
        }
    }

    async fn default_preset(&self) -> Result<Preset, RunError> {
        self.ports.presets.default_preset().await?.ok_or_else(|| {
            RunError::invalid("preset_id", "no preset given and no default preset exists")
        })
    }

    async fn load_state(&self, session_id: &str) -> Result<SessionState, RunError> {
        self.ports
            .state_store
            .load_state(session_id)
            .await
            .map_err(|e| match e {
                StateStoreError::Unavailable(_) => {
                    RunError::Unavailable(format!("the state store is unavailable: {e}"))
                }
                e => RunError::Internal(format!("state of session {session_id}: {e}")),
            })
    }

    /// The running session reported with a 409: live details from the registry, else what
    /// the session row says (it may be registering right now).
    async fn active_session(&self, session_id: &str) -> ActiveSession {
        if let Some(h) = self.registry.get(session_id) {
            return ActiveSession {
                session_id: h.session_id.clone(),
                stream_key: h.stream_key.clone(),
                transport: h.transport,
            };
        }
        let transport = self
            .ports
            .sessions
            .get_session(session_id)
            .await
            .map(|s| s.transport)
            .unwrap_or(Transport::Sse);
        ActiveSession {
            session_id: session_id.to_owned(),
            stream_key: StreamKey::for_session(session_id),
            transport,
        }
    }
}

fn new_conversation(
    conversation_id: &str,
    title: Option<String>,
    default_preset_id: Option<String>,
) -> Conversation {
    let at = now();
    Conversation {
        conversation_id: conversation_id.to_owned(),
        title,
        default_preset_id,
        status: ConversationStatus::Active,
        created_at: at,
        updated_at: at,
    }
}
