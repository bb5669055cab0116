//! What a whole run over HTTP adds to a 1,000-delta model stream: the mock LLM's stream
//! read directly, against `POST /api/conversations/run` (transport sse) read to its
//! terminal event, on SQLite + in-process bus + local files. Reports time to the first
//! event and to the first content delta, events per second, and the overhead ratio.
//!
//! `cargo run --release --example sse_cost [delay-ms]` (default 0: deltas back to back).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::too_many_lines,
    reason = "a measuring tool"
)]

use std::time::{Duration, Instant};

use agent_runtime::{app, config::Config};
use futures::StreamExt;
use mock_llm::{DefaultAnswer, MockLlm};

const DELTAS: usize = 1_000;
const ROUNDS: usize = 20;
const TOKEN: &str = "bench-token-0123456789";

struct Run {
    total: Duration,
    first_event: Duration,
    first_delta: Duration,
    events: usize,
}

/// Reads an SSE body to its end, noting when the first frame and the first content delta
/// arrived and counting frames.
async fn read(resp: reqwest::Response, started: Instant) -> Run {
    assert!(resp.status().is_success(), "{}", resp.status());
    let mut body = resp.bytes_stream();
    let mut first_event = None;
    let mut first_delta = None;
    let mut events = 0;
    let mut tail = Vec::<u8>::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.unwrap();
        first_event.get_or_insert_with(|| started.elapsed());
        tail.extend_from_slice(&chunk);
        // Count complete frames; keep the unfinished rest.
        let mut start = 0;
        while let Some(len) = tail[start..].windows(2).position(|w| w == b"\n\n") {
            let frame = &tail[start..start + len];
            if frame.starts_with(b"data:") || frame.windows(6).any(|w| w == b"\ndata:") {
                events += 1;
            }
            if first_delta.is_none() && frame.windows(13).any(|w| w == b"content_delta") {
                first_delta = Some(started.elapsed());
            }
            start += len + 2;
        }
        tail.drain(..start);
    }
    Run {
        total: started.elapsed(),
        first_event: first_event.unwrap_or_default(),
        first_delta: first_delta.unwrap_or_default(),
        events,
    }
}

async fn direct(client: &reqwest::Client, mock: &MockLlm) -> Run {
    let started = Instant::now();
    let resp = client
        .post(format!("{}/chat/completions", mock.base_url()))
        .bearer_auth("sk-bench")
        .json(&serde_json::json!({
            "model": "bench", "stream": true,
            "messages": [{"role": "user", "content": "go"}]
        }))
        .send()
        .await
        .unwrap();
    read(resp, started).await
}

async fn through_service(client: &reqwest::Client, base: &str) -> Run {
    let started = Instant::now();
    let resp = client
        .post(format!("{base}/api/conversations/run/stream"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({
            "preset_id": "bench",
            "input": [{"type": "text", "text": "go"}]
        }))
        .send()
        .await
        .unwrap();
    read(resp, started).await
}

/// The pause between deltas, from the first argument.
fn delay() -> Duration {
    let ms = std::env::args()
        .nth(1)
        .map_or(0, |a| a.parse().expect("delay in milliseconds"));
    Duration::from_millis(ms)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[tokio::main]
async fn main() {
    let mock = MockLlm::bind(
        "127.0.0.1:0".parse().unwrap(),
        DefaultAnswer {
            deltas: DELTAS,
            delay: delay(),
        },
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = Config::from_vars([
        (
            "DATABASE_URL".to_owned(),
            format!("sqlite://{}/bench.db", dir.path().display()),
        ),
        (
            "STATE_STORE_PATH".to_owned(),
            dir.path().join("state").display().to_string(),
        ),
        (
            "WORKSPACE_ROOT".to_owned(),
            dir.path().join("workspace").display().to_string(),
        ),
        ("AUTH_TOKEN".to_owned(), TOKEN.to_owned()),
        ("OPENAI_BASE_URL".to_owned(), mock.base_url()),
        ("OPENAI_API_KEY".to_owned(), "sk-bench".to_owned()),
    ])
    .unwrap();
    let built = app::build(&config).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(app::serve(built, listener, std::future::pending()));

    let client = reqwest::Client::new();
    let created = client
        .post(format!("{base}/api/presets/create"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({
            "preset_id": "bench", "name": "bench", "model": {"name": "openai:bench"},
            "environment": {"default_path": dir.path().display().to_string()}
        }))
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success(), "{}", created.status());

    // Warm up connections, the database and allocators.
    direct(&client, &mock).await;
    through_service(&client, &base).await;

    let (mut d_total, mut d_first) = (Vec::new(), Vec::new());
    let (mut s_total, mut s_first, mut s_delta) = (Vec::new(), Vec::new(), Vec::new());
    let mut events = 0;
    for _ in 0..ROUNDS {
        let d = direct(&client, &mock).await;
        d_total.push(d.total);
        d_first.push(d.first_event);
        let s = through_service(&client, &base).await;
        s_total.push(s.total);
        s_first.push(s.first_event);
        s_delta.push(s.first_delta);
        events = s.events;
    }
    let (d_total, d_first) = (median(d_total), median(d_first));
    let (s_total, s_first, s_delta) = (median(s_total), median(s_first), median(s_delta));
    println!(
        "{DELTAS} deltas {} ms apart, median of {ROUNDS} rounds, SQLite + in-process bus + local files",
        delay().as_millis()
    );
    println!(
        "mock read directly      total {:>8.2} ms   first chunk {:>6.2} ms",
        ms(d_total),
        ms(d_first)
    );
    println!(
        "run over sse            total {:>8.2} ms   first event {:>6.2} ms   first delta {:>6.2} ms   {events} events, {:.0} events/s",
        ms(s_total),
        ms(s_first),
        ms(s_delta),
        events as f64 / s_total.as_secs_f64()
    );
    println!(
        "overhead ratio {:.2} (added {:.2} ms for the whole run: session row, model request, events, commit)",
        s_total.as_secs_f64() / d_total.as_secs_f64(),
        ms(s_total.saturating_sub(d_total))
    );
}
