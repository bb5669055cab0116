//! [`McpServers`]: the `ToolServers` port over rmcp. One connection per preset and
//! server, made on first use and kept across runs; a dead one is made again on the next
//! use, one made from another launch (the preset changed) is replaced. A stdio server is a
//! process of the preset's environment ([`HostEnvironments::server`]); an HTTP server is
//! reached through a client pinned by the outbound policy.

mod connection;
mod convert;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use ports::{
    PresetId, RemoteTool, RemoteToolResult, ServerKey, ServerLaunch, ToolServerError, ToolServers,
};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::common::client_side_sse::ExponentialBackoff;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Map, Value};

use crate::environment::HostEnvironments;
use crate::outbound::{OutboundClient, OutboundPolicy};
use crate::shell::server::{self, ServerCommand};
use connection::Connection;

/// Times a broken event stream of an HTTP server is resumed before its calls fail.
const HTTP_RETRIES: usize = 2;

/// The presets' MCP servers.
pub struct McpServers {
    environments: Arc<HostEnvironments>,
    outbound: OutboundClient,
    slots: Mutex<HashMap<ServerKey, Arc<Slot>>>,
    closed: AtomicBool,
}

/// One server of one preset, as its current launch says.
struct Slot {
    launch: ServerLaunch,
    /// Locked while connecting, so concurrent runs share one connection.
    live: tokio::sync::Mutex<Option<Arc<Connection>>>,
}

impl McpServers {
    /// Stdio servers start in `environments`; HTTP servers are reached under `policy`.
    pub fn new(environments: Arc<HostEnvironments>, policy: OutboundPolicy) -> Self {
        Self {
            environments,
            outbound: OutboundClient::new(
                policy,
                concat!("agent-runtime/", env!("CARGO_PKG_VERSION")),
            ),
            slots: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
        }
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<ServerKey, Arc<Slot>>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The slot of `key` for `launch`, replacing one made from another launch.
    fn slot(&self, key: &ServerKey, launch: &ServerLaunch) -> Arc<Slot> {
        let mut slots = self.slots();
        match slots.get(key) {
            Some(slot) if slot.launch == *launch => slot.clone(),
            _ => {
                let slot = Arc::new(Slot {
                    launch: launch.clone(),
                    live: tokio::sync::Mutex::new(None),
                });
                slots.insert(key.clone(), slot.clone());
                slot
            }
        }
    }

    /// A live connection to the server, connecting when there is none.
    async fn connection(
        &self,
        key: &ServerKey,
        launch: &ServerLaunch,
    ) -> Result<Arc<Connection>, ToolServerError> {
        let slot = self.slot(key, launch);
        let mut live = slot.live.lock().await;
        if let Some(connection) = live.as_ref().filter(|c| c.is_alive()) {
            return Ok(connection.clone());
        }
        if self.closed.load(Ordering::SeqCst) {
            return Err(ToolServerError::Unavailable(
                "the service is shutting down".into(),
            ));
        }
        *live = None;
        let connection = Arc::new(self.connect(launch).await?);
        *live = Some(connection.clone());
        Ok(connection)
    }

    async fn connect(&self, launch: &ServerLaunch) -> Result<Connection, ToolServerError> {
        match launch {
            ServerLaunch::Stdio {
                command,
                args,
                cwd,
                env,
                environment,
            } => {
                let command = ServerCommand {
                    program: command.clone(),
                    args: args.clone(),
                    env: env.clone(),
                    cwd: cwd.clone().unwrap_or_else(|| ".".to_owned()),
                };
                let environments = self.environments.clone();
                let environment = environment.clone();
                let process = tokio::task::spawn_blocking(move || {
                    let (command, confinement) = environments.server(&environment, command)?;
                    server::start(&command, &confinement).map_err(|e| e.to_string())
                })
                .await
                .map_err(|e| ToolServerError::Unavailable(e.to_string()))?
                .map_err(ToolServerError::Unavailable)?;
                Connection::open((process.stdout, process.stdin), Some(process.guard)).await
            }
            ServerLaunch::Http { url, headers } => {
                let client = self
                    .outbound
                    .pinned(url, headers)
                    .await
                    .map_err(|e| ToolServerError::Unavailable(e.to_string()))?;
                let mut config = StreamableHttpClientTransportConfig::with_uri(url.as_str());
                let mut retry = ExponentialBackoff::default();
                retry.max_times = Some(HTTP_RETRIES);
                config.retry_config = Arc::new(retry);
                let transport = StreamableHttpClientTransport::with_client(client, config);
                Connection::open(transport, None).await
            }
        }
    }
}

#[async_trait]
impl ToolServers for McpServers {
    async fn tools(
        &self,
        key: &ServerKey,
        launch: &ServerLaunch,
    ) -> Result<Vec<RemoteTool>, ToolServerError> {
        self.connection(key, launch).await?.tools().await
    }

    async fn call(
        &self,
        key: &ServerKey,
        launch: &ServerLaunch,
        tool: &str,
        arguments: Map<String, Value>,
        timeout: Duration,
    ) -> Result<RemoteToolResult, ToolServerError> {
        let connection = self.connection(key, launch).await?;
        connection.call(tool, arguments, timeout).await
    }

    async fn release(&self, preset_id: &PresetId) {
        let released: Vec<Arc<Slot>> = {
            let mut slots = self.slots();
            let keys: Vec<ServerKey> = slots
                .keys()
                .filter(|k| k.preset_id == *preset_id)
                .cloned()
                .collect();
            keys.iter().filter_map(|k| slots.remove(k)).collect()
        };
        for slot in released {
            slot.live.lock().await.take();
        }
    }

    async fn shutdown(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let all: Vec<Arc<Slot>> = self.slots().drain().map(|(_, slot)| slot).collect();
        for slot in all {
            slot.live.lock().await.take();
        }
    }
}
