//! Setup and execute, the first two phases of a run (spec 03). Setup does everything that
//! can refuse the request before anything is created; once the session row exists the run
//! is committed to finishing, and `finalize.rs` always ends it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ports::{
    Conversation, ConversationRepo, Downloader, EnvironmentError, EnvironmentFactory,
    EnvironmentWarning, EventBus, EventPayload, MAIN_AGENT, MailboxRepo, Metrics, ModelProvider,
    Preset, PresetRepo, RunStarted, Scraper, SessionRecord, SessionRepo, SessionState,
    SessionStatus, StateStore, StateStoreError, StorageError, StreamKey, ToolServers, Transport,
    UserPart, Warning, WebSearch, Workspace, now,
};
use ports::{ConversationId, Metadata, PresetId, SessionId};
use tokio::time::Instant;
use tokio_util::task::TaskTracker;

use super::admission::{Admission, DEFAULT_MAX_CONCURRENT_RUNS, Slot};
use super::assemble::AgentPlan;
use super::forward;
use super::input::{self, InputLimits};
use super::placement::Placement;
use super::registry::{Registry, RunHandle};
use super::request::{ActiveSession, ConfigOverride, RunError, RunRequest, StartedRun};
use super::run_log::RunLog;
use super::titles;
use crate::core::agent::{Agent, Resolutions, RetryPolicy, RunLimits, check_resolutions};
use crate::core::environment::{Environment, ShellLimits, command_vars};
use crate::core::limits::FileLimits;
use crate::core::preset_validation::{self, FieldError};
use crate::core::redact::Redactor;
use crate::core::run::RunControl;
use crate::core::tools::{Tool, WebServices, mcp};

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
    /// The web toolset's search service, when the admin configured one.
    pub search: Option<Arc<dyn WebSearch>>,
    /// The web toolset's scraping service, when the admin configured one.
    pub scraper: Option<Arc<dyn Scraper>>,
    /// The presets' MCP servers.
    pub tool_servers: Arc<dyn ToolServers>,
    /// What operators watch: runs, tool calls, bus appends.
    pub metrics: Arc<dyn Metrics>,
    /// Where runs tell that they started and ended.
    pub notifier: Arc<crate::core::notifications::Notifier>,
}

/// Tunables of every run.
#[derive(Debug, Clone)]
pub struct Settings {
    pub input: InputLimits,
    /// Caps on a run whose preset sets none of its own.
    pub limits: RunLimits,
    pub retry: RetryPolicy,
    pub shell: ShellLimits,
    pub files: FileLimits,
    /// How long finalize keeps retrying the session's final write while the database is
    /// unreachable, before leaving the row to startup recovery.
    pub finish_retry_for: Duration,
    /// The service's secret values, scrubbed from tool output.
    pub redactor: Redactor,
    /// Runs going at once, async subagents included (`MAX_CONCURRENT_RUNS`).
    pub max_concurrent_runs: usize,
    /// The cheap model that titles new conversations (`TITLE_MODEL`); without one the
    /// title is the first user text, cut.
    pub title_model: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            input: InputLimits::default(),
            limits: crate::core::limits::default_run_limits(),
            retry: RetryPolicy::default(),
            shell: ShellLimits::default(),
            files: FileLimits::default(),
            finish_retry_for: Duration::from_secs(30),
            redactor: Redactor::default(),
            max_concurrent_runs: DEFAULT_MAX_CONCURRENT_RUNS,
            title_model: None,
        }
    }
}

/// How long shutdown waits, once the grace period is over and the runs still going are
/// interrupted, for the runs to commit and their events to reach the bus.
const SETTLE: Duration = Duration::from_secs(10);

/// The run engine: starts runs (setup), executes them and finishes them (finalize), and
/// drains them at shutdown.
pub struct RunEngine {
    pub(super) ports: Ports,
    pub(super) settings: Settings,
    pub(super) registry: Arc<Registry>,
    admission: Admission,
    closing: AtomicBool,
    /// Every execute task and bus forwarder started, so shutdown can wait for them: a
    /// process that exits before a forwarder ends loses the tail of that run's stream.
    pub(super) tasks: TaskTracker,
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
    /// The run's admission slot, given back when the run is finalized.
    pub slot: Slot,
}

