//! A crash mid-run (spec 01, startup recovery): the built binary is killed with SIGKILL while
//! a run streams, restarted on the same database and state store, and the orphaned session
//! is `failed` while the conversation takes new runs.

use std::{
    io::{BufRead, BufReader, Read},
    path::Path,
    process::{Child, Command, Stdio},
};

use adapters::testing::PgSchema;
use mock_llm::{MockLlm, Script};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{
    Backend, SseStream, TOKEN, assert_run_stream, mock_preset, read, redis_available,
    test_redis_url, text_input, types,
};

const BIN: &str = env!("CARGO_BIN_EXE_agent-runtime");

/// The binary, started with exactly `env`; killed when dropped.
pub(crate) struct Service {
    pub(crate) child: Child,
    base: String,
    client: reqwest::Client,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Service {
    /// Starts the binary and waits for its `listening on` line; its log goes to `log`.
    pub(crate) fn start(dir: &Path, env: &[(String, String)], log: &Path) -> Self {
        Self::start_as(dir, env, log, None)
    }

    /// Like [`Service::start`], as user and group `uid` when given (a service without
    /// root's capabilities).
    pub(crate) fn start_as(
        dir: &Path,
        env: &[(String, String)],
        log: &Path,
        uid: Option<u32>,
    ) -> Self {
        Self::start_with(dir, env, log, uid, &[])
    }

    /// Like [`Service::start_as`], with command-line arguments.
    pub(crate) fn start_with(
        dir: &Path,
        env: &[(String, String)],
        log: &Path,
        uid: Option<u32>,
        args: &[&str],
    ) -> Self {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .current_dir(dir)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).unwrap());
        if let Some(uid) = uid {
            use std::os::unix::process::CommandExt;
            command.uid(uid).gid(uid);
        }
        let mut child = command.spawn().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| {
                panic!(
                    "unexpected first line {line:?}; log: {}",
                    std::fs::read_to_string(log).unwrap_or_default()
                )
            })
            .to_owned();
        // Keep draining stdout so the service never writes into a closed pipe.
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut stdout.by_ref(), &mut std::io::sink());
        });
        Self {
            child,
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
        }
    }

    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    fn req(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
    }

    pub(crate) async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        read(
            self.req(Method::POST, path)
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub(crate) async fn get(&self, path: &str) -> (StatusCode, Value) {
        read(self.req(Method::GET, path).send().await.unwrap()).await
    }

    pub(crate) async fn sse(&self, method: Method, path: &str, body: Option<Value>) -> SseStream {
        let mut req = self.req(method, path);
        if let Some(body) = body {
            req = req.json(&body);
        }
        SseStream::new(req.send().await.unwrap()).await
    }
}

