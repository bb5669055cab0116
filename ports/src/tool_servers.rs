//! MCP servers: the tools a preset's servers offer, and calls to them. The adapter keeps
//! one connection per preset and server, reused across runs; the core decides what a
//! server may see (its variables, its headers) and hands it over resolved.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::{EnvironmentSpec, ImageData, PresetId};

/// Which connection: one server of one preset. Two presets listing the same command get
/// two processes, each in its own preset's environment.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerKey {
    pub preset_id: PresetId,
    pub server: String,
}

/// How to reach a server, with every value read: a connection made from another launch
/// (the preset changed) is replaced, not reused.
#[derive(Clone, PartialEq)]
pub enum ServerLaunch {
    /// A process of the preset's environment: sandboxed like its shell in local mode,
    /// `docker exec -i` in docker mode.
    Stdio {
        command: String,
        args: Vec<String>,
        /// `None`: the environment's working directory.
        cwd: Option<String>,
        /// The process's whole environment: nothing else is inherited.
        env: Vec<(String, String)>,
        environment: EnvironmentSpec,
    },
    /// A streamable-HTTP endpoint, reached under the outbound policy.
    Http {
        url: String,
        /// Header values read from the service's environment.
        headers: Vec<(String, String)>,
    },
}

/// Values are secrets (tokens in headers, variables): only names are shown.
impl fmt::Debug for ServerLaunch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = |pairs: &[(String, String)]| -> Vec<String> {
            pairs.iter().map(|(name, _)| name.clone()).collect()
        };
        match self {
            Self::Stdio {
                command,
                args,
                cwd,
                env,
                ..
            } => f
                .debug_struct("Stdio")
                .field("command", command)
                .field("args", args)
                .field("cwd", cwd)
                .field("env", &names(env))
                .finish_non_exhaustive(),
            Self::Http { url, headers } => f
                .debug_struct("Http")
                .field("url", url)
                .field("headers", &names(headers))
                .finish(),
        }
    }
}

/// A tool as its server describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteTool {
    /// The server's own name for it.
    pub name: String,
    pub description: String,
    /// JSON schema of the arguments object.
    pub parameters: Value,
}

/// What a tool call returned: text parts joined, images kept, structured content as is.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RemoteToolResult {
    pub text: String,
    pub images: Vec<ImageData>,
    pub structured: Option<Value>,
    /// The server reports the call failed; `text` says why.
    pub is_error: bool,
}

/// Why a server could not answer; the text is for the model and the run's warning.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ToolServerError {
    /// The server could not be started or reached, or refused the handshake.
    #[error("{0}")]
    Unavailable(String),
    /// The connection broke, or the server answered with a protocol error.
    #[error("{0}")]
    Failed(String),
    #[error("no answer within {} s", .0.as_secs())]
    TimedOut(Duration),
}

/// The MCP servers of every preset.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait ToolServers: Send + Sync {
    /// The server's tools. Connects (or starts the process) when there is no live
    /// connection made from `launch`; a dead one is restarted, one made from another launch
    /// replaced.
    async fn tools(
        &self,
        key: &ServerKey,
        launch: &ServerLaunch,
    ) -> Result<Vec<RemoteTool>, ToolServerError>;

    /// Calls `tool` with `arguments`, connecting as [`Self::tools`] does. Ends within
    /// `timeout`. Dropping the future cancels the call at the server.
    async fn call(
        &self,
        key: &ServerKey,
        launch: &ServerLaunch,
        tool: &str,
        arguments: Map<String, Value>,
        timeout: Duration,
    ) -> Result<RemoteToolResult, ToolServerError>;

    /// Stops the servers of a preset (it changed or was deleted); the next use starts
    /// them again.
    async fn release(&self, preset_id: &PresetId);

    /// Stops every server (the service is shutting down).
    async fn shutdown(&self);
}