/// What setup resolved before opening the environment.
struct Resolved {
    place: Placement,
    preset: Preset,
    state: SessionState,
}

impl Resolved {
    /// The `created` row of the new session.
    fn record(&self, session_id: &SessionId, transport: Transport) -> SessionRecord {
        let at = now();
        SessionRecord {
            session_id: session_id.clone(),
            parent_session_id: self.place.parent.as_ref().map(|p| p.session_id.clone()),
            conversation_id: self.place.conversation_id.clone(),
            kind: self.place.kind.clone(),
            transport,
            preset_id: Some(self.preset.preset_id.clone()),
            status: SessionStatus::Created,
            run_summary: None,
            pending_tool_calls: Vec::new(),
            error: None,
            created_at: at,
            updated_at: at,
        }
    }
}

impl RunEngine {
    pub(super) fn new(ports: Ports, settings: Settings, registry: Arc<Registry>) -> Arc<Self> {
        Arc::new(Self {
            admission: Admission::new(settings.max_concurrent_runs),
            ports,
            settings,
            registry,
            closing: AtomicBool::new(false),
            tasks: TaskTracker::new(),
        })
    }

    /// Setup (spec 03): validates and resolves everything, creates the session, registers
    /// it and starts the execute phase. On `Ok` the run's `run_started` event is in its log.
    ///
    /// # Errors
    /// See [`RunError`]; nothing is created when one is returned.
    pub async fn start(self: &Arc<Self>, req: RunRequest) -> Result<StartedRun, RunError> {
        self.start_as(SessionId::generate(), req, None).await
    }

    /// [`Self::start`] with the session id chosen by the caller (fire marks mailbox
    /// messages delivered to it before the run starts) and text the runtime puts before
    /// the caller's input.
    pub(super) async fn start_as(
        self: &Arc<Self>,
        session_id: SessionId,
        req: RunRequest,
        prelude: Option<String>,
    ) -> Result<StartedRun, RunError> {
        let slot = self.admit(&req, prelude.is_some())?;
        self.check_bus(req.transport).await?;
        let resolved = self.resolve(&req, &session_id).await?;
        let (env, warnings) = self.open_environment(&resolved.preset).await?;
        let env = Arc::new(env);
        let workspace = env.workspace.clone();
        let web_services = WebServices::of(&env);
        let (mcp_tools, mcp_warnings) = self.mcp_tools(&resolved.preset).await;
        let materialized = self
            .materialize(req.input, &env, &session_id, prelude)
            .await?;
        let agent = self
            .assemble(AgentPlan {
                preset: &resolved.preset,
                env,
                session_id: &session_id,
                conversation_id: &resolved.place.conversation_id,
                session_type: resolved.place.kind.session_type(),
                external_tools: req.external_tools.into_inner(),
                mcp_tools,
                prompt_field: prompt_field(req.config_override.as_ref()),
            })
            .await?;
        let record = resolved.record(&session_id, req.transport);
        self.insert_row(
            &record,
            resolved.place.new_conversation,
            &materialized.display_text,
            &req.metadata,
        )
        .await?;
        let handle = self.register(&record, workspace);
        if uses_shell(&resolved.preset) {
            warn(&handle, warnings);
        }
        for warning in web_services
            .missing(&resolved.preset.toolsets)
            .into_iter()
            .chain(mcp_warnings)
        {
            handle.log.push(MAIN_AGENT, EventPayload::Warning(warning));
        }
        let started = StartedRun {
            session_id,
            conversation_id: record.conversation_id.clone(),
            stream_key: handle.stream_key.clone(),
            transport: record.transport,
            log: handle.log.clone(),
        };
        let prepared = Prepared {
            handle,
            record,
            agent,
            state: resolved.state,
            input: materialized.parts,
            resolutions: req.resolutions,
            user_text: materialized.display_text,
            started: Instant::now(),
            slot,
        };
        let this = Arc::clone(self);
        self.tasks
            .spawn(async move { this.execute(prepared).await });
        Ok(started)
    }

