//! Attack: server-side request forgery through `url` input parts, against the real binary.
//!
//! A caller (or a prompt-injected model, later through web tools) names a URL and the
//! service fetches it into the agent's directory. Loopback in every spelling, the service
//! itself, a metadata endpoint and a redirect from an allowed server to a refused one must
//! all be refused before a session exists, without the target ever seeing a request, and
//! with one error text for every failure, so the answer cannot tell a closed port from a
//! 401 (a port scanner). A destination the admin allowed still works.

use std::sync::{Arc, Mutex};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use crate::served::Served;

const CANARY_LOOPBACK: &str = "CANARY-loopback-7f3a9c";
const CANARY_REDIRECTED: &str = "CANARY-redirected-51be07";
const CANARY_UNAUTHORIZED: &str = "CANARY-unauthorized-c4d2e8";
const ALLOWED_BODY: &str = "allowed content";

/// A loopback HTTP server recording the target of every request it reads.
struct Canary {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Canary {
    /// Serves `body` on every path, plus `/redir` (302 to `redirect_to`), `/private` (401)
    /// and `/ok.txt` (the allowed content). Also listens on `[::1]` at the same port when
    /// it is free, so an IPv6 loopback spelling would reach it too.
    async fn start(body: &'static str, redirect_to: Option<String>) -> Self {
        let v4 = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = v4.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut listeners = vec![v4];
        if let Ok(v6) = TcpListener::bind(("::1", port)).await {
            listeners.push(v6);
        }
        for listener in listeners {
            let seen = seen.clone();
            let redirect_to = redirect_to.clone();
            tokio::spawn(async move {
                while let Ok((socket, _)) = listener.accept().await {
                    tokio::spawn(answer(socket, body, redirect_to.clone(), seen.clone()));
                }
            });
        }
        Self { port, seen }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

async fn answer(
    mut socket: TcpStream,
    body: &'static str,
    redirect_to: Option<String>,
    seen: Arc<Mutex<Vec<String>>>,
) {
    let Some((target, _, _)) = crate::support::read_http_request(&mut socket).await else {
        return;
    };
    seen.lock().unwrap().push(target.clone());
    let (status, extra, body) = match (target.as_str(), &redirect_to) {
        ("/redir", Some(to)) => ("302 Found", format!("Location: {to}\r\n"), ""),
        ("/private", _) => (
            "401 Unauthorized",
            "WWW-Authenticate: Basic\r\n".to_owned(),
            CANARY_UNAUTHORIZED,
        ),
        ("/ok.txt", _) => ("200 OK", String::new(), ALLOWED_BODY),
        _ => ("200 OK", String::new(), body),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = socket.write_all(response.as_bytes()).await;
    let _ = socket.shutdown().await;
}

/// A port nothing listens on.
async fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

fn run_with_url(url: &str) -> Value {
    json!({
        "preset_id": "fetcher",
        "input": [{"type": "text", "text": "read this"}, {"type": "url", "url": url}]
    })
}

fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(files_under(&path));
        }
        found.push(path);
    }
    found
}

#[tokio::test(flavor = "multi_thread")]
async fn url_parts_cannot_reach_loopback_metadata_or_the_service_itself() {
    let loopback = Canary::start(CANARY_LOOPBACK, None).await;
    let redirected = Canary::start(CANARY_REDIRECTED, None).await;
    let to = format!("http://127.0.0.1:{}/x", redirected.port);
    let allowed = Canary::start(CANARY_LOOPBACK, Some(to)).await;
    let closed = closed_port().await;
    let allow = format!("127.0.0.1:{},127.0.0.1:{closed}", allowed.port);
    let svc = Served::start(&[("FETCH_ALLOW_HOSTS", &allow)]);

    let work = svc
        .create_preset(json!({
            "preset_id": "fetcher", "name": "Fetcher", "model": {"name": "test:echo"}
        }))
        .await;

    let p = loopback.port;
    let refused = [
        format!("http://127.0.0.1:{p}/x"),
        format!("http://localhost:{p}/x"),
        format!("http://0.0.0.0:{p}/x"),
        format!("http://2130706433:{p}/x"),
        format!("http://0x7f000001:{p}/x"),
        format!("http://[::1]:{p}/x"),
        format!("http://[::ffff:127.0.0.1]:{p}/x"),
        format!("http://{}/api/health", svc.addr),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        // allowed, but redirects to a port that is not
        format!("http://127.0.0.1:{}/redir", allowed.port),
        // allowed, and closed
        format!("http://127.0.0.1:{closed}/x"),
        // allowed, and answers 401
        format!("http://127.0.0.1:{}/private", allowed.port),
    ];
    let mut answers = Vec::new();
    for url in &refused {
        let resp = svc
            .req(Method::POST, "/api/conversations/run/stream")
            .json(&run_with_url(url))
            .send()
            .await
            .unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {text}");
        for canary in [CANARY_LOOPBACK, CANARY_REDIRECTED, CANARY_UNAUTHORIZED] {
            assert!(!text.contains(canary), "{url}: {text}");
        }
        answers.push((url, serde_json::from_str::<Value>(&text).unwrap()));
    }
    let expected = json!({"field": "input[1].url", "message": "could not be downloaded"});
    for (url, body) in &answers {
        assert_eq!(body["error"], "validation_failed", "{url}: {body}");
        assert_eq!(
            body["details"]["fields"],
            json!([expected]),
            "{url}: {body}"
        );
        assert_eq!(body, &answers[0].1, "{url}: every failure reads the same");
    }

    assert_eq!(
        loopback.seen(),
        Vec::<String>::new(),
        "a refused destination was contacted"
    );
    assert_eq!(
        redirected.seen(),
        Vec::<String>::new(),
        "a refused redirect was followed"
    );
    assert_eq!(allowed.seen(), vec!["/redir", "/private"]);
    let list: Value = svc
        .req(Method::GET, "/api/conversations/list")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["conversations"], json!([]), "no session was created");
    assert_eq!(
        files_under(&work),
        Vec::<std::path::PathBuf>::new(),
        "nothing was written"
    );
    let log = svc.log();
    assert!(
        log.contains("refused by the outbound policy") && log.contains("loopback"),
        "the admin sees why:\n{log}"
    );

    // What the admin allowed still works, and lands in the agent's directory.
    let url = format!("http://127.0.0.1:{}/ok.txt", allowed.port);
    let resp = svc
        .req(Method::POST, "/api/conversations/run/stream")
        .json(&run_with_url(&url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let stream = resp.text().await.unwrap();
    assert!(stream.contains("run_completed"), "{stream}");
    for canary in [CANARY_LOOPBACK, CANARY_REDIRECTED, CANARY_UNAUTHORIZED] {
        assert!(!stream.contains(canary), "{stream}");
    }
    let saved: Vec<_> = files_under(&work)
        .into_iter()
        .filter(|p| p.ends_with("ok.txt"))
        .collect();
    assert_eq!(saved.len(), 1, "{:?}", files_under(&work));
    assert_eq!(std::fs::read_to_string(&saved[0]).unwrap(), ALLOWED_BODY);
}
