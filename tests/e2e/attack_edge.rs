//! Attack: exhausting or confusing the HTTP edge of the real binary, without a token.
//!
//! Before the edge held: bodies were read before the token was checked, connections were
//! unlimited and never timed out (one held for more than 400 s), and hyper answered an
//! oversize or garbage head with an empty body. Each test below speaks raw HTTP/1.1 over
//! TCP, so it sends exactly the bytes of the attack, and waits a bounded time for the
//! server's move.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::served::{Served, TOKEN};

/// Long enough for a loaded machine; every wait below ends well before it when the server
/// behaves.
const BOUND: Duration = Duration::from_secs(15);

/// One response read off a raw connection.
#[derive(Debug)]
struct Reply {
    status: u16,
    head: String,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    fn json(&self) -> Value {
        assert!(
            self.header("content-type")
                .is_some_and(|t| t.starts_with("application/json")),
            "{self:?}"
        );
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {self:?}"))
    }

    /// Asserts the JSON error shape with `code`.
    fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{self:?}");
        let body = self.json();
        crate::support::assert_error_shape(&body);
        assert_eq!(body["error"], code, "{self:?}");
    }
}

/// Reads one response (head and Content-Length body) within [`BOUND`]; `None` when the
/// connection closed first.
async fn read_reply(conn: &mut TcpStream) -> Option<Reply> {
    // Byte by byte up to the end of the head, then exactly the body: a pipelined reply
    // that follows stays in the socket for the next call.
    tokio::time::timeout(BOUND, async {
        let mut got = Vec::new();
        let mut byte = [0u8; 1];
        while !got.ends_with(b"\r\n\r\n") {
            if conn.read(&mut byte).await.unwrap_or(0) == 0 {
                return None;
            }
            got.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&got).into_owned();
        let status = head.split_whitespace().nth(1)?.parse().ok()?;
        let reply = Reply {
            status,
            head,
            body: String::new(),
        };
        let len: usize = reply
            .header("content-length")
            .map_or(0, |v| v.parse().unwrap());
        let mut body = vec![0u8; len];
        conn.read_exact(&mut body).await.ok()?;
        let body = String::from_utf8_lossy(&body).into_owned();
        Some(Reply { body, ..reply })
    })
    .await
    .expect("no answer within the bound")
}

/// Waits (bounded) for the server to close `conn`; returns what it sent before.
async fn closed_by_server(conn: &mut TcpStream) -> Vec<u8> {
    let mut rest = Vec::new();
    tokio::time::timeout(BOUND, conn.read_to_end(&mut rest))
        .await
        .expect("the server kept the connection open")
        .unwrap_or_default();
    rest
}

async fn connect(svc: &Served) -> TcpStream {
    TcpStream::connect(svc.addr).await.unwrap()
}

async fn send(svc: &Served, bytes: &[u8]) -> TcpStream {
    let mut conn = connect(svc).await;
    conn.write_all(bytes).await.unwrap();
    conn
}

const HEALTH: &[u8] = b"GET /api/health HTTP/1.1\r\nHost: t\r\n\r\n";

#[tokio::test(flavor = "multi_thread")]
async fn an_unauthenticated_body_is_refused_before_it_is_sent() {
    let svc = Served::start(&[]);
    assert!(
        svc.addr.ip().is_loopback(),
        "binds to loopback by default: {}",
        svc.addr
    );
    for head in [
        // 10 MiB announced, nothing sent: an answer can only come before the body.
        "POST /api/presets/create HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 10485760\r\n\r\n",
        "POST /api/conversations/run HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer wrong\r\nContent-Length: 10485760\r\n\r\n",
        "POST /api/presets/create HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n",
    ] {
        let mut conn = send(&svc, head.as_bytes()).await;
        let reply = read_reply(&mut conn).await.expect("an answer");
        reply.assert_error(401, "unauthorized");
        assert_eq!(
            reply.header("www-authenticate"),
            Some("Bearer"),
            "{reply:?}"
        );
    }
    // With the token, the same announcement is a body to read (and over the cap).
    let head = format!(
        "POST /api/presets/create HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 10485761\r\n\r\n"
    );
    let mut conn = send(&svc, head.as_bytes()).await;
    read_reply(&mut conn)
        .await
        .expect("an answer")
        .assert_error(413, "payload_too_large");
}

