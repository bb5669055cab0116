//! One live connection to an MCP server: the handshake (bounded), the tool list (cached
//! until the server says it changed), calls (bounded, cancelled at the server when their
//! future is dropped), and whether it still lives.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ports::{RemoteTool, RemoteToolResult, ToolServerError};
use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CancelledNotificationParam, ClientCapabilities,
    ClientConfig, ClientRequest, Implementation, RequestId, ServerResult,
};
use rmcp::service::{
    NotificationContext, Peer, PeerRequestOptions, RunningService, RunningServiceCancellationToken,
};
use rmcp::transport::IntoTransport;
use rmcp::{ClientHandler, RoleClient, ServiceError, ServiceExt};
use serde_json::{Map, Value};

use super::convert;
use crate::shell::server::ServerGuard;

/// Bound on the handshake: a server that does not answer `initialize` is unavailable.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on listing the tools.
const LIST_TIMEOUT: Duration = Duration::from_secs(30);

/// What the service tells servers it is, and what it hears from them.
#[derive(Clone, Default)]
struct Client {
    tools_changed: Arc<AtomicBool>,
}

impl ClientHandler for Client {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("agent-runtime", env!("CARGO_PKG_VERSION")),
        )
    }

    async fn on_tool_list_changed(&self, _cx: NotificationContext<RoleClient>) {
        self.tools_changed.store(true, Ordering::SeqCst);
    }
}

/// A server's connection; dropping it closes the session and stops the process.
pub struct Connection {
    peer: Peer<RoleClient>,
    /// Ends the session (taken on drop).
    stop: Option<RunningServiceCancellationToken>,
    /// Set when the session ended (the process died, the stream closed) or a call found
    /// the transport broken: the next use connects again.
    dead: Arc<AtomicBool>,
    tools_changed: Arc<AtomicBool>,
    tools: tokio::sync::Mutex<Option<Vec<RemoteTool>>>,
    // Last: the process outlives the session that speaks to it.
    _process: Option<ServerGuard>,
}

impl Connection {
    /// Runs the handshake over `transport`; `process` is the server's, when it is one.
    pub async fn open<T, E, A>(
        transport: T,
        process: Option<ServerGuard>,
    ) -> Result<Self, ToolServerError>
    where
        T: IntoTransport<RoleClient, E, A>,
        E: std::error::Error + Send + Sync + 'static,
    {
        let client = Client::default();
        let tools_changed = client.tools_changed.clone();
        let served = tokio::time::timeout(HANDSHAKE_TIMEOUT, client.serve(transport)).await;
        let why = |detail: String| {
            let tail = process
                .as_ref()
                .map(ServerGuard::stderr_tail)
                .unwrap_or_default();
            if tail.is_empty() {
                detail
            } else {
                format!("{detail}; it wrote: {tail}")
            }
        };
        let service = match served {
            Ok(Ok(service)) => service,
            Ok(Err(e)) => {
                return Err(ToolServerError::Unavailable(why(format!(
                    "the handshake failed: {e}"
                ))));
            }
            Err(_) => {
                return Err(ToolServerError::Unavailable(why(format!(
                    "no answer to the handshake within {} s",
                    HANDSHAKE_TIMEOUT.as_secs()
                ))));
            }
        };
        Ok(Self::watch(service, tools_changed, process))
    }

    /// Keeps the session running in a task of its own that marks the connection dead when
    /// it ends.
    fn watch(
        service: RunningService<RoleClient, Client>,
        tools_changed: Arc<AtomicBool>,
        process: Option<ServerGuard>,
    ) -> Self {
        let peer = service.peer().clone();
        let stop = Some(service.cancellation_token());
        let dead = Arc::new(AtomicBool::new(false));
        let marker = dead.clone();
        tokio::spawn(async move {
            let ended = service.waiting().await;
            tracing::debug!(?ended, "MCP session ended");
            marker.store(true, Ordering::SeqCst);
        });
        Self {
            peer,
            stop,
            dead,
            tools_changed,
            tools: tokio::sync::Mutex::new(None),
            _process: process,
        }
    }

    pub fn is_alive(&self) -> bool {
        !self.dead.load(Ordering::SeqCst) && !self.peer.is_transport_closed()
    }

    /// The server's tools, listed again after it said they changed.
    pub async fn tools(&self) -> Result<Vec<RemoteTool>, ToolServerError> {
        let mut cached = self.tools.lock().await;
        if self.tools_changed.swap(false, Ordering::SeqCst) {
            *cached = None;
        }
        if let Some(tools) = cached.as_ref() {
            return Ok(tools.clone());
        }
        let listed = tokio::time::timeout(LIST_TIMEOUT, self.peer.list_all_tools())
            .await
            .map_err(|_| ToolServerError::TimedOut(LIST_TIMEOUT))?
            .map_err(|e| self.failure(&e))?;
        let tools: Vec<RemoteTool> = listed.into_iter().map(convert::tool).collect();
        *cached = Some(tools.clone());
        Ok(tools)
    }

    /// Calls `tool`; dropping the future sends the server a cancellation.
    pub async fn call(
        &self,
        tool: &str,
        arguments: Map<String, Value>,
        timeout: Duration,
    ) -> Result<RemoteToolResult, ToolServerError> {
        let request = ClientRequest::CallToolRequest(CallToolRequest::new(
            CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments),
        ));
        let handle = self
            .peer
            .send_cancellable_request(request, PeerRequestOptions::with_timeout(timeout))
            .await
            .map_err(|e| self.failure(&e))?;
        let mut pending = CancelOnDrop {
            peer: handle.peer.clone(),
            id: Some(handle.id.clone()),
        };
        let answer = handle.await_response().await;
        pending.id = None;
        match answer.map_err(|e| self.failure(&e))? {
            ServerResult::CallToolResult(result) => Ok(convert::result(result)),
            _ => Err(ToolServerError::Failed(
                "the server answered the call with something else".into(),
            )),
        }
    }

    /// Maps an rmcp error, marking the connection dead when its transport broke.
    fn failure(&self, e: &ServiceError) -> ToolServerError {
        match e {
            ServiceError::Timeout { timeout } => ToolServerError::TimedOut(*timeout),
            ServiceError::TransportClosed | ServiceError::TransportSend(_) => {
                self.dead.store(true, Ordering::SeqCst);
                ToolServerError::Failed(format!("the connection to the server broke: {e}"))
            }
            other => ToolServerError::Failed(other.to_string()),
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop.cancel();
        }
    }
}

/// Tells the server to stop a call whose caller went away (the run was interrupted).
struct CancelOnDrop {
    peer: Peer<RoleClient>,
    /// `None` once the call has ended.
    id: Option<RequestId>,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        let Some(id) = self.id.take() else { return };
        let peer = self.peer.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let notice = CancelledNotificationParam::new(
                    Some(id),
                    Some("the agent's run was interrupted".to_owned()),
                );
                if let Err(e) = peer.notify_cancelled(notice).await {
                    tracing::debug!(error = %e, "MCP cancellation not delivered");
                }
            });
        }
    }
}
