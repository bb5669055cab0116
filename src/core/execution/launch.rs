//! The engine as the [`Launcher`] of async subagents: a dispatch is an ordinary run
//! request with the `AsyncSubagent` target and transport `stream`.

use std::sync::{Arc, Weak};

use async_trait::async_trait;
use ports::{InputPart, SessionId, Transport};

use super::engine::RunEngine;
use super::request::{ConfigOverride, ModelOverride, RunError, RunRequest, RunTarget};
use crate::core::subagents::{Launch, LaunchConfig, Launcher};

/// Holds the engine weakly: a run's tools never keep the service alive.
pub(super) struct EngineLauncher(Weak<RunEngine>);

impl EngineLauncher {
    pub(super) fn new(engine: &Arc<RunEngine>) -> Self {
        Self(Arc::downgrade(engine))
    }
}

#[async_trait]
impl Launcher for EngineLauncher {
    async fn launch(&self, launch: Launch) -> Result<SessionId, String> {
        let Some(engine) = self.0.upgrade() else {
            return Err("the service is shutting down".to_owned());
        };
        let (preset_id, config_override) = match launch.config {
            LaunchConfig::Preset(id) => (id, None),
            LaunchConfig::Builtin {
                base_preset,
                model,
                system_prompt,
                toolsets,
            } => (
                base_preset,
                Some(ConfigOverride {
                    model: Some(ModelOverride {
                        name: Some(model),
                        ..ModelOverride::default()
                    }),
                    system_prompt: Some(system_prompt),
                    toolsets: Some(toolsets),
                    limits: None,
                }),
            ),
        };
        let mut request = RunRequest::new(
            RunTarget::AsyncSubagent {
                conversation_id: launch.conversation_id,
                spawned_by: launch.spawned_by,
                name: launch.name,
                previous: launch.previous,
            },
            vec![InputPart::Text { text: launch.task }],
            Transport::Stream,
        );
        request.preset_id = Some(preset_id);
        request.config_override = config_override;
        match engine.start(request).await {
            Ok(started) => Ok(started.session_id),
            Err(e) => Err(describe(e)),
        }
    }
}

/// A refusal in words the model can act on.
fn describe(e: RunError) -> String {
    match e {
        RunError::Invalid(fields) => fields
            .into_iter()
            .map(|f| f.message)
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}
