//! `/metrics` as Prometheus scrapes it: the text format parses, and the series move as runs,
//! model requests, tool calls, event streams and HTTP requests happen.

use std::collections::BTreeMap;

use mock_llm::Script;
use reqwest::{Method, StatusCode};

use crate::support::{
    Backend, MOCK_PRESET, MockApp, eventually, gate_command, open_gate, shell_call,
};

/// One sample: its labels and value.
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the text exposition format; every non-comment line must be a sample.
fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|line| {
            let (series, value) = line
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("not a sample: {line}"));
            let value: f64 = value
                .parse()
                .unwrap_or_else(|_| panic!("not a value: {line}"));
            let (name, labels) = match series.split_once('{') {
                None => (series.to_owned(), BTreeMap::new()),
                Some((name, rest)) => {
                    let body = rest.strip_suffix('}').expect("labels end with }");
                    let labels = body
                        .split("\",")
                        .filter(|p| !p.is_empty())
                        .map(|pair| {
                            let (k, v) = pair.split_once("=\"").expect("label=\"value\"");
                            (k.to_owned(), v.trim_end_matches('"').to_owned())
                        })
                        .collect();
                    (name.to_owned(), labels)
                }
            };
            assert!(name.starts_with("agent_runtime_"), "{line}");
            Sample {
                name,
                labels,
                value,
            }
        })
        .collect()
}

/// The sum of `name`'s samples carrying every label of `with`.
fn value(samples: &[Sample], name: &str, with: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            with.iter()
                .all(|(k, v)| s.labels.get(*k).is_some_and(|got| got == v))
        })
        .map(|s| s.value)
        .sum()
}

async fn scrape(app: &MockApp) -> Vec<Sample> {
    let resp = app.req(Method::GET, "/metrics").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"),
    );
    parse(&resp.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_move_as_runs_happen() {
    let app = MockApp::start(Backend::Local, &[]).await.unwrap();
    let anonymous = app.get_open("/metrics").await;
    assert_eq!(
        anonymous.status(),
        StatusCode::UNAUTHORIZED,
        "behind the token"
    );
    let before = scrape(&app).await;
    assert_eq!(value(&before, "agent_runtime_runs_active", &[]), 0.0);

    // A run that calls the shell tool, held open by a gate.
    app.mock.push(shell_call("call_gate", &gate_command("go")));
    app.mock.push(Script::text("done", 2).usage(30, 5));
    let mut stream = app.run_sse(app.new_run("work")).await;
    stream.until(|e| e.is("tool_call_start")).await;
    let during = scrape(&app).await;
    assert_eq!(value(&during, "agent_runtime_runs_active", &[]), 1.0);
    assert_eq!(value(&during, "agent_runtime_event_streams_open", &[]), 1.0);
    assert!(value(&during, "agent_runtime_sql_pool_in_use", &[]) >= 0.0);
    assert_eq!(
        value(
            &during,
            "agent_runtime_runs_started_total",
            &[("preset", MOCK_PRESET), ("session_type", "agent")]
        ),
        1.0
    );
    open_gate(&app.work, "go");
    let events = stream.all().await;
    assert!(events.last().unwrap().is("run_completed"));

    let after = eventually("the stream and the run to be counted as ended", || async {
        let samples = scrape(&app).await;
        // Tool calls are read from the events the forwarder hands to the bus, a moment
        // after the stream has them.
        (value(&samples, "agent_runtime_event_streams_open", &[]) == 0.0
            && value(&samples, "agent_runtime_runs_active", &[]) == 0.0
            && value(&samples, "agent_runtime_tool_calls_total", &[]) > 0.0)
            .then_some(samples)
    })
    .await;
    let finished = [
        ("preset", MOCK_PRESET),
        ("session_type", "agent"),
        ("status", "committed"),
    ];
    assert_eq!(
        value(&after, "agent_runtime_runs_finished_total", &finished),
        1.0
    );
    assert_eq!(
        value(&after, "agent_runtime_run_duration_seconds_count", &[]),
        1.0
    );
    let model = [("model", "openai:gpt-test")];
    assert_eq!(
        value(
            &after,
            "agent_runtime_model_requests_total",
            &[("model", "openai:gpt-test"), ("outcome", "ok")]
        ),
        2.0
    );
    assert_eq!(
        value(&after, "agent_runtime_model_request_seconds_count", &model),
        2.0
    );
    assert!(
        value(
            &after,
            "agent_runtime_model_tokens_total",
            &[("model", "openai:gpt-test"), ("kind", "input")]
        ) >= 30.0
    );
    assert_eq!(
        value(
            &after,
            "agent_runtime_tool_calls_total",
            &[("tool", "shell")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &after,
            "agent_runtime_tool_call_seconds_count",
            &[("tool", "shell")]
        ),
        1.0
    );
    assert!(value(&after, "agent_runtime_bus_append_seconds_count", &[]) >= 1.0);
    assert_eq!(
        value(
            &after,
            "agent_runtime_http_requests_total",
            &[
                ("route", "/api/conversations/run/stream"),
                ("status", "200")
            ]
        ),
        1.0
    );
    assert_eq!(
        value(
            &after,
            "agent_runtime_http_requests_total",
            &[("route", "/metrics"), ("status", "401")]
        ),
        1.0
    );

    // A failing provider shows in the outcome label.
    app.mock.push(Script::error(401, "bad key"));
    let failed = app.run_sse(app.new_run("again")).await.all().await;
    assert!(failed.last().unwrap().is("run_failed"));
    let samples = scrape(&app).await;
    assert_eq!(
        value(
            &samples,
            "agent_runtime_model_requests_total",
            &[("outcome", "model_auth")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &samples,
            "agent_runtime_runs_finished_total",
            &[("status", "failed")]
        ),
        1.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_public_serves_the_scrape_without_a_token() {
    let app = MockApp::start(Backend::Local, &[("METRICS_PUBLIC", "true")])
        .await
        .unwrap();
    let resp = app.get_open("/metrics").await;
    assert_eq!(resp.status(), StatusCode::OK);
    let samples = parse(&resp.text().await.unwrap());
    assert_eq!(value(&samples, "agent_runtime_runs_active", &[]), 0.0);
    let api = app.get_open("/api/presets/list").await;
    assert_eq!(
        api.status(),
        StatusCode::UNAUTHORIZED,
        "only /metrics opens"
    );
}

/// A hostile model that calls 300 tools of made-up names cannot grow the metrics without
/// bound: the tool label keeps 256 values, the rest count as `(other)`.
#[tokio::test(flavor = "multi_thread")]
async fn made_up_tool_names_do_not_grow_the_series_without_bound() {
    let app = MockApp::start(Backend::Local, &[]).await.unwrap();
    let calls = (0..300u32).fold(Script::new(), |script, n| {
        script.tool_call(n, &format!("c{n}"), &format!("invented_{n}"), &["{}"])
    });
    app.mock.push(calls);
    app.mock.push(Script::text("sorry", 1));
    let events = app.run_sse(app.new_run("go wild")).await.all().await;
    assert!(events.last().unwrap().is("run_completed"));
    let samples = eventually("the 300 calls to be counted", || async {
        let samples = scrape(&app).await;
        (value(&samples, "agent_runtime_tool_calls_total", &[]) == 300.0).then_some(samples)
    })
    .await;
    let series = samples
        .iter()
        .filter(|s| s.name == "agent_runtime_tool_calls_total")
        .count();
    assert_eq!(series, 257, "256 names and (other)");
    assert_eq!(
        value(
            &samples,
            "agent_runtime_tool_calls_total",
            &[("tool", "(other)")]
        ),
        44.0
    );
}