    /// The run's input as the model and the transcript take it, after the runtime's
    /// `prelude`.
    async fn materialize(
        &self,
        input: Vec<ports::InputPart>,
        env: &Environment,
        session_id: &SessionId,
        prelude: Option<String>,
    ) -> Result<input::Materialized, RunError> {
        let mut materialized = input::materialize(
            input,
            &*env.workspace,
            &*self.ports.downloader,
            input::run_uploads(session_id),
            &self.settings.input,
        )
        .await
        .map_err(RunError::Invalid)?;
        if let Some(prelude) = prelude {
            materialized.prepend(prelude);
        }
        Ok(materialized)
    }

    /// The tools of the preset's MCP servers, and a warning for each that could not be used.
    pub(super) async fn mcp_tools(&self, preset: &Preset) -> (Vec<Arc<dyn Tool>>, Vec<Warning>) {
        if preset.mcp_servers.is_empty() {
            return (Vec::new(), Vec::new());
        }
        self.mcp().of(preset).await
    }

    /// Where MCP tools come from, for this engine's runs and their subagents.
    pub(super) fn mcp(&self) -> mcp::McpTools {
        mcp::McpTools {
            servers: self.ports.tool_servers.clone(),
            environments: self.ports.environments.clone(),
            redactor: self.settings.redactor.clone(),
        }
    }

    /// A `stream` run needs the bus before anything is created.
    async fn check_bus(&self, transport: Transport) -> Result<(), RunError> {
        if transport != Transport::Stream {
            return Ok(());
        }
        self.ports
            .bus
            .health()
            .await
            .map_err(|e| RunError::Unavailable(format!("the event bus is unavailable: {e}")))
    }

    /// Where the session goes, the preset it runs and the state it starts from, with the
    /// request's resolutions and external tools checked against them.
    async fn resolve(
        &self,
        req: &RunRequest,
        session_id: &SessionId,
    ) -> Result<Resolved, RunError> {
        let mut place = self.place(&req.target, session_id).await?;
        let preset = self.preset_for(req, place.default_preset.as_ref()).await?;
        if let Some(conversation) = &mut place.new_conversation {
            // A new conversation keeps running the preset it started with.
            conversation.default_preset_id = Some(preset.preset_id.clone());
        }
        let state = match &place.parent {
            Some(parent) => self.load_state(&parent.session_id).await?,
            None => SessionState {
                message_history: req.history.clone(),
                ..SessionState::default()
            },
        };
        let unresolvable =
            check_resolutions(&state.context_state.pending_tool_calls, &req.resolutions);
        if !unresolvable.is_empty() {
            return Err(RunError::Invalid(unresolvable));
        }
        Ok(Resolved {
            place,
            preset,
            state,
        })
    }

    /// The run's admission slot, once the request passed [`Self::check_request`].
    fn admit(&self, req: &RunRequest, has_prelude: bool) -> Result<Slot, RunError> {
        self.check_request(req, has_prelude)?;
        self.admission.admit()
    }

    /// What can be refused without reading anything: nothing to do, bad input parts, a
    /// service shutting down.
    fn check_request(&self, req: &RunRequest, has_prelude: bool) -> Result<(), RunError> {
        if req.input.is_empty() {
            if req.resolutions.is_empty() && !has_prelude {
                return Err(RunError::invalid(
                    "input",
                    "give at least one of input, user_interactions or tool_results",
                ));
            }
        } else {
            input::validate(&req.input, &self.settings.input).map_err(RunError::Invalid)?;
        }
        let bad_metadata = crate::core::metadata::check("metadata", &req.metadata);
        if !bad_metadata.is_empty() {
            return Err(RunError::Invalid(bad_metadata));
        }
        if self.closing.load(Ordering::SeqCst) {
            return Err(RunError::Unavailable(
                "the service is shutting down".to_owned(),
            ));
        }
        Ok(())
    }

