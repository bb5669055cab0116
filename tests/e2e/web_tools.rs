//! The web toolset against a real local HTTP server, through the built-in `test:call:`
//! models: `fetch` turns a page into markdown (after a redirect, naming the final URL),
//! passes JSON through and refuses binaries; `download` saves into the workspace under the
//! path policy and the file cap; both reach only what the outbound policy allows.

use std::sync::{Arc, Mutex};

use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::{TestApp, call_tool};

const PAGE: &str = "<html><head><script>steal()</script><style>p{}</style></head><body>\
    <nav><a href=\"/\">Home</a></nav><h1>Guide</h1><p>Read <a href=\"https://example.org/more\">\
    more</a>.</p><ul><li>first</li><li>second</li></ul></body></html>";
const PDF: &[u8] = b"%PDF-1.7 not really a pdf";

/// A loopback server: `/page` (HTML), `/moved` (302 to `/page`), `/data.json`, `/doc.pdf`
/// and `/big` (4 KiB); it records every path it is asked for.
struct Site {
    base: String,
    host: String,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Site {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let recorded = seen.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(socket, recorded.clone()));
            }
        });
        Self {
            base: format!("http://127.0.0.1:{port}"),
            host: format!("127.0.0.1:{port}"),
            seen,
        }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

async fn serve(mut socket: TcpStream, seen: Arc<Mutex<Vec<String>>>) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let path = String::from_utf8_lossy(&head)
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    seen.lock().unwrap().push(path.clone());
    let big = vec![b'x'; 4096];
    let (status, extra, kind, body): (&str, &str, &str, &[u8]) = match path.as_str() {
        "/page" => ("200 OK", "", "text/html; charset=utf-8", PAGE.as_bytes()),
        "/moved" => ("302 Found", "Location: /page\r\n", "text/plain", b""),
        "/data.json" => ("200 OK", "", "application/json", b"{\"answer\":42}"),
        "/doc.pdf" => ("200 OK", "", "application/pdf", PDF),
        "/big" => ("200 OK", "", "application/octet-stream", &big),
        _ => ("404 Not Found", "", "text/plain", b"nothing here"),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
        body.len()
    );
    let _ = socket.write_all(head.as_bytes()).await;
    let _ = socket.write_all(body).await;
    let _ = socket.shutdown().await;
}

/// A preset with only the web toolset, working in the app's workspace root.
async fn web_preset(app: &TestApp) {
    let (status, body) = app
        .post(
            "/api/presets/create",
            json!({"preset_id": "surfer", "name": "Surfer", "model": {"name": "test:echo"},
                   "toolsets": [{"toolset_name": "web"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn fetch_reads_pages_as_markdown_and_passes_json_but_not_binaries() {
    let site = Site::start().await;
    let app = TestApp::with_vars(&[("FETCH_ALLOW_HOSTS", &site.host)]).await;
    web_preset(&app).await;

    let (out, is_error) = call_tool(
        &app,
        "surfer",
        "fetch",
        json!({"url": format!("{}/moved", site.base)}),
    )
    .await;
    assert!(!is_error, "{out}");
    assert!(
        out.starts_with(&format!(
            "URL: {}/page\nContent-Type: text/html\n\n",
            site.base
        )),
        "the final URL after the redirect: {out}"
    );
    assert!(out.contains("# Guide"), "{out}");
    assert!(out.contains("[more](https://example.org/more)"), "{out}");
    assert!(out.contains("first") && out.contains("second"), "{out}");
    assert!(!out.contains("steal()") && !out.contains("Home"), "{out}");

    let (out, is_error) = call_tool(
        &app,
        "surfer",
        "fetch",
        json!({"url": format!("{}/page", site.base), "format": "text", "max_chars": 40}),
    )
    .await;
    assert!(!is_error, "{out}");
    assert!(
        !out.contains("example.org"),
        "text drops link targets: {out}"
    );

    let (out, is_error) = call_tool(
        &app,
        "surfer",
        "fetch",
        json!({"url": format!("{}/data.json", site.base)}),
    )
    .await;
    assert!(!is_error, "{out}");
    assert!(out.ends_with("{\"answer\":42}"), "{out}");

    let (out, is_error) = call_tool(
        &app,
        "surfer",
        "fetch",
        json!({"url": format!("{}/doc.pdf", site.base)}),
    )
    .await;
    assert!(is_error, "{out}");
    assert!(
        out.contains("application/pdf") && out.contains("`download`"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn download_saves_under_the_path_policy_and_the_file_cap() {
    let site = Site::start().await;
    let app = TestApp::with_vars(&[
        ("FETCH_ALLOW_HOSTS", &site.host),
        ("MAX_FILE_BYTES", "1024"),
    ])
    .await;
    web_preset(&app).await;
    let work = app.dir.path().join("workspace");

    let url = format!("{}/doc.pdf", site.base);
    let (out, is_error) = call_tool(
        &app,
        "surfer",
        "download",
        json!({"url": url, "path": "papers/doc.pdf"}),
    )
    .await;
    assert!(!is_error, "{out}");
    assert!(
        out.contains("application/pdf") && out.contains(&format!("{} bytes", PDF.len())),
        "{out}"
    );
    assert_eq!(std::fs::read(work.join("papers/doc.pdf")).unwrap(), PDF);

    let (out, is_error) = call_tool(
        &app,
        "surfer",
        "download",
        json!({"url": url, "path": "../escaped.pdf"}),
    )
    .await;
    assert!(is_error, "{out}");
    assert!(!app.dir.path().join("escaped.pdf").exists());

    let (out, is_error) = call_tool(
        &app,
        "surfer",
        "download",
        json!({"url": format!("{}/big", site.base), "path": "big.bin"}),
    )
    .await;
    assert!(is_error && out.contains("larger than 1024 bytes"), "{out}");
    assert!(!work.join("big.bin").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_web_tools_reach_no_loopback_unless_allowed() {
    let site = Site::start().await;
    let app = TestApp::sqlite().await;
    web_preset(&app).await;
    for (tool, args) in [
        ("fetch", json!({"url": format!("{}/page", site.base)})),
        (
            "download",
            json!({"url": format!("{}/doc.pdf", site.base), "path": "doc.pdf"}),
        ),
    ] {
        let (out, is_error) = call_tool(&app, "surfer", tool, args).await;
        assert!(is_error, "{tool}: {out}");
        assert!(out.contains("could not be"), "{tool}: {out}");
    }
    assert_eq!(
        site.seen(),
        Vec::<String>::new(),
        "nothing reached the server"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_toolset_without_tools_yet_is_refused_by_name() {
    let app = TestApp::sqlite().await;
    let (status, body) = app
        .post(
            "/api/presets/create",
            json!({"preset_id": "media", "name": "Media", "model": {"name": "test:echo"},
                   "toolsets": [{"toolset_name": "web"}, {"toolset_name": "media"}]}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let field = &body["details"]["fields"][0];
    assert_eq!(field["field"], "toolsets[1].toolset_name", "{body}");
    assert!(
        field["message"].as_str().unwrap().contains("media"),
        "{body}"
    );
}
