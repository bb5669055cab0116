//! `async_delegate`: an async subagent. The tool asks the run engine (through
//! [`Launcher`]) to start a separate session of type `async_subagent` in the caller's
//! conversation and returns at once; the session runs beside, and may outlive, the caller.
//! The caller's context_state remembers name → latest session, so the next dispatch to the
//! same name continues that subagent's chain.

use async_trait::async_trait;
use ports::{ConversationId, Preset, PresetId, SessionId, ToolsetSpec};
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use super::{Builtin, Directory, Source};
use crate::core::tools::{ToolContext, ToolError, ToolOutput, TypedTool};

pub(super) const NAME: &str = "async_delegate";

/// The configuration an async subagent session runs.
#[derive(Debug, Clone, PartialEq)]
pub enum LaunchConfig {
    /// A stored preset.
    Preset(PresetId),
    /// A built-in subagent: the caller's preset with the built-in's prompt and toolsets.
    Builtin {
        base_preset: PresetId,
        model: String,
        system_prompt: String,
        toolsets: Vec<ToolsetSpec>,
    },
}

/// One async subagent session to start.
#[derive(Debug, Clone, PartialEq)]
pub struct Launch {
    pub conversation_id: ConversationId,
    /// The session whose agent dispatched it.
    pub spawned_by: SessionId,
    pub name: String,
    pub config: LaunchConfig,
    /// The subagent's previous session, whose chain this one continues.
    pub previous: Option<SessionId>,
    pub task: String,
}

/// Starts async subagent sessions (the run engine).
#[async_trait]
pub trait Launcher: Send + Sync {
    /// Starts the session and returns its id.
    ///
    /// # Errors
    /// Why it could not start, worded for the model.
    async fn launch(&self, launch: Launch) -> Result<SessionId, String>;
}

/// Where dispatched sessions go: the launcher and the dispatching session.
#[derive(Clone)]
pub struct Dispatcher {
    pub launcher: Arc<dyn Launcher>,
    pub conversation_id: ConversationId,
    pub session_id: SessionId,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AsyncDelegateArgs {
    /// The subagent's name, from the list in your instructions.
    subagent: String,
    /// What it should do: a self-contained task with everything it needs to know. It
    /// remembers earlier tasks you dispatched to it.
    task: String,
}

/// The `async_delegate` tool of one session's agent.
pub struct AsyncDelegate {
    directory: Directory,
    caller: Preset,
    dispatcher: Dispatcher,
    /// Names being dispatched right now: two calls of one step must not both start a
    /// session of the same chain.
    in_flight: Mutex<HashSet<String>>,
}

/// Removes a name from the in-flight set when the dispatch ends, however it ends.
struct InFlight<'a> {
    set: &'a Mutex<HashSet<String>>,
    name: String,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.set
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.name);
    }
}

impl AsyncDelegate {
    pub fn new(directory: Directory, caller: Preset, dispatcher: Dispatcher) -> Self {
        Self {
            directory,
            caller,
            dispatcher,
            in_flight: Mutex::default(),
        }
    }

    fn config_of(&self, source: &Source) -> LaunchConfig {
        match source {
            Source::Preset(id) => LaunchConfig::Preset(id.clone()),
            Source::Builtin(b) => builtin(*b, &self.caller),
        }
    }
}

fn builtin(b: Builtin, caller: &Preset) -> LaunchConfig {
    LaunchConfig::Builtin {
        base_preset: caller.preset_id.clone(),
        model: caller.model.name.clone(),
        system_prompt: b.system_prompt().to_owned(),
        toolsets: b.toolsets(&caller.toolsets),
    }
}

#[async_trait]
impl TypedTool for AsyncDelegate {
    type Args = AsyncDelegateArgs;
    const NAME: &'static str = NAME;
    const DESCRIPTION: &'static str = "Start a subagent on a task in the background and \
        continue at once. It works in its own session; its result is delivered to the \
        conversation later, not to this call. Dispatching to the same subagent again \
        continues its earlier work.";

    async fn run(
        &self,
        ctx: &ToolContext<'_>,
        args: AsyncDelegateArgs,
    ) -> Result<ToolOutput, ToolError> {
        let subagent = self.directory.resolve(&args.subagent, &args.task)?;
        let name = subagent.name.clone();
        if !self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.clone())
        {
            return Err(ToolError(format!(
                "{name:?} is already being given a task in this step; dispatch to it again \
                 after its result arrives"
            )));
        }
        let _in_flight = InFlight {
            set: &self.in_flight,
            name: name.clone(),
        };
        let previous = ctx.with_scratch(|s| s.async_subagents.get(&name).cloned());
        let launch = Launch {
            conversation_id: self.dispatcher.conversation_id.clone(),
            spawned_by: self.dispatcher.session_id.clone(),
            name: name.clone(),
            config: self.config_of(&subagent.source),
            previous,
            task: args.task,
        };
        let session_id = self
            .dispatcher
            .launcher
            .launch(launch)
            .await
            .map_err(|e| ToolError(format!("could not dispatch to {name:?}: {e}")))?;
        ctx.with_scratch(|s| {
            s.async_subagents.insert(name.clone(), session_id.clone());
        });
        Ok(ToolOutput::text(format!(
            "dispatched to '{name}' (session {session_id})"
        )))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex as StdMutex;