    /// The preset's environment: workspace, shell and the variables the shell may see, and
    /// what the run must be warned about it.
    async fn open_environment(
        &self,
        preset: &Preset,
    ) -> Result<(Environment, Vec<EnvironmentWarning>), RunError> {
        let opened = self
            .ports
            .environments
            .open(&preset.environment)
            .await
            .map_err(|e| match e {
                EnvironmentError::Protected(p) => RunError::invalid(&p.field, p.message),
                EnvironmentError::MissingContainer => {
                    RunError::invalid("environment.container_id", e.to_string())
                }
                EnvironmentError::WorkingDir { .. } => {
                    RunError::invalid("environment.default_path", e.to_string())
                }
            })?;
        let env = Environment {
            workspace: opened.workspace,
            shell: opened.shell,
            downloader: self.ports.downloader.clone(),
            search: self.ports.search.clone(),
            scraper: self.ports.scraper.clone(),
            command_vars: command_vars(&preset.environment, |name| {
                self.ports.environments.host_var(name)
            }),
            limits: self.settings.shell,
            files: self.settings.files,
            redactor: self.settings.redactor.clone(),
        };
        Ok((env, opened.warnings))
    }

    /// Inserts the `created` row (with a new conversation's row, titled with the run's
    /// first text and carrying the run's metadata); the busy rule is enforced by this
    /// insert. An existing conversation gets the run's metadata added.
    async fn insert_row(
        &self,
        record: &SessionRecord,
        new_conversation: Option<Conversation>,
        first_text: &str,
        metadata: &Metadata,
    ) -> Result<(), RunError> {
        let is_new = new_conversation.is_some();
        let new_conversation = new_conversation.map(|mut c| {
            if c.title.is_none() {
                c.title = titles::fallback(first_text);
            }
            c.metadata.extend(metadata.clone());
            c
        });
        match self
            .ports
            .sessions
            .create_session(record, new_conversation)
            .await
        {
            Ok(()) if is_new || metadata.is_empty() => Ok(()),
            Ok(()) => {
                self.add_metadata(&record.conversation_id, metadata).await;
                Ok(())
            }
            Err(StorageError::ConversationBusy { session_id }) => {
                Err(RunError::Busy(self.active_session(&session_id).await))
            }
            Err(StorageError::NotFound) => Err(RunError::NotFound("conversation")),
            Err(e) => Err(e.into()),
        }
    }

