//! Spawning the service for a test and talking to it.

use std::{collections::HashMap, net::SocketAddr, sync::Arc};

use agent_runtime::{app, config::Config};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

pub const TOKEN: &str = "test-token-0123456789";

/// A running service on a loopback port, stopped when dropped.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
}

impl TestApp {
    /// SQLite + in-process bus + local files in a fresh temp dir.
    pub async fn sqlite() -> Self {
        Self::with_vars(&[]).await
    }

    /// Starts with the given variables on top of an isolated SQLite/local-files default.
    pub async fn with_vars(extra: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut vars: HashMap<String, String> = HashMap::from([
            (
                "DATABASE_URL".into(),
                format!("sqlite://{}/runtime.db", dir.path().display()),
            ),
            ("STATE_STORE_PATH".into(), dir.path().display().to_string()),
            ("AUTH_TOKEN".into(), TOKEN.into()),
            ("MAX_BODY_BYTES".into(), "65536".into()),
        ]);
        for (k, v) in extra {
            vars.insert((*k).into(), (*v).into());
        }
        let config = Config::from_vars(vars).unwrap();
        let built = app::build(&config).await.unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(app::serve(built, listener, async {
            let _ = stopped.await;
        }));
        Self {
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
            dir,
            stop: Some(stop),
        }
    }

    /// A request with the right token.
    pub fn req(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
    }

    /// POSTs JSON with the token; returns status and parsed body.
    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        read(
            self.req(Method::POST, path)
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// GET /api/health: its 503 carries the health body, not the error shape.
    pub async fn health(&self) -> (StatusCode, Value) {
        let resp = self
            .client
            .get(format!("{}/api/health", self.base))
            .send()
            .await
            .unwrap();
        (resp.status(), resp.json().await.unwrap())
    }

    /// GETs with the token; returns status and parsed body.
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        read(self.req(Method::GET, path).send().await.unwrap()).await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Status and JSON body; panics when an error status comes without the JSON error shape.
pub async fn read(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    let content_type = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = resp.text().await.unwrap();
    let body: Value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{status}: body is not JSON ({e}): {text}"))
    };
    if !status.is_success() {
        assert!(
            content_type.starts_with("application/json"),
            "{status}: content-type {content_type}"
        );
        assert_error_shape(&body);
    }
    (status, body)
}

/// `{"error": snake_case, "message": non-empty, "details"?: object}` and nothing else.
pub fn assert_error_shape(body: &Value) {
    let obj = body
        .as_object()
        .unwrap_or_else(|| panic!("error body is not an object: {body}"));
    let code = obj["error"].as_str().unwrap();
    assert!(
        !code.is_empty() && code.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
        "{code}"
    );
    assert!(!obj["message"].as_str().unwrap().is_empty());
    for key in obj.keys() {
        assert!(
            ["error", "message", "details"].contains(&key.as_str()),
            "unexpected key {key}"
        );
    }
}

/// A minimal valid preset body.
pub fn preset_body(id: &str) -> Value {
    serde_json::json!({"preset_id": id, "name": format!("Preset {id}"), "model": {"name": "test:echo"}})
}

/// A TCP proxy in front of a server that a test can cut and restore, to simulate outages.
pub struct ChaosProxy {
    pub addr: SocketAddr,
    up: Arc<std::sync::atomic::AtomicBool>,
    conns: Arc<std::sync::Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl ChaosProxy {
    pub async fn start(target: SocketAddr) -> Self {
        use std::sync::atomic::Ordering;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let conns: Arc<std::sync::Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (up2, conns2) = (up.clone(), conns.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !up2.load(Ordering::SeqCst) {
                    continue; // dropped: the client sees the connection close
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                conns2.lock().unwrap().push(task);
            }
        });
        Self {
            addr,
            up,
            conns,
            accept,
        }
    }

    /// Drops every open connection and refuses new ones.
    pub fn cut(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        for task in self.conns.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    pub fn restore(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for ChaosProxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

/// A running (`created`) agent session of `conversation_id`, as the coordinator inserts it.
pub fn running_session(
    session_id: &str,
    conversation_id: &str,
    preset_id: Option<&str>,
) -> ports::SessionRecord {
    let at = ports::now();
    ports::SessionRecord {
        session_id: session_id.into(),
        parent_session_id: None,
        conversation_id: conversation_id.into(),
        session_type: ports::SessionType::Agent,
        transport: ports::Transport::Sse,
        spawned_by: None,
        preset_id: preset_id.map(Into::into),
        status: ports::SessionStatus::Created,
        run_summary: None,
        pending_tool_calls: vec![],
        error: None,
        created_at: at,
        updated_at: at,
    }
}

/// A new active conversation.
pub fn conversation(conversation_id: &str) -> ports::Conversation {
    let at = ports::now();
    ports::Conversation {
        conversation_id: conversation_id.into(),
        title: None,
        default_preset_id: None,
        status: ports::ConversationStatus::Active,
        created_at: at,
        updated_at: at,
    }
}
