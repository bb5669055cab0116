//! MCP servers nobody here wrote, started by the service as a preset lists them: the
//! reference server `@modelcontextprotocol/server-everything` (npm) over stdio and
//! streamable HTTP, and a FastMCP server written with the official Python SDK
//! (`tests/mcp/fastmcp_server.py`). `tests/mcp/setup.sh` installs both (scripts/test.sh
//! runs it); without them the tests skip, or fail under `REQUIRE_SERVICES=1`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use adapters::testing::skip_or_fail;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{
    Backend, MockApp, SseEvent, TestApp, call_body, call_tool, eventually, process_alive,
    text_input, tool_result, types,
};

/// The installed test servers.
struct Servers {
    /// server-everything's entry point.
    everything: String,
    /// The Python interpreter with the `mcp` package, and its prefix (read by the sandbox).
    python: String,
    python_prefix: String,
    fastmcp: String,
}

impl Servers {
    fn find() -> Option<Self> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp");
        let everything =
            dir.join("node_modules/@modelcontextprotocol/server-everything/dist/index.js");
        if !everything.is_file() {
            return skip_or_fail(
                "mcp",
                "server-everything is not installed: run tests/mcp/setup.sh",
            );
        }
        let probe = std::process::Command::new("python3")
            .args([
                "-c",
                "import sys, mcp.server.fastmcp; print(sys.executable); print(sys.prefix)",
            ])
            .output();
        let found = probe.ok().filter(|o| o.status.success()).map(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            let mut lines = text.lines().map(str::to_owned);
            (
                lines.next().unwrap_or_default(),
                lines.next().unwrap_or_default(),
            )
        });
        let Some((python, python_prefix)) = found else {
            return skip_or_fail(
                "mcp",
                "python3 lacks the mcp package: run tests/mcp/setup.sh",
            );
        };
        Some(Self {
            everything: everything.display().to_string(),
            python,
            python_prefix,
            fastmcp: dir.join("fastmcp_server.py").display().to_string(),
        })
    }

    /// What the sandboxed servers must read besides the system directories.
    fn read_paths(&self) -> String {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp");
        format!("{},{}", dir.display(), self.python_prefix)
    }

    fn everything_stdio(&self, name: &str) -> Value {
        json!({"name": name, "transport": {"stdio": {
            "command": "node", "args": [self.everything, "stdio"]}}})
    }

    fn fastmcp_stdio(&self, name: &str) -> Value {
        json!({"name": name, "transport": {"stdio": {
            "command": self.python, "args": [self.fastmcp]}}})
    }

    /// An app whose sandbox lets the servers read their programs, and a working directory
    /// for its presets.
    async fn app(&self) -> (TestApp, PathBuf) {
        let app = TestApp::with_vars(&[("SANDBOX_READ_PATHS", &self.read_paths())]).await;
        let work = work_dir(&app);
        (app, work)
    }

    /// [`Self::app`] with a preset `id` listing the FastMCP server as `fast`, and the
    /// preset's working directory.
    async fn fastmcp_app(&self, id: &str) -> (TestApp, PathBuf) {
        let (app, work) = self.app().await;
        let servers = json!({"mcp_servers": [self.fastmcp_stdio("fast")]});
        create_preset(&app, id, &work, servers).await;
        (app, work)
    }

    /// server-everything over streamable HTTP on a free port; killed when dropped.
    async fn everything_http(&self) -> HttpServer {
        let port = free_port();
        let child = tokio::process::Command::new("node")
            .args([self.everything.as_str(), "streamableHttp"])
            .env("PORT", port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        HttpServer::ready(child, port).await
    }

    /// The FastMCP server over streamable HTTP, requiring `Authorization: <token>`.
    async fn fastmcp_http(&self, token: &str) -> HttpServer {
        self.fastmcp_http_on(free_port(), token).await
    }

    /// [`Self::fastmcp_http`] on `port`.
    async fn fastmcp_http_on(&self, port: u16, token: &str) -> HttpServer {
        let child = tokio::process::Command::new(&self.python)
            .args([
                self.fastmcp.as_str(),
                "--http",
                &port.to_string(),
                "--token",
                token,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        HttpServer::ready(child, port).await
    }
}

/// A test server on a loopback port.
struct HttpServer {
    _child: tokio::process::Child,
    port: u16,
}

impl HttpServer {
    async fn ready(child: tokio::process::Child, port: u16) -> Self {
        eventually("the MCP server to listen", || async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .ok()
                .map(drop)
        })
        .await;
        Self {
            _child: child,
            port,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.port)
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A working directory for the preset, in the app's temp dir.
fn work_dir(app: &TestApp) -> PathBuf {
    let work = app.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    work.canonicalize().unwrap()
}

async fn create_preset(app: &TestApp, id: &str, work: &Path, extra: Value) {
    let mut body = json!({
        "preset_id": id,
        "name": id,
        "model": {"name": "test:echo"},
        "environment": {"default_path": work.display().to_string()},
    });
    for (key, value) in extra.as_object().unwrap() {
        body[key] = value.clone();
    }
    let (status, created) = app.post("/api/presets/create", body).await;
    assert_eq!(status, StatusCode::OK, "{created}");
}

async fn tools_of(app: &TestApp, preset: &str) -> Value {
    let (status, body) = app.get(&format!("/api/presets/{preset}/tools")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn names(tools: &Value) -> Vec<String> {
    tools["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

fn warning_codes(events: &[SseEvent]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.is("warning"))
        .map(|e| e.payload()["code"].as_str().unwrap().to_owned())
        .collect()
}

/// Both servers over stdio: listed with their schemas beside the built-in tools, called
/// with text, structured and error results, in the preset's environment with only the
/// variables it allows.
#[tokio::test(flavor = "multi_thread")]
async fn stdio_servers_offer_and_run_their_tools() {
    let Some(servers) = Servers::find() else {
        return;
    };
    let (app, work) = servers.app().await;
    let mut everything = servers.everything_stdio("everything");
    everything["transport"]["stdio"]["env_allow"] = json!(["CARGO_PKG_NAME"]);
    create_preset(
        &app,
        "mcp",
        &work,
        json!({"toolsets": [{"toolset_name": "core"}],
               "mcp_servers": [everything, servers.fastmcp_stdio("fast")]}),
    )
    .await;

    let tools = tools_of(&app, "mcp").await;
    let listed = names(&tools);
    for name in [
        "everything__echo",
        "everything__get-tiny-image",
        "fast__add",
        "fast__whoami",
        "view",
    ] {
        assert!(
            listed.contains(&name.to_owned()),
            "{name} missing: {listed:?}"
        );
    }
    assert_eq!(tools["warnings"], json!([]), "{tools}");
    let echo = tools["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "everything__echo")
        .unwrap();
    assert_eq!(echo["source"], "mcp");
    assert_eq!(echo["server"], "everything");
    assert_eq!(
        echo["parameters"]["properties"]["message"]["type"], "string",
        "{echo}"
    );
    let view = tools["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "view")
        .unwrap();
    assert_eq!(view["source"], "builtin");

    let call = |tool: &'static str, args: Value| call_tool(&app, "mcp", tool, args);
    assert_eq!(
        call("everything__echo", json!({"message": "hi"})).await,
        ("Echo: hi".to_owned(), false)
    );
    let (weather, failed) = call(
        "everything__get-structured-content",
        json!({"location": "Chicago"}),
    )
    .await;
    assert!(!failed && weather.contains("temperature"), "{weather}");
    let (invalid, failed) = call("everything__echo", json!({})).await;
    assert!(failed && invalid.contains("message"), "{invalid}");
    assert_eq!(
        call("fast__add", json!({"a": 2, "b": 40})).await,
        ("42".to_owned(), false)
    );
    let (boom, failed) = call("fast__fail", json!({"reason": "disk on fire"})).await;
    assert!(failed && boom.contains("disk on fire"), "{boom}");
    let (who, _) = call("fast__whoami", json!({})).await;
    let who: Value = serde_json::from_str(&who).unwrap();
    assert_eq!(
        who["cwd"],
        work.display().to_string(),
        "runs in the preset's default_path"
    );

    // The process sees PATH, HOME, LANG, its temp dir and what env_allow names: nothing else.
    let (env, _) = call("everything__get-env", json!({})).await;
    let env: Value = serde_json::from_str(&env).unwrap();
    let keys: Vec<&str> = env
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for key in &keys {
        assert!(
            ["PATH", "HOME", "LANG", "TMPDIR", "CARGO_PKG_NAME"].contains(key),
            "{key} leaked into the server's environment: {keys:?}"
        );
    }
    assert_eq!(env["CARGO_PKG_NAME"], "agent-runtime");
}

/// Streamable HTTP: refused by the outbound policy until the host is allowed, then
/// reached with the header read from the service's environment.
#[tokio::test(flavor = "multi_thread")]
async fn http_servers_are_reached_under_the_outbound_policy() {
    let Some(servers) = Servers::find() else {
        return;
    };
    let everything = servers.everything_http().await;
    let fast = servers.fastmcp_http("agent-runtime").await;
    let mcp_servers = json!([
        {"name": "everything", "transport": {"http": {"url": everything.url()}}},
        {"name": "fast", "transport": {"http": {"url": fast.url(),
            "headers_from_env": {"Authorization": "CARGO_PKG_NAME"}}}},
    ]);

    let app_with = |vars: Vec<(&'static str, String)>| {
        let mcp_servers = mcp_servers.clone();
        async move {
            let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let app = TestApp::with_vars(&vars).await;
            let preset = json!({"mcp_servers": mcp_servers});
            create_preset(&app, "web", &work_dir(&app), preset).await;
            app
        }
    };
    let closed = app_with(Vec::new()).await;
    let tools = tools_of(&closed, "web").await;
    assert_eq!(names(&tools), Vec::<String>::new(), "{tools}");
    let warnings = tools["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 2, "{tools}");
    for warning in warnings {
        assert_eq!(warning["code"], "mcp_server_unavailable");
        assert!(
            warning["message"]
                .as_str()
                .unwrap()
                .contains("outbound policy"),
            "{warning}"
        );
    }

    let allowed = format!("{},{}", everything.host(), fast.host());
    let app = app_with(vec![("FETCH_ALLOW_HOSTS", allowed)]).await;
    let tools = tools_of(&app, "web").await;
    assert_eq!(tools["warnings"], json!([]), "{tools}");
    assert!(names(&tools).contains(&"fast__shout".to_owned()), "{tools}");
    assert_eq!(
        call_tool(
            &app,
            "web",
            "everything__echo",
            json!({"message": "over http"})
        )
        .await,
        ("Echo: over http".to_owned(), false)
    );
    let (headers, _) = call_tool(&app, "web", "fast__request_headers", json!({})).await;
    let headers: Value = serde_json::from_str(&headers).unwrap();
    assert_eq!(headers["authorization"], "agent-runtime", "{headers}");
}

/// `tools.include`/`exclude` pick what is offered; `proxy` offers two stable tools that
/// search and call the rest, and approval of a proxied tool still holds.
#[tokio::test(flavor = "multi_thread")]
async fn filters_and_proxy_mode() {
    let Some(servers) = Servers::find() else {
        return;
    };
    let (app, work) = servers.app().await;
    let mut picked = servers.everything_stdio("picked");
    picked["tools"] = json!({"include": ["echo", "get-sum"], "exclude": ["get-sum"]});
    let mut proxied = servers.everything_stdio("proxied");
    proxied["proxy"] = json!(true);
    create_preset(
        &app,
        "filters",
        &work,
        json!({"mcp_servers": [picked, proxied]}),
    )
    .await;
    assert_eq!(
        names(&tools_of(&app, "filters").await),
        [
            "picked__echo",
            "proxied__call_tool",
            "proxied__search_tools"
        ]
    );
    let (found, _) = call_tool(
        &app,
        "filters",
        "proxied__search_tools",
        json!({"query": "echo"}),
    )
    .await;
    let found: Value = serde_json::from_str(&found).unwrap();
    assert_eq!(found[0]["name"], "echo", "{found}");
    assert_eq!(found[0]["parameters"]["required"], json!(["message"]));
    assert_eq!(
        call_tool(
            &app,
            "filters",
            "proxied__call_tool",
            json!({"name": "echo", "arguments": {"message": "via proxy"}})
        )
        .await,
        ("Echo: via proxy".to_owned(), false)
    );
    let (refused, failed) =
        call_tool(&app, "filters", "picked__get-sum", json!({"a": 1, "b": 2})).await;
    assert!(failed && refused.contains("unknown tool"), "{refused}");

    // Approval by the namespaced name holds for the direct and the proxied call.
    let (status, body) = app
        .post(
            "/api/presets/filters/update",
            json!({"tool_config": {"require_approval": ["picked__echo", "proxied__echo"]}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for (tool, args) in [
        ("picked__echo", json!({"message": "x"})),
        (
            "proxied__call_tool",
            json!({"name": "echo", "arguments": {"message": "x"}}),
        ),
    ] {
        let events = app
            .run_sse(json!({"preset_id": "filters",
                            "config_override": {"model": {"name": format!("test:call:{tool}")}},
                            "input": text_input(&args.to_string())}))
            .await
            .all()
            .await;
        let terminal = events.last().unwrap().payload().clone();
        assert_eq!(
            terminal["status"],
            "awaiting_tool_results",
            "{tool}: {}",
            types(&events)
        );
        assert_eq!(terminal["pending_tool_calls"][0]["tool_name"], tool);
        assert!(
            !events.iter().any(|e| e.is("tool_call_result")),
            "{tool} ran"
        );
    }
}

/// A server is one process shared by the preset's runs; one that dies fails its call with
/// a tool error and is started again by the next; a changed preset gets a new one, a
/// deleted preset's is stopped.
#[tokio::test(flavor = "multi_thread")]
async fn servers_are_pooled_restarted_and_stopped_with_their_preset() {
    let Some(servers) = Servers::find() else {
        return;
    };
    let (app, _) = servers.fastmcp_app("pool").await;
    let pid = || async {
        let (who, failed) = call_tool(&app, "pool", "fast__whoami", json!({})).await;
        assert!(!failed, "{who}");
        let who: Value = serde_json::from_str(&who).unwrap();
        who["pid"].as_str().unwrap().parse::<u32>().unwrap()
    };
    let first = pid().await;
    assert_eq!(pid().await, first, "one process across runs");

    let (broke, failed) = call_tool(&app, "pool", "fast__crash", json!({})).await;
    assert!(failed && broke.contains("MCP server fast"), "{broke}");
    let second = pid().await;
    assert_ne!(second, first, "restarted after it died");

    let (status, body) = app
        .post(
            "/api/presets/pool/update",
            json!({"description": "changed"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    eventually("the old server to stop", || async move {
        (!process_alive(second)).then_some(())
    })
    .await;
    let third = pid().await;
    assert_ne!(third, second, "a changed preset gets a new server");

    // A preset is deleted once no active conversation uses it.
    let (_, listed) = app.get("/api/conversations/list?limit=100").await;
    for conversation in listed["conversations"].as_array().unwrap() {
        let id = conversation["conversation_id"].as_str().unwrap();
        let (status, body) = app
            .post(
                &format!("/api/conversations/{id}/update"),
                json!({"status": "archived"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, body) = app.post("/api/presets/pool/delete", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    eventually("the deleted preset's server to stop", || async move {
        (!process_alive(third)).then_some(())
    })
    .await;
}

/// A server that cannot start costs its tools, with a warning; the run goes on.
#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_cannot_start_is_a_warning_not_a_failure() {
    let app = TestApp::sqlite().await;
    let work = work_dir(&app);
    create_preset(
        &app,
        "broken",
        &work,
        json!({"mcp_servers": [{"name": "ghost", "transport": {"stdio": {"command": "/nonexistent/mcp-server"}}}]}),
    )
    .await;
    let events = app
        .run_sse(json!({"preset_id": "broken", "input": text_input("hello")}))
        .await
        .all()
        .await;
    assert_eq!(
        warning_codes(&events),
        ["mcp_server_unavailable"],
        "{}",
        types(&events)
    );
    let warning = events.iter().find(|e| e.is("warning")).unwrap();
    assert!(
        warning.payload()["message"]
            .as_str()
            .unwrap()
            .contains("ghost"),
        "{warning:?}"
    );
    assert_eq!(events.last().unwrap().payload()["status"], "committed");
    let tools = tools_of(&app, "broken").await;
    assert_eq!(tools["warnings"][0]["code"], "mcp_server_unavailable");
}

/// Interrupting a run during a slow MCP call ends the run at once and tells the server,
/// which stops the call.
#[tokio::test(flavor = "multi_thread")]
async fn interrupt_cancels_a_slow_call_at_the_server() {
    let Some(servers) = Servers::find() else {
        return;
    };
    let (app, work) = servers.fastmcp_app("slow").await;
    let marker = work.join("cancelled");
    let args = json!({"seconds": 120, "marker": marker.display().to_string()});
    let accepted = app
        .run_stream(json!({"preset_id": "slow",
                           "config_override": {"model": {"name": "test:call:fast__slow"}},
                           "input": text_input(&args.to_string())}))
        .await;
    let session = accepted["session_id"].as_str().unwrap().to_owned();
    let mut events = app
        .attach(&format!("/api/sessions/{session}/events"), None)
        .await;
    events.until(|e| e.is("tool_call_start")).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, body) = app
        .post(&format!("/api/sessions/{session}/interrupt"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let rest = events.all().await;
    let result = rest.iter().find(|e| e.is("tool_call_result")).unwrap();
    assert_eq!(result.payload()["is_error"], true);
    assert_eq!(
        rest.last().unwrap().payload()["stop_reason"],
        "interrupted",
        "{}",
        types(&rest)
    );
    let seen = marker.clone();
    eventually("the server to see the cancellation", || {
        let seen = seen.clone();
        async move { seen.exists().then_some(()) }
    })
    .await;
}

/// Issue's done-when: a preset with the web toolset and two MCP servers (stdio and HTTP)
/// runs a mock-driven task that fetches a page and calls MCP tools, images included.
async fn web_and_two_servers(backend: Backend) {
    let Some(servers) = Servers::find() else {
        return;
    };
    let fast = servers.fastmcp_http("agent-runtime").await;
    let site = crate::web_tools::Site::start().await;
    let allowed = format!("{},{}", fast.host(), site.host);
    let read_paths = servers.read_paths();
    let Some(app) = MockApp::start(
        backend,
        &[
            ("FETCH_ALLOW_HOSTS", &allowed),
            ("SANDBOX_READ_PATHS", &read_paths),
        ],
    )
    .await
    else {
        return;
    };
    let (status, body) = app
        .post(
            "/api/presets/mock/update",
            json!({"toolsets": [{"toolset_name": "web"}],
                   "mcp_servers": [servers.everything_stdio("everything"),
                       {"name": "fast", "transport": {"http": {"url": fast.url(),
                        "headers_from_env": {"Authorization": "CARGO_PKG_NAME"}}}}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let call = |id: &str, tool: &str, args: Value| {
        mock_llm::Script::new().tool_call(0, id, tool, &[&args.to_string()])
    };
    app.mock.push(call(
        "c1",
        "fetch",
        json!({"url": format!("{}/page", site.base)}),
    ));
    app.mock.push(call(
        "c2",
        "everything__echo",
        json!({"message": "from the agent"}),
    ));
    app.mock
        .push(call("c3", "fast__shout", json!({"text": "done"})));
    app.mock
        .push(call("c4", "everything__get-tiny-image", json!({})));
    app.mock.push(mock_llm::Script::text("All done.", 1));
    let events = app.run_sse(app.new_run("do the task")).await.all().await;
    assert_eq!(
        events.last().unwrap().payload()["status"],
        "committed",
        "{}",
        types(&events)
    );
    let outputs: Vec<(String, bool)> = events
        .iter()
        .filter(|e| e.is("tool_call_result"))
        .map(|e| {
            let p = e.payload();
            (
                p["output"].as_str().unwrap().to_owned(),
                p["is_error"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(outputs.len(), 4, "{outputs:?}");
    assert!(
        outputs[0].0.contains("# Guide") && !outputs[0].1,
        "{:?}",
        outputs[0]
    );
    assert_eq!(outputs[1], ("Echo: from the agent".to_owned(), false));
    assert_eq!(outputs[2], ("DONE".to_owned(), false));
    assert!(
        outputs[3].0.contains("MCP logo") && !outputs[3].1,
        "{:?}",
        outputs[3]
    );
    let last = app.mock.requests().pop().unwrap();
    assert!(
        last.body
            .to_string()
            .contains("data:image/png;base64,iVBOR"),
        "the image reaches the model"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn web_and_two_servers_local() {
    web_and_two_servers(Backend::Local).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn web_and_two_servers_pg_redis() {
    web_and_two_servers(Backend::PgRedis).await;
}

/// Docker mode: a stdio server runs through `docker exec -i` in the preset's container
/// (here a `docker` shim that runs it on this machine), in the container workdir, with
/// no host variables; SIGTERM stops it with the service.
#[tokio::test(flavor = "multi_thread")]
async fn a_stdio_server_of_a_docker_preset_runs_through_docker_exec() {
    use adapters::testing::docker_shim_calls;
    let Some(servers) = Servers::find() else {
        return;
    };
    let docker = crate::docker_mode::DockerBox::new();
    let (dir, work, shim) = (&docker.dir, &docker.work, &docker.shim);
    let env = docker.service_env(&[]);
    let service = crate::crash::Service::start(dir.path(), &env, &dir.path().join("service.log"));
    let work_path = work.display().to_string();
    let (status, body) = service
        .post(
            "/api/presets/create",
            json!({"preset_id": "boxed", "name": "boxed", "model": {"name": "test:echo"},
                   "environment": {"shell_mode": "docker", "container_id": "box",
                                   "container_workdir": work_path, "default_path": work_path},
                   "mcp_servers": [servers.fastmcp_stdio("fast")]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let events = service
        .sse(
            reqwest::Method::POST,
            "/api/conversations/run/stream",
            Some(call_body("boxed", "fast__whoami", &json!({}))),
        )
        .await
        .all()
        .await;
    let (who, _) = tool_result(&events);
    let who: Value = serde_json::from_str(&who).unwrap();
    assert_eq!(who["cwd"], work_path, "{who}");
    let calls = docker_shim_calls(shim);
    let argv = &calls.first().expect("one docker call").0;
    assert_eq!(argv[..2], ["exec".to_owned(), "-i".to_owned()], "{argv:?}");
    assert!(
        argv.windows(2).any(|w| w[0] == "-w" && w[1] == work_path),
        "{argv:?}"
    );
    let at = argv.iter().position(|a| a == "box").expect("the container");
    assert_eq!(
        argv[at + 1..],
        [servers.python.clone(), servers.fastmcp.clone()],
        "{argv:?}"
    );
    assert!(
        !argv.iter().any(|a| a.starts_with("PATH=")),
        "no host variable: {argv:?}"
    );
    let server = who["pid"].as_str().unwrap().parse::<u32>().unwrap();
    assert!(process_alive(server));
    let mut service = service;
    let status = std::process::Command::new("kill")
        .args(["-TERM", &service.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exited = tokio::time::timeout(Duration::from_secs(15), async {
        while service.child.try_wait().unwrap().is_none() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(exited.is_ok(), "no exit after SIGTERM");
    eventually("the server to stop with the service", || async move {
        (!process_alive(server)).then_some(())
    })
    .await;
}

/// A sync subagent gets the MCP tools of its preset (a built-in one runs on its caller's).
#[tokio::test(flavor = "multi_thread")]
async fn a_sync_subagent_calls_its_presets_mcp_tools() {
    let Some(servers) = Servers::find() else {
        return;
    };
    let read_paths = servers.read_paths();
    let Some(app) = MockApp::start(Backend::Local, &[("SANDBOX_READ_PATHS", &read_paths)]).await
    else {
        return;
    };
    let (status, body) = app
        .post(
            "/api/presets/mock/update",
            json!({"subagents": {"include_builtin": true},
                   "mcp_servers": [servers.fastmcp_stdio("fast")]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let args = json!({"subagent": "general", "task": "shout hello"}).to_string();
    app.mock
        .push(mock_llm::Script::new().tool_call(0, "d1", "delegate", &[&args]));
    let shout = json!({"text": "hello"}).to_string();
    app.mock
        .push(mock_llm::Script::new().tool_call(0, "s1", "fast__shout", &[&shout]));
    app.mock.push(mock_llm::Script::text("it said HELLO", 1));
    app.mock.push(mock_llm::Script::text("done", 1));
    let events = app.run_sse(app.new_run("go")).await.all().await;
    assert_eq!(
        events.last().unwrap().payload()["status"],
        "committed",
        "{}",
        types(&events)
    );
    let nested = events
        .iter()
        .find(|e| e.is("tool_call_result") && e.data["agent_id"] == "general")
        .unwrap_or_else(|| panic!("no nested tool result: {}", types(&events)));
    assert_eq!(nested.payload()["output"], "HELLO");
}

/// An HTTP server that went away costs its tools in the next run (a warning, not a
/// failure); once it is back, the run after reconnects.
#[tokio::test(flavor = "multi_thread")]
async fn an_http_server_that_restarts_is_reconnected() {
    let Some(servers) = Servers::find() else {
        return;
    };
    let fast = servers.fastmcp_http("agent-runtime").await;
    let port = fast.port;
    let app = TestApp::with_vars(&[("FETCH_ALLOW_HOSTS", &fast.host())]).await;
    let mcp_servers = json!([{"name": "fast", "transport": {"http": {"url": fast.url(),
        "headers_from_env": {"Authorization": "CARGO_PKG_NAME"}}}}]);
    create_preset(
        &app,
        "remote",
        &work_dir(&app),
        json!({"mcp_servers": mcp_servers}),
    )
    .await;
    let shout =
        |text: &'static str| call_tool(&app, "remote", "fast__shout", json!({"text": text}));
    assert_eq!(shout("one").await, ("ONE".to_owned(), false));

    let (_, failed) = call_tool(&app, "remote", "fast__crash", json!({})).await;
    assert!(failed);
    drop(fast);
    let (down, failed) = shout("two").await;
    assert!(failed && down.contains("unknown tool"), "{down}");

    let back = servers.fastmcp_http_on(port, "agent-runtime").await;
    assert_eq!(shout("three").await, ("THREE".to_owned(), false));
    drop(back);
}