    /// Adds a run's metadata to its conversation's; a failure is logged, the run goes on.
    async fn add_metadata(&self, conversation_id: &ConversationId, metadata: &Metadata) {
        let conversations = &self.ports.conversations;
        let merged = match conversations.get_conversation(conversation_id).await {
            Ok(current) => crate::core::metadata::merged(&current.metadata, metadata),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the conversation's metadata");
                return;
            }
        };
        let Some(merged) = merged else { return };
        let patch = ports::ConversationPatch {
            metadata: Some(merged),
            ..ports::ConversationPatch::default()
        };
        if let Err(e) = conversations
            .update_conversation(conversation_id, &patch, ports::now())
            .await
        {
            tracing::warn!(error = %e, "cannot store the run's metadata on its conversation");
        }
    }

    /// Registers the run, puts `run_started` in its log and starts forwarding the log to
    /// the bus.
    fn register(&self, record: &SessionRecord, workspace: Arc<dyn Workspace>) -> Arc<RunHandle> {
        let log = RunLog::new(record.session_id.clone());
        let handle = Arc::new(RunHandle::new(
            record.session_id.clone(),
            record.conversation_id.clone(),
            record.session_type(),
            record.transport,
            RunControl::new(),
            log.clone(),
            workspace,
        ));
        self.registry.insert(handle.clone());
        self.ports.notifier.publish(super::notices::started(record));
        self.ports
            .metrics
            .run_started(super::finalize::preset_label(record), record.session_type());
        log.push(
            MAIN_AGENT,
            EventPayload::RunStarted(RunStarted {
                conversation_id: record.conversation_id.clone(),
                session_type: record.session_type(),
                transport: record.transport,
                parent_session_id: record.parent_session_id.clone(),
                preset_id: record.preset_id.clone(),
            }),
        );
        self.tasks.spawn(forward::forward(
            log,
            self.ports.bus.clone(),
            handle.stream_key.clone(),
            self.registry.clone(),
            self.ports.metrics.clone(),
        ));
        handle
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
            slot,
        } = p;
        let control = handle.control.clone();
        let sink = handle.log.clone();
        let result = tokio::spawn(async move {
            agent
                .resume(state, resolutions, input, &control, &*sink)
                .await
        })
        .await;
        self.finalize(&handle, &record, result, &user_text, started)
            .await;
        drop(slot);
    }

    /// Runs going now (their admission slots).
    pub fn runs_active(&self) -> usize {
        self.admission.in_use()
    }

    /// Whether the service is shutting down: new runs are refused while the running ones
    /// get their grace period (readiness reports it).
    pub fn is_draining(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    /// Stops taking runs, lets running ones finish for up to `grace`, then interrupts the
    /// rest, and waits (bounded by [`SETTLE`]) for every run to commit and for every
    /// forwarder to put its run's last events, the terminal one included, on the bus.
    pub async fn shutdown(&self, grace: Duration) {
        self.closing.store(true, Ordering::SeqCst);
        if tokio::time::timeout(grace, self.registry.wait_idle())
            .await
            .is_err()
        {
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
        }
        // `close` only lets `wait` end once the tracker is empty: a run that started in a
        // race with `closing` is still tracked and waited for.
        self.tasks.close();
        if tokio::time::timeout(SETTLE, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::error!(
                runs = self.registry.all().len(),
                tasks = self.tasks.len(),
                "runs or their event forwarding did not finish after shutdown; unfinished \
                 runs are left to startup recovery"
            );
        }
        self.ports.tool_servers.shutdown().await;
    }

    /// The requested preset, else the conversation's default, else the default preset,
    /// with the request's override applied and checked.
    async fn preset_for(
        &self,
        req: &RunRequest,
        conversation_default: Option<&PresetId>,
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
        let limits = over
            .lowered(preset.limits.or(self.settings.limits))
            .map_err(RunError::Invalid)?;
        let mut merged = over.apply(preset);
        merged.limits = limits;
        let mut errors = preset_validation::validate(&merged, &[]);
        errors.extend(
            self.ports
                .environments
                .check_paths(&merged.environment)
                .await
                .into_iter()
                .map(FieldError::from),
        );
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

    async fn load_state(&self, session_id: &SessionId) -> Result<SessionState, RunError> {
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
    async fn active_session(&self, session_id: &SessionId) -> ActiveSession {
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

/// Which field a bad system prompt is reported under.
fn prompt_field(config_override: Option<&ConfigOverride>) -> &'static str {
    if config_override.is_some_and(|o| o.system_prompt.is_some()) {
        "config_override.system_prompt"
    } else {
        "system_prompt"
    }
}

/// Puts the environment's warnings in the run's log, where they open its stream.
fn warn(handle: &RunHandle, warnings: Vec<EnvironmentWarning>) {
    for w in warnings {
        handle.log.push(
            MAIN_AGENT,
            EventPayload::Warning(Warning {
                code: w.code,
                message: w.message,
            }),
        );
    }
}

/// Whether the agent has the shell (environment warnings are about the shell).
fn uses_shell(preset: &Preset) -> bool {
    preset
        .toolsets
        .iter()
        .any(|t| t.enabled && t.toolset_name == crate::core::catalogue::SHELL_TOOLSET)
}
