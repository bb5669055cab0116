//! Spawning the service for a test and talking to it.

use std::{collections::HashMap, net::SocketAddr, sync::Arc};

use adapters::testing::{PgSchema, skip_or_fail};
use agent_runtime::{app, config::Config};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

pub const TOKEN: &str = "test-token-0123456789";

/// The service binary: in-process apps run their shell sandbox helper from it (the test
/// binary itself cannot serve as the helper).
pub const SANDBOX_HELPER: &str = env!("CARGO_BIN_EXE_agent-runtime");

/// A running service on a loopback port, stopped when dropped.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    /// The PostgreSQL schema of a [`Backend::PgRedis`] app, dropped after the app stops.
    schema: Option<PgSchema>,
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
            (
                "STATE_STORE_PATH".into(),
                dir.path().join("state").display().to_string(),
            ),
            (
                "WORKSPACE_ROOT".into(),
                dir.path().join("workspace").display().to_string(),
            ),
            ("SANDBOX_HELPER".into(), SANDBOX_HELPER.into()),
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
            schema: None,
        }
    }

    /// A GET without credentials, as a browser or a signed-out page sends it.
    pub async fn get_open(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
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

/// A run event frame's data: the envelope's fields, matching its `event:` and `id:`.
fn assert_run_event(data: &Value, event: &str, id: &str, frame: &str) {
    for key in [
        "event_id",
        "event_type",
        "session_id",
        "agent_id",
        "timestamp",
        "payload",
    ] {
        assert!(data.get(key).is_some(), "no {key} in {data}");
    }
    assert_eq!(data["event_type"], event, "{frame:?}");
    assert_eq!(data["event_id"].to_string(), id, "{frame:?}");
    assert!(data["payload"].is_object(), "{data}");
    assert!(!data["agent_id"].as_str().unwrap().is_empty(), "{data}");
    let timestamp = data["timestamp"].as_str().unwrap();
    chrono::DateTime::parse_from_rfc3339(timestamp)
        .unwrap_or_else(|e| panic!("timestamp {timestamp}: {e}"));
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

/// `url` with its `host:port` replaced by `addr`.
pub fn via(url: &str, addr: SocketAddr) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (userinfo, after) = match rest.split_once('@') {
        Some((user, after)) => (format!("{user}@"), after),
        None => (String::new(), rest),
    };
    let path = after.find('/').map(|i| &after[i..]).unwrap_or("");
    format!("{scheme}://{userinfo}{addr}{path}")
}

pub fn target_of(url: &str) -> SocketAddr {
    // The default port is PostgreSQL's: Redis URLs in tests always name theirs.
    let rest = url.split_once("://").unwrap().1;
    let after = rest.split_once('@').map(|(_, a)| a).unwrap_or(rest);
    let hostport = after.split('/').next().unwrap();
    let hostport = if hostport.contains(':') {
        hostport.to_owned()
    } else {
        format!("{hostport}:5432")
    };
    std::net::ToSocketAddrs::to_socket_addrs(&hostport.replace("localhost", "127.0.0.1"))
        .unwrap()
        .next()
        .unwrap()
}

/// A running (`created`) agent session of `conversation_id`, as the run engine inserts it.
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
        kind: ports::SessionKind::Agent,
        transport: ports::Transport::Sse,
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
        metadata: ports::Metadata::new(),
    }
}

// ---------------------------------------------------------------------------------------
// The run API's end-to-end tests: both backends, the mock LLM, an SSE client, polling.
// ---------------------------------------------------------------------------------------

/// Where a [`TestApp`] keeps its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite + in-process event bus + local files (the [`TestApp::with_vars`] default).
    Local,
    /// PostgreSQL (a fresh schema on `TEST_DATABASE_URL`) + Redis (`TEST_REDIS_URL`).
    PgRedis,
    /// [`Backend::PgRedis`] on the TLS-only servers of `tests/tls/start.sh`:
    /// `sslmode=verify-full` and `rediss://`, both trusting the test CA.
    PgRedisTls,
}