#[tokio::test(flavor = "multi_thread")]
async fn silent_and_half_sent_heads_are_closed_after_the_header_timeout() {
    let svc = Served::start(&[("HEADER_READ_TIMEOUT_SECS", "1")]);
    let mut silent = connect(&svc).await;
    let mut half = send(&svc, b"GET /api/health HTTP/1.1\r\nHo").await;
    assert_eq!(
        closed_by_server(&mut silent).await,
        b"",
        "closed without a word"
    );
    let reply = read_reply(&mut half).await.expect("a 408");
    reply.assert_error(408, "request_timeout");
    assert_eq!(reply.header("connection"), Some("close"));
    assert_eq!(closed_by_server(&mut half).await, b"");
    // A head sent in time is served, on a connection opened as early.
    let mut prompt = send(&svc, HEALTH).await;
    assert_eq!(read_reply(&mut prompt).await.unwrap().status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_keep_alive_connection_is_closed() {
    let svc = Served::start(&[("IDLE_TIMEOUT_SECS", "1")]);
    let mut conn = send(&svc, HEALTH).await;
    let reply = read_reply(&mut conn).await.expect("health");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("connection"), None, "kept alive: {reply:?}");
    // Still usable right away …
    conn.write_all(HEALTH).await.unwrap();
    assert_eq!(read_reply(&mut conn).await.unwrap().status, 200);
    // … then closed once idle.
    assert_eq!(closed_by_server(&mut conn).await, b"");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_slower_than_the_body_timeout_is_408() {
    let svc = Served::start(&[("BODY_READ_TIMEOUT_SECS", "1")]);
    let head = format!(
        "POST /api/presets/create HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"preset_id\":"
    );
    let mut conn = send(&svc, head.as_bytes()).await;
    let reply = read_reply(&mut conn).await.expect("a 408");
    reply.assert_error(408, "request_timeout");
    assert_eq!(closed_by_server(&mut conn).await, b"");
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_past_max_connections_wait_unserved() {
    let svc = Served::start(&[("MAX_CONNECTIONS", "3"), ("IDLE_TIMEOUT_SECS", "120")]);
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut conn = send(&svc, HEALTH).await;
        assert_eq!(read_reply(&mut conn).await.unwrap().status, 200);
        held.push(conn);
    }
    let mut fourth = send(&svc, HEALTH).await;
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_secs(1), fourth.read(&mut byte)).await;
    assert!(
        early.is_err(),
        "the fourth connection was served: {early:?}"
    );
    drop(held.pop());
    assert_eq!(
        read_reply(&mut fourth).await.unwrap().status,
        200,
        "served once a slot is free"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn heads_the_http_library_would_refuse_are_answered_in_json() {
    let svc = Served::start(&[]);
    let big_headers = format!(
        "GET /api/health HTTP/1.1\r\nHost: t\r\n{}\r\n",
        (0..70)
            .map(|i| format!("x-pad-{i}: {}\r\n", "a".repeat(1000)))
            .collect::<String>()
    );
    let long_uri = format!(
        "GET /api/{} HTTP/1.1\r\nHost: t\r\n\r\n",
        "a".repeat(20 * 1024)
    );
    let many_lines = format!(
        "GET /api/health HTTP/1.1\r\n{}\r\n",
        (0..150).map(|i| format!("h{i}: v\r\n")).collect::<String>()
    );
    for (bytes, status, code) in [
        (big_headers.as_bytes(), 431, "headers_too_large"),
        (many_lines.as_bytes(), 431, "headers_too_large"),
        (long_uri.as_bytes(), 414, "uri_too_long"),
        (&b"GARBAGE\r\n\r\n"[..], 400, "malformed_request"),
        (
            b"GET / HTTP/1.1\r\nno colon here\r\n\r\n",
            400,
            "malformed_request",
        ),
        (
            b"POST /api/presets/create HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            400,
            "malformed_request",
        ),
    ] {
        let mut conn = send(&svc, bytes).await;
        let reply = read_reply(&mut conn).await.expect("an answer");
        reply.assert_error(status, code);
        assert_eq!(
            closed_by_server(&mut conn).await,
            b"",
            "{code}: closed after"
        );
    }
    // A refusal after a good request on the same connection comes after its answer.
    let mut conn = send(&svc, &[HEALTH, b"GARBAGE\r\n\r\n"].concat()).await;
    assert_eq!(read_reply(&mut conn).await.unwrap().status, 200);
    read_reply(&mut conn)
        .await
        .expect("the refusal")
        .assert_error(400, "malformed_request");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_stream_outlives_the_idle_and_header_timeouts() {
    let svc = Served::start(&[
        ("IDLE_TIMEOUT_SECS", "1"),
        ("HEADER_READ_TIMEOUT_SECS", "1"),
    ]);
    svc.create_preset(json!({
        "preset_id": "sleeper", "name": "Sleeper", "model": {"name": "test:call:shell"},
        "toolsets": [{"toolset_name": "shell"}]
    }))
    .await;
    let args = json!({"command": "sleep 3 && echo woke-up"}).to_string();
    let run = json!({"preset_id": "sleeper", "input": [{"type": "text", "text": args}]});
    let resp = svc
        .req(Method::POST, "/api/conversations/run/stream")
        .json(&run)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let stream = tokio::time::timeout(BOUND, resp.text())
        .await
        .expect("the run ended")
        .unwrap();
    assert!(stream.contains("woke-up"), "{stream}");
    let last = stream
        .trim_end()
        .lines()
        .rev()
        .find(|l| l.starts_with("event:"))
        .unwrap();
    assert_eq!(last, "event: run_completed", "{stream}");
}