    use ports::mocks::{MockShell, MockWorkspace};
    use ports::{SubagentRef, SubagentSpec};
    use tokio::sync::Notify;

    use super::*;
    use crate::core::environment::{Environment, ShellLimits};
    use crate::core::run::{CollectingSink, RunControl};
    use crate::core::tools::{Scratch, Tool};

    /// Records launches; the first one waits until the test lets it go on.
    #[derive(Default)]
    struct Gate {
        launches: StdMutex<Vec<Launch>>,
        go: Notify,
    }

    #[async_trait]
    impl Launcher for Gate {
        async fn launch(&self, launch: Launch) -> Result<SessionId, String> {
            let n = {
                let mut launches = self.launches.lock().unwrap();
                launches.push(launch);
                launches.len()
            };
            if n == 1 {
                self.go.notified().await;
            }
            Ok(format!("s{n}").into())
        }
    }

    fn tool(gate: Arc<Gate>) -> AsyncDelegate {
        let spec = SubagentSpec {
            include_builtin: true,
            async_enabled: true,
            refs: vec![SubagentRef {
                preset_id: "worker-preset".into(),
                name: "worker".into(),
                description: String::new(),
                instruction: None,
            }],
        };
        let caller = crate::core::subagents::boss(spec.clone(), vec![]);
        AsyncDelegate::new(
            Directory::of(&spec),
            caller,
            Dispatcher {
                launcher: gate,
                conversation_id: "c".into(),
                session_id: "boss-session".into(),
            },
        )
    }

    #[tokio::test]
    async fn one_name_is_dispatched_once_at_a_time_and_later_dispatches_continue_its_chain() {
        let gate = Arc::new(Gate::default());
        let tool = tool(gate.clone());
        let env = Arc::new(Environment {
            workspace: Arc::new(MockWorkspace::new()),
            downloader: Arc::new(ports::mocks::MockDownloader::new()),
            search: None,
            scraper: None,
            shell: Arc::new(MockShell::new()),
            command_vars: vec![],
            limits: ShellLimits::default(),
            redactor: Default::default(),
            files: Default::default(),
        });
        let (control, sink) = (RunControl::new(), CollectingSink::default());
        let ctx = ToolContext {
            env,
            scratch: Arc::new(std::sync::Mutex::new(Scratch::default())),
            control: &control,
            sink: &sink,
        };
        let args = r#"{"subagent":"worker","task":"go"}"#;
        let first = tool.call(&ctx, args);
        let second = async {
            // Runs while the first launch waits at the gate.
            let refused = tool.call(&ctx, args).await;
            gate.go.notify_one();
            refused
        };
        let (first, second) = tokio::join!(first, second);
        assert_eq!(
            first.unwrap().content,
            "dispatched to 'worker' (session s1)"
        );
        assert!(second.unwrap_err().0.contains("already being given a task"));

        let third = tool.call(&ctx, args).await.unwrap();
        assert_eq!(third.content, "dispatched to 'worker' (session s2)");
        let launches = gate.launches.lock().unwrap().clone();
        assert_eq!(launches.len(), 2, "the refused call launched nothing");
        assert_eq!(launches[0].previous, None);
        assert_eq!(launches[1].previous.as_deref(), Some("s1"));
        assert_eq!(
            launches[0].config,
            LaunchConfig::Preset("worker-preset".into())
        );
        assert_eq!(launches[0].spawned_by, "boss-session");

        // A built-in runs on the caller's preset with its own prompt and tools.
        tool.call(&ctx, r#"{"subagent":"explorer","task":"look"}"#)
            .await
            .unwrap();
        let launches = gate.launches.lock().unwrap().clone();
        assert!(matches!(
            &launches[2].config,
            LaunchConfig::Builtin { base_preset, model, toolsets, .. }
                if base_preset == "boss" && model == "test:echo" && toolsets[0].toolset_name == "core"
        ));
        let err = tool
            .call(&ctx, r#"{"subagent":"nobody","task":"x"}"#)
            .await
            .unwrap_err();
        assert!(
            err.0.contains("available: worker, general, explorer"),
            "{err}"
        );
    }
}