/// The Redis the PostgreSQL + Redis backend uses.
pub fn test_redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// `Some(())` when Redis accepts connections; otherwise skip (or fail under
/// `REQUIRE_SERVICES=1`).
pub async fn redis_available() -> Option<()> {
    let url = test_redis_url();
    let hostport = url
        .trim_start_matches("redis://")
        .rsplit('@')
        .next()
        .unwrap_or_default()
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    match tokio::net::TcpStream::connect(&hostport).await {
        Ok(_) => Some(()),
        Err(e) => skip_or_fail("e2e redis", &format!("{url}: {e}")),
    }
}

impl TestApp {
    /// Starts on `backend` with `extra` variables on top; `None` only when the backend's
    /// servers are unreachable and the test should be skipped.
    pub async fn start(backend: Backend, extra: &[(&str, &str)]) -> Option<Self> {
        match backend {
            Backend::Local => Some(Self::with_vars(extra).await),
            Backend::PgRedis => {
                let schema = PgSchema::create("e2e_runs").await?;
                redis_available().await?;
                let redis = test_redis_url();
                let mut vars: Vec<(&str, &str)> =
                    vec![("DATABASE_URL", &schema.url), ("REDIS_URL", &redis)];
                vars.extend_from_slice(extra);
                let mut app = Self::with_vars(&vars).await;
                app.schema = Some(schema);
                Some(app)
            }
            Backend::PgRedisTls => {
                let schema = PgSchema::create_tls("e2e_tls").await?;
                let (Ok(redis), Ok(ca)) = (
                    std::env::var("TEST_REDIS_TLS_URL"),
                    std::env::var("TEST_TLS_CA"),
                ) else {
                    return skip_or_fail("e2e redis over TLS", "TEST_REDIS_TLS_URL is not set");
                };
                let mut vars: Vec<(&str, &str)> = vec![
                    ("DATABASE_URL", &schema.url),
                    ("REDIS_URL", &redis),
                    ("REDIS_CA_FILE", &ca),
                ];
                vars.extend_from_slice(extra);
                let mut app = Self::with_vars(&vars).await;
                app.schema = Some(schema);
                Some(app)
            }
        }
    }