/// SIGKILL mid-run, restart, and the session is `failed` with the reason; the
/// conversation takes a new run that commits.
async fn sigkill_mid_run(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let mock = MockLlm::start().await;
    let mut env: Vec<(String, String)> = [
        ("HOST", "127.0.0.1".to_owned()),
        ("PORT", "0".to_owned()),
        ("AUTH_TOKEN", TOKEN.to_owned()),
        (
            "STATE_STORE_PATH",
            dir.path().join("state").display().to_string(),
        ),
        ("OPENAI_API_KEY", "k".to_owned()),
        ("OPENAI_BASE_URL", mock.base_url()),
        ("SHUTDOWN_GRACE_SECS", "1".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let _schema: Option<PgSchema> = match backend {
        Backend::Local => {
            env.push((
                "DATABASE_URL".into(),
                format!("sqlite://{}/runtime.db", dir.path().display()),
            ));
            None
        }
        Backend::PgRedis => {
            let Some(schema) = PgSchema::create("e2e_crash").await else {
                return;
            };
            let Some(()) = redis_available().await else {
                return;
            };
            env.push(("DATABASE_URL".into(), schema.url.clone()));
            env.push(("REDIS_URL".into(), test_redis_url()));
            Some(schema)
        }
        Backend::PgRedisTls => unreachable!("the crash test runs on Local and PgRedis"),
    };

    let first = Service::start(dir.path(), &env, &dir.path().join("first.log"));
    let (status, body) = first
        .post(
            "/api/presets/create",
            mock_preset(&work.display().to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    mock.push(Script::new().text_deltas(&["Working ", "on it"]).hang());
    let (status, accepted) = first
        .post(
            "/api/conversations/run",
            json!({"preset_id": "mock", "input": text_input("Crash me")}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    let session = accepted["session_id"].as_str().unwrap().to_owned();
    let conversation = accepted["conversation_id"].as_str().unwrap().to_owned();
    let mut events = first
        .sse(
            Method::GET,
            &format!("/api/sessions/{session}/events"),
            None,
        )
        .await;
    events
        .until(|e| e.is("content_delta") && e.payload()["delta"] == "on it")
        .await;
    let (_, status_body) = first.get(&format!("/api/sessions/{session}/status")).await;
    assert_eq!(status_body["status"], "executing");

    let mut first = first;
    first.child.kill().unwrap(); // SIGKILL
    first.child.wait().unwrap();
    drop(events);
    drop(first);

    let second = Service::start(dir.path(), &env, &dir.path().join("second.log"));
    let (status, body) = second.get(&format!("/api/sessions/{session}/status")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "failed", "{body}");
    let (status, stored) = second.get(&format!("/api/sessions/{session}/get")).await;
    assert_eq!(status, StatusCode::OK, "{stored}");
    assert_eq!(stored["status"], "failed");
    let error = stored["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error: {stored}"));
    assert!(error.contains("service stopped"), "{error}");
    assert!(stored["display_messages"].is_array(), "{stored}");
    let (_, detail) = second
        .get(&format!("/api/conversations/{conversation}/get"))
        .await;
    assert!(detail.get("active_session").is_none(), "{detail}");
    assert_eq!(
        detail["latest_session"],
        json!({"session_id": session, "status": "failed"})
    );
    // Nothing runs it any more: control is 404.
    let (status, body) = second
        .post(&format!("/api/sessions/{session}/interrupt"), json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    mock.push(Script::text("Back again.", 2));
    let events = second
        .sse(
            Method::POST,
            "/api/conversations/run/stream",
            Some(json!({"conversation_id": conversation, "input": text_input("Are you back?")})),
        )
        .await
        .all()
        .await;
    let next = events[0].data["session_id"].as_str().unwrap().to_owned();
    assert_run_stream(&events, &next, 1);
    let terminal = events.last().unwrap();
    assert!(terminal.is("run_completed"), "{}", types(&events));
    assert_eq!(terminal.payload()["status"], "committed");
    assert!(
        events[0].payload().get("parent_session_id").is_none(),
        "a failed session is not continued: {}",
        events[0].data
    );
    let (_, stored) = second.get(&format!("/api/sessions/{next}/get")).await;
    assert_eq!(stored["status"], "committed");
    assert_eq!(stored["conversation_id"], conversation.as_str());
    // Checked last, after everything else passed. Its events: gone, or (a bus that
    // outlived the crash) a stream that ends with exactly one terminal event, whole from
    // the start and from any cursor. (The forwarder batches, so the bus may hold fewer
    // events than a live reader saw before the crash.)
    let path = format!("/api/sessions/{session}/events");
    let resp = second.req(Method::GET, &path).send().await.unwrap();
    if resp.status() == StatusCode::GONE {
        assert_eq!(read(resp).await.1["error"], "gone");
    } else {
        let replayed = SseStream::new(resp).await.all().await;
        assert_run_stream(&replayed, &session, 1);
        let terminal = replayed.last().unwrap();
        assert!(terminal.is("run_failed"), "{}", types(&replayed));
        assert_eq!(terminal.payload()["code"], "service_stopped");
        let cursor = terminal.id - 1;
        let resp = second
            .req(Method::GET, &format!("{path}?last_event_id={cursor}"))
            .send()
            .await
            .unwrap();
        let tail = SseStream::new(resp).await.all().await;
        assert_run_stream(&tail, &session, cursor + 1);
        assert_eq!(tail.len(), 1, "{}", types(&tail));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_mid_run_local() {
    sigkill_mid_run(Backend::Local).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_mid_run_pg_redis() {
    sigkill_mid_run(Backend::PgRedis).await;
}
