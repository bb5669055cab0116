//! The web toolset against a real local HTTP server, through the built-in `test:call:`
//! models: `fetch` turns a page into markdown (after a redirect, naming the final URL),
//! passes JSON through and refuses binaries; `download` saves into the workspace under the
//! path policy and the file cap; both reach only what the outbound policy allows.

use std::sync::{Arc, Mutex};

use reqwest::StatusCode;
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use crate::support::{TestApp, call_tool, read_http_request};

const PAGE: &str = "<html><head><script>steal()</script><style>p{}</style></head><body>\
    <nav><a href=\"/\">Home</a></nav><h1>Guide</h1><p>Read <a href=\"https://example.org/more\">\
    more</a>.</p><ul><li>first</li><li>second</li></ul></body></html>";
const PDF: &[u8] = b"%PDF-1.7 not really a pdf";

/// A loopback server: `/page` (HTML), `/moved` (302 to `/page`), `/data.json`, `/doc.pdf`
/// and `/big` (4 KiB); it records every path it is asked for.
pub(crate) struct Site {
    pub(crate) base: String,
    pub(crate) host: String,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Site {
    pub(crate) async fn start() -> Self {
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
    let Some((path, _, _)) = read_http_request(&mut socket).await else {
        return;
    };
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

// ------------------------------------------------------------------ search and scrape

/// A stand-in for the Tavily, Google Programmable Search and Firecrawl APIs: it checks the
/// key each expects and records every request (target and body).
struct Services {
    base: String,
    seen: Arc<Mutex<Vec<String>>>,
}

const TAVILY_KEY: &str = "tvly-stand-in-key";
const GOOGLE_KEY: &str = "google-stand-in-key";
const FIRECRAWL_KEY: &str = "fc-stand-in-key";

impl Services {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let recorded = seen.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(answer_service(socket, recorded.clone()));
            }
        });
        Self { base, seen }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

async fn answer_service(mut socket: TcpStream, seen: Arc<Mutex<Vec<String>>>) {
    let Some((target, head, body)) = read_http_request(&mut socket).await else {
        return;
    };
    seen.lock().unwrap().push(format!("{target} {body}"));
    let bearer = |key: &str| {
        head.contains(&format!(
            "authorization: bearer {}",
            key.to_ascii_lowercase()
        ))
    };
    let (status, answer) = if target == "/search" {
        if bearer(TAVILY_KEY) {
            (
                "200 OK",
                json!({"results": [
                    {"title": "Rust", "url": "https://rust-lang.org/", "content": "A language."},
                    {"title": "Cargo", "url": "https://doc.rust-lang.org/cargo/", "content": "Its build tool."}
                ]}),
            )
        } else {
            ("401 Unauthorized", json!({"detail": "bad key"}))
        }
    } else if target.starts_with("/customsearch/v1?") {
        if target.contains(&format!("key={GOOGLE_KEY}")) {
            (
                "200 OK",
                json!({"items": [
                    {"title": "Homelab", "link": "https://example.org/lab", "snippet": "Racks."}
                ]}),
            )
        } else {
            ("400 Bad Request", json!({"error": "bad key"}))
        }
    } else if target == "/v1/scrape" && bearer(FIRECRAWL_KEY) {
        (
            "200 OK",
            json!({"success": true, "data": {
                "markdown": "# Rendered\n\nBy scripts.",
                "metadata": {"sourceURL": "https://example.org/app", "title": "App"}
            }}),
        )
    } else {
        ("404 Not Found", json!({}))
    };
    let body = answer.to_string();
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = socket.write_all(response.as_bytes()).await;
    let _ = socket.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn search_and_scrape_go_to_the_configured_services() {
    let services = Services::start().await;
    let app = TestApp::with_vars(&[
        ("TAVILY_API_KEY", TAVILY_KEY),
        ("TAVILY_BASE_URL", &services.base),
        ("FIRECRAWL_API_KEY", FIRECRAWL_KEY),
        ("FIRECRAWL_BASE_URL", &services.base),
    ])
    .await;
    web_preset(&app).await;

    let (out, is_error) = call_tool(
        &app,
        "surfer",
        "search",
        json!({"query": "rust language", "max_results": 2}),
    )
    .await;
    assert!(!is_error, "{out}");
    assert_eq!(
        out,
        "1. Rust\nhttps://rust-lang.org/\nA language.\n\n2. Cargo\nhttps://doc.rust-lang.org/cargo/\nIts build tool."
    );
    let (out, is_error) = call_tool(
        &app,
        "surfer",
        "scrape",
        json!({"url": "https://example.org/app"}),
    )
    .await;
    assert!(!is_error, "{out}");
    assert_eq!(
        out,
        "URL: https://example.org/app\nTitle: App\n\n# Rendered\n\nBy scripts."
    );

    let seen = services.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    let search: serde_json::Value =
        serde_json::from_str(seen[0].strip_prefix("/search ").unwrap()).unwrap();
    assert_eq!(search, json!({"query": "rust language", "max_results": 2}));
    let scrape: serde_json::Value =
        serde_json::from_str(seen[1].strip_prefix("/v1/scrape ").unwrap()).unwrap();
    assert_eq!(
        scrape,
        json!({"url": "https://example.org/app", "formats": ["markdown"]})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn google_search_is_used_with_its_two_values_and_a_refusal_shows_no_key() {
    let services = Services::start().await;
    let app = TestApp::with_vars(&[
        ("GOOGLE_SEARCH_API_KEY", GOOGLE_KEY),
        ("GOOGLE_SEARCH_CX", "engine-7"),
        ("GOOGLE_SEARCH_BASE_URL", &services.base),
    ])
    .await;
    web_preset(&app).await;
    let (out, is_error) = call_tool(&app, "surfer", "search", json!({"query": "home lab"})).await;
    assert!(!is_error, "{out}");
    assert_eq!(out, "1. Homelab\nhttps://example.org/lab\nRacks.");
    let target = services.seen()[0].clone();
    for part in [
        format!("key={GOOGLE_KEY}"),
        "cx=engine-7".into(),
        "q=home+lab".into(),
        "num=5".into(),
    ] {
        assert!(target.contains(&part), "{part} in {target}");
    }

    let wrong = TestApp::with_vars(&[
        ("TAVILY_API_KEY", "tvly-wrong"),
        ("TAVILY_BASE_URL", &services.base),
    ])
    .await;
    web_preset(&wrong).await;
    let (out, is_error) = call_tool(&wrong, "surfer", "search", json!({"query": "x"})).await;
    assert!(is_error, "{out}");
    assert!(out.contains("Tavily answered 401"), "{out}");
    assert!(!out.contains("tvly-wrong"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_services_search_and_scrape_are_absent_and_the_run_is_warned() {
    let app = TestApp::sqlite().await;
    web_preset(&app).await;
    let events = app
        .run_sse(json!({"preset_id": "surfer", "input": crate::support::text_input("hi")}))
        .await
        .all()
        .await;
    let warnings: Vec<_> = events
        .iter()
        .filter(|e| e.is("warning"))
        .map(|e| e.payload().clone())
        .collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings.iter().all(|w| w["code"] == "tool_unavailable"));
    let messages: Vec<&str> = warnings
        .iter()
        .map(|w| w["message"].as_str().unwrap())
        .collect();
    assert!(
        messages[0].contains("search") && messages[0].contains("TAVILY_API_KEY"),
        "{messages:?}"
    );
    assert!(
        messages[1].contains("scrape") && messages[1].contains("FIRECRAWL_API_KEY"),
        "{messages:?}"
    );
    assert!(events.last().unwrap().is("run_completed"));

    let (out, is_error) = call_tool(&app, "surfer", "search", json!({"query": "x"})).await;
    assert!(is_error, "{out}");
    assert!(out.contains("search"), "{out}");
}