    /// Opens a streaming request: `body` is POSTed as JSON when given (else GET), and
    /// `last_event_id` goes into the `Last-Event-ID` header.
    pub async fn open(
        &self,
        path: &str,
        body: Option<&Value>,
        last_event_id: Option<u64>,
    ) -> reqwest::Response {
        let mut req = match body {
            Some(body) => self.req(Method::POST, path).json(body),
            None => self.req(Method::GET, path),
        };
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id.to_string());
        }
        req.send().await.unwrap()
    }

    /// `POST /api/conversations/run/stream`: the event stream.
    pub async fn run_sse(&self, body: Value) -> SseStream {
        SseStream::new(
            self.open("/api/conversations/run/stream", Some(&body), None)
                .await,
        )
        .await
    }

    /// `POST /api/conversations/run`: the 202 body `{session_id, conversation_id,
    /// stream_key}`.
    pub async fn run_stream(&self, body: Value) -> Value {
        let (status, accepted) = self.post("/api/conversations/run", body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
        accepted
    }

    /// Attaches to `path` (an events endpoint), optionally after `Last-Event-ID`.
    pub async fn attach(&self, path: &str, last_event_id: Option<u64>) -> SseStream {
        SseStream::new(self.open(path, None, last_event_id).await).await
    }

    /// `GET /api/sessions/{id}/get` with its display messages.
    pub async fn session(&self, session_id: &str) -> Value {
        let (status, body) = self.get(&format!("/api/sessions/{session_id}/get")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// `GET /api/sessions/{id}/status`'s status.
    pub async fn status(&self, session_id: &str) -> String {
        let (status, body) = self
            .get(&format!("/api/sessions/{session_id}/status"))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["status"].as_str().unwrap().to_owned()
    }

    /// Polls the session's status until it is no longer `executing`; returns it.
    pub async fn wait_finished(&self, session_id: &str) -> String {
        eventually("the session to finish", move || async move {
            let status = self.status(session_id).await;
            (status != "executing").then_some(status)
        })
        .await
    }

    /// `POST /api/conversations/{id}/archive`, which must succeed; the archived
    /// conversation.
    pub async fn archive(&self, conversation_id: &str) -> Value {
        let (status, body) = self
            .post(
                &format!("/api/conversations/{conversation_id}/archive"),
                serde_json::json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// The ids of a conversation's sessions, oldest first.
    pub async fn session_ids(&self, conversation_id: &str) -> Vec<String> {
        let (status, body) = self
            .get(&format!("/api/conversations/{conversation_id}/sessions"))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["session_id"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// How long any single wait of these tests may take before it counts as a hang. Generous:
/// it only turns a hang into a failure.
pub const HANG: std::time::Duration = std::time::Duration::from_secs(60);

/// Polls `check` every 50 ms until it yields a value; panics after [`HANG`].
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + HANG;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// One SSE frame of a run: `event:`, `id:` and the `data:` envelope, already checked to
/// agree with each other and to have the envelope's fields.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    pub event: String,
    pub id: u64,
    pub data: Value,
}

impl SseEvent {
    pub fn payload(&self) -> &Value {
        &self.data["payload"]
    }

    pub fn is(&self, event_type: &str) -> bool {
        self.event == event_type
    }

    pub fn is_terminal(&self) -> bool {
        self.is("run_completed") || self.is("run_failed")
    }
}

/// A `text/event-stream` response read frame by frame. Dropping it closes the connection
/// (a client disconnect).
pub struct SseStream {
    body: futures::stream::BoxStream<'static, reqwest::Result<Vec<u8>>>,
    buf: Vec<u8>,
}

impl SseStream {
    /// Checks the response is a 200 event stream and starts reading it.
    pub async fn new(resp: reqwest::Response) -> Self {
        use futures::StreamExt;
        let status = resp.status();
        let content_type = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        if status != StatusCode::OK {
            let text = resp.text().await.unwrap_or_default();
            panic!("expected an event stream, got {status}: {text}");
        }
        assert!(
            content_type.starts_with("text/event-stream"),
            "content-type {content_type}"
        );
        Self {
            body: resp
                .bytes_stream()
                .map(|chunk| chunk.map(|b| b.to_vec()))
                .boxed(),
            buf: Vec::new(),
        }
    }

    /// The next event; `None` when the server closed the stream. Panics after [`HANG`].
    pub async fn next(&mut self) -> Option<SseEvent> {
        tokio::time::timeout(HANG, self.next_inner())
            .await
            .expect("no SSE event within the hang timeout")
    }

    async fn next_inner(&mut self) -> Option<SseEvent> {
        use futures::StreamExt;
        loop {
            if let Some(frame) = self.take_frame() {
                if let Some(event) = parse_frame(&frame) {
                    return Some(event);
                }
                continue; // a comment (keep-alive) only
            }
            match self.body.next().await {
                Some(chunk) => {
                    let chunk = chunk.expect("the event stream broke");
                    self.buf.extend(chunk.into_iter().filter(|b| *b != b'\r'));
                }
                None => {
                    let rest = String::from_utf8(std::mem::take(&mut self.buf)).unwrap();
                    assert!(rest.trim().is_empty(), "unterminated frame {rest:?}");
                    return None;
                }
            }
        }
    }

    fn take_frame(&mut self) -> Option<String> {
        let end = self.buf.windows(2).position(|w| w == b"\n\n")?;
        let frame: Vec<u8> = self.buf.drain(..end + 2).collect();
        Some(String::from_utf8(frame).unwrap())
    }

    /// Every remaining event, until the server closes the stream.
    pub async fn all(mut self) -> Vec<SseEvent> {
        let mut out = Vec::new();
        while let Some(event) = self.next().await {
            out.push(event);
        }
        out
    }

    /// Events up to and including the first one matching `pred`; panics when the stream
    /// ends first. The stream stays open.
    pub async fn until(&mut self, pred: impl Fn(&SseEvent) -> bool) -> Vec<SseEvent> {
        let mut out = Vec::new();
        loop {
            let event = self
                .next()
                .await
                .unwrap_or_else(|| panic!("the stream ended first: {}", types(&out)));
            let hit = pred(&event);
            out.push(event);
            if hit {
                return out;
            }
        }
    }
}

/// Parses one frame; `None` for a frame of comments only. Every `data:` must be a JSON
/// envelope whose `event_type` and `event_id` match the `event:` and `id:` lines.
fn parse_frame(frame: &str) -> Option<SseEvent> {
    let (mut event, mut id, mut data) = (None, None, Vec::new());
    for line in frame
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with(':'))
    {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => event = Some(value.to_owned()),
            "id" => id = Some(value.to_owned()),
            "data" => data.push(value.to_owned()),
            "retry" => {}
            other => panic!("unknown SSE field {other:?} in {frame:?}"),
        }
    }
    if event.is_none() && id.is_none() && data.is_empty() {
        return None;
    }
    let data: Value = serde_json::from_str(&data.join("\n"))
        .unwrap_or_else(|e| panic!("data is not JSON ({e}): {frame:?}"));
    let event = event.unwrap_or_else(|| panic!("no event: line in {frame:?}"));
    let id = id.unwrap_or_else(|| panic!("no id: line in {frame:?}"));
    if data.get("kind").is_some() {
        // A notification: `event:` is its kind, `id:` its id.
        assert_eq!(data["kind"], event.as_str(), "{frame:?}");
        assert_eq!(data["id"].to_string(), id, "{frame:?}");
    } else {
        assert_run_event(&data, &event, &id, frame);
    }
    Some(SseEvent {
        event,
        id: id.parse().unwrap(),
        data,
    })
}

/// The event types, for failure messages.
pub fn types(events: &[SseEvent]) -> String {
    events
        .iter()
        .map(|e| format!("{}:{}", e.id, e.event))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One run's events as a consumer must see them: ids `first, first+1, …` without gaps, all
/// of `session_id`, and exactly one terminal event, the last.
pub fn assert_run_stream(events: &[SseEvent], session_id: &str, first: u64) {
    assert!(!events.is_empty(), "no events");
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.id, first + i as u64, "gap or reorder: {}", types(events));
        assert_eq!(e.data["session_id"], session_id, "{}", e.data);
    }
    let terminals = events.iter().filter(|e| e.is_terminal()).count();
    assert_eq!(terminals, 1, "terminal events: {}", types(events));
    assert!(
        events.last().unwrap().is_terminal(),
        "the terminal event is not last: {}",
        types(events)
    );
}

/// The concatenated text deltas of the main agent.
pub fn text_of(events: &[SseEvent]) -> String {
    events
        .iter()
        .filter(|e| e.is("content_delta") && e.payload()["kind"] == "text")
        .map(|e| e.payload()["delta"].as_str().unwrap())
        .collect()
}

/// The position of the first event of `event_type`; panics when there is none.
pub fn position(events: &[SseEvent], event_type: &str) -> usize {
    events
        .iter()
        .position(|e| e.is(event_type))
        .unwrap_or_else(|| panic!("no {event_type} in {}", types(events)))
}

/// A `[{"type":"text","text":…}]` input.
pub fn text_input(text: &str) -> Value {
    serde_json::json!([{"type": "text", "text": text}])
}

/// The preset of [`MockApp`]: the mock's OpenAI-compatible model with the shell toolset.
pub const MOCK_PRESET: &str = "mock";

/// A [`TestApp`] whose `openai:` and `anthropic:` providers are a [`mock_llm::MockLlm`], with preset
/// [`MOCK_PRESET`] working in `work`. When it is dropped at the end of a passing test, it
/// fails the test if any model request broke a history invariant (the mock answered it
/// 400, which a test expecting a failed run could otherwise take for its own failure).
pub struct MockApp {
    pub app: TestApp,
    pub mock: mock_llm::MockLlm,
    /// The preset's `environment.default_path`: where shell commands run.
    pub work: std::path::PathBuf,
    /// Set by [`MockApp::breaks_history_on_purpose`].
    broken_on_purpose: bool,
}

impl Drop for MockApp {
    fn drop(&mut self) {
        if self.broken_on_purpose || std::thread::panicking() {
            return;
        }
        let broken = self.mock.violations();
        assert!(
            broken.is_empty(),
            "model requests broke history invariants: {broken:#?}"
        );
    }
}

impl std::ops::Deref for MockApp {
    type Target = TestApp;

    fn deref(&self) -> &TestApp {
        &self.app
    }
}

impl MockApp {
    pub async fn start(backend: Backend, extra: &[(&str, &str)]) -> Option<Self> {
        let mock = mock_llm::MockLlm::start().await;
        let base_url = mock.base_url();
        // Both providers point at the mock, which speaks both formats.
        let mut vars: Vec<(&str, &str)> = vec![
            ("OPENAI_API_KEY", "k"),
            ("OPENAI_BASE_URL", &base_url),
            ("ANTHROPIC_API_KEY", "k"),
            ("ANTHROPIC_BASE_URL", &base_url),
        ];
        vars.extend_from_slice(extra);
        let app = TestApp::start(backend, &vars).await?;
        let work = app.dir.path().join("work");
        std::fs::create_dir_all(&work).unwrap();
        let (status, body) = app
            .post(
                "/api/presets/create",
                mock_preset(&work.display().to_string()),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        Some(Self {
            app,
            mock,
            work,
            broken_on_purpose: false,
        })
    }

    /// For a test that makes the runtime send a broken history on purpose: dropping the
    /// app then does not fail the test.
    pub fn breaks_history_on_purpose(&mut self) {
        self.broken_on_purpose = true;
    }

    /// A run body for a new conversation on the mock preset.
    pub fn new_run(&self, text: &str) -> Value {
        serde_json::json!({"preset_id": MOCK_PRESET, "input": text_input(text)})
    }
}

/// The body creating [`MOCK_PRESET`] with `default_path`.
pub fn mock_preset(default_path: &str) -> Value {
    serde_json::json!({
        "preset_id": MOCK_PRESET,
        "name": "Mock",
        "model": {"name": "openai:gpt-test"},
        "system_prompt": "You are a test agent.",
        "toolsets": [{"toolset_name": "shell"}],
        "environment": {"default_path": default_path}
    })
}

/// A model turn calling the `shell` tool with `command`.
pub fn shell_call(id: &str, command: &str) -> mock_llm::Script {
    let args = serde_json::json!({"command": command}).to_string();
    mock_llm::Script::new().tool_call(0, id, "shell", &[&args])
}

/// A shell command that blocks until the file `name` appears in the working directory
/// (bounded, so a failed test leaves nothing running for long): a deterministic way to
/// keep a run going until the test lets it go on.
pub fn gate_command(name: &str) -> String {
    format!(
        "for i in $(seq 1 1200); do [ -e {name} ] && break; sleep 0.05; done; echo gate {name} open"
    )
}

/// Lets a [`gate_command`] go on.
pub fn open_gate(work: &std::path::Path, name: &str) {
    std::fs::write(work.join(name), b"go").unwrap();
}

/// A model request's chat messages as (role, text): string contents as they are, part
/// arrays as their text parts joined.
pub fn chat(request: &mock_llm::RecordedRequest) -> Vec<(String, String)> {
    request.body["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("no messages in {}", request.body))
        .iter()
        .map(|m| {
            let text = match &m["content"] {
                Value::String(s) => s.clone(),
                Value::Array(parts) => parts
                    .iter()
                    .filter_map(|p| p["text"].as_str())
                    .collect::<Vec<_>>()
                    .join(""),
                _ => String::new(),
            };
            (m["role"].as_str().unwrap().to_owned(), text)
        })
        .collect()
}

/// The chat messages without the system prompt.
pub fn dialogue(request: &mock_llm::RecordedRequest) -> Vec<(String, String)> {
    chat(request)
        .into_iter()
        .filter(|(role, _)| role != "system")
        .collect()
}

/// `(role, text)` pairs, for comparing with [`dialogue`].
pub fn turns(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(r, t)| ((*r).to_owned(), (*t).to_owned()))
        .collect()
}

/// Whether `/proc/<pid>` shows a live process (missing or a zombie counts as gone).
pub fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        // `pid (comm) S …`: the state follows the last `)`.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
    }
}

/// Runs each listed `async fn(MockApp)` of the calling module as two tests, in modules
/// `local` (SQLite + in-process bus) and `pg_redis`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod local {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $name() {
                    let backend = $crate::support::Backend::Local;
                    if let Some(app) = $crate::support::MockApp::start(backend, &[]).await {
                        super::$name(app).await;
                    }
                }
            )*
        }
        mod pg_redis {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $name() {
                    let backend = $crate::support::Backend::PgRedis;
                    if let Some(app) = $crate::support::MockApp::start(backend, &[]).await {
                        super::$name(app).await;
                    }
                }
            )*
        }
    };
}
pub(crate) use on_both_backends;

/// What health reports for the shell sandbox on this kernel.
pub fn sandbox_status() -> &'static str {
    if adapters::shell::sandbox::landlock_available() {
        "available"
    } else {
        "unavailable"
    }
}

/// A run body on `preset` whose built-in `test:call:<tool>` model calls `tool` once with
/// `args`.
pub fn call_body(preset: &str, tool: &str, args: &Value) -> Value {
    serde_json::json!({
        "preset_id": preset,
        "config_override": {"model": {"name": format!("test:call:{tool}")}},
        "input": text_input(&args.to_string())
    })
}

/// The first `tool_call_result` of a run: its output and whether it is an error.
pub fn tool_result(events: &[SseEvent]) -> (String, bool) {
    let result = events
        .iter()
        .find(|e| e.is("tool_call_result"))
        .unwrap_or_else(|| panic!("no tool result: {}", types(events)));
    let payload = result.payload();
    (
        payload["output"].as_str().unwrap().to_owned(),
        payload["is_error"].as_bool().unwrap(),
    )
}

/// Runs `tool` once with `args` through the built-in `test:call:<tool>` model on `preset`:
/// the `tool_call_result` payload's output and whether it is an error.
pub async fn call_tool(app: &TestApp, preset: &str, tool: &str, args: Value) -> (String, bool) {
    let events = app
        .run_sse(call_body(preset, tool, &args))
        .await
        .all()
        .await;
    tool_result(&events)
}

/// One HTTP/1.1 request read by a test's stand-in server: the request line's target, the
/// head (lower-case) and the body (by Content-Length).
pub async fn read_http_request(
    socket: &mut tokio::net::TcpStream,
) -> Option<(String, String, String)> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let end = loop {
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = tokio::io::AsyncReadExt::read(socket, &mut buf)
            .await
            .ok()
            .filter(|n| *n > 0)?;
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
    let target = String::from_utf8_lossy(&data[..end])
        .split_whitespace()
        .nth(1)?
        .to_owned();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while data.len() < end + length {
        let n = tokio::io::AsyncReadExt::read(socket, &mut buf)
            .await
            .ok()
            .filter(|n| *n > 0)?;
        data.extend_from_slice(&buf[..n]);
    }
    let body = String::from_utf8_lossy(&data[end..end + length]).into_owned();
    Some((target, head, body))
}
