//! The benchmark of spec 07: starts the built service as a process (once on SQLite +
//! in-process bus + local files, once on PostgreSQL + Redis) against the mock LLM on
//! loopback, drives it over HTTP as clients would (SSE streams read to their end), and
//! prints one table. Run it through `scripts/bench.sh [--quick]`.
//!
//! Measures:
//! - start to healthy: process spawn to the first 200 from `/api/health`;
//! - idle RSS: the service's resident memory after start, before any run;
//! - overhead ratios: one 1,000-delta run end to end over sse (session insert and commit
//!   included) against reading the same mock answer directly with the same reader;
//! - N concurrent runs of 200 deltas 10 ms apart (2.0 s floor): p50 / p99 end to end,
//!   errors, and the service's peak RSS meanwhile;
//! - commit of a 200-message session: from the service's own event timestamps, the gap
//!   between the run's last event before finalize and `run_completed` (state.json,
//!   display_messages.json and the session row), p99 over forks of a planted session;
//! - continue a 5,000-message session: time to the first content delta minus the same for
//!   a 2-message session (medians);
//! - the shell sandbox's cost: one `true` command through the sandbox helper (Landlock,
//!   capabilities, limits, supervisor) against the same command run plainly (medians).
//!
//! `--concurrent=N` changes the number of concurrent runs (e.g. 200 for the CPU per run
//! figure), `--load-only` measures only them (`--deltas=N` then changes their answer's
//! length, to tell a run's fixed cost from its cost per delta), `--local-only` skips
//! PostgreSQL + Redis.
//!
//! Timings never fail the run; errors do (exit status 1), so `--quick` is a CI smoke test.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a measuring tool")]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use adapters::state_store::OpendalStateStore;
use adapters::testing::PgSchema;
use futures::StreamExt;
use mock_llm::{DefaultAnswer, MockLlm};
use ports::{AssistantPart, ModelMessage, SessionState, StateStore, UserPart};
use serde_json::{Value, json};
use tokio::process::{Child, Command};

const TOKEN: &str = "bench-token-0123456789";

/// How much of each measure to run.
#[derive(Clone, Copy)]
struct Plan {
    ratio_rounds: usize,
    slow_rounds: usize,
    concurrent: usize,
    /// Deltas of each concurrent run's answer (10 ms apart).
    load_deltas: usize,
    commits: usize,
    continues: usize,
}

impl Plan {
    fn full() -> Self {
        Self {
            ratio_rounds: 20,
            slow_rounds: 5,
            concurrent: 1_000,
            load_deltas: 200,
            commits: 100,
            continues: 7,
        }
    }

    fn quick() -> Self {
        Self {
            ratio_rounds: 5,
            slow_rounds: 1,
            concurrent: 100,
            load_deltas: 200,
            commits: 20,
            continues: 3,
        }
    }
}

/// One backend's figures.
#[derive(Default)]
struct Report {
    start: Duration,
    idle_rss_kb: u64,
    slow_ratio: f64,
    slow: (Duration, Duration),
    fast_ratio: f64,
    fast: (Duration, Duration),
    load_p50: Duration,
    load_p99: Duration,
    /// The same concurrent reads straight from the mock: what the machine and the load
    /// generator alone allow.
    direct_p50: Duration,
    direct_p99: Duration,
    load_errors: usize,
    load_runs: usize,
    load_rss_kb: u64,
    /// CPU seconds the service and this process (mock LLM + clients) used during the load.
    load_cpu: (f64, f64),
    /// CPU seconds this process (mock LLM + readers) used for the direct reads: what
    /// sending and receiving the same deltas costs on this machine with no service between.
    direct_cpu: f64,
    commit_p50: Duration,
    commit_p99: Duration,
    continue_small: Duration,
    continue_large: Duration,
    errors: Vec<String>,
}

/// The service as a child process.
struct Service {
    child: Child,
    base: String,
    client: reqwest::Client,
    dir: PathBuf,
}

impl Service {
    async fn start(bin: &Path, dir: &Path, vars: &[(&str, String)]) -> (Self, Duration) {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cmd = Command::new(bin);
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOST", "127.0.0.1")
            .env("PORT", port.to_string())
            .env("AUTH_TOKEN", TOKEN)
            .env("STATE_STORE_PATH", dir.join("state"))
            .env("RUST_LOG", "warn")
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(2_000)
            .build()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        let child = cmd.spawn().expect("the service binary starts");
        loop {
            if let Ok(r) = client.get(format!("{base}/api/health")).send().await
                && r.status().is_success()
            {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the service did not become healthy"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let to_healthy = started.elapsed();
        (
            Self {
                child,
                base,
                client,
                dir: dir.join("state"),
            },
            to_healthy,
        )
    }

    fn cpu_secs(&self) -> f64 {
        self.child
            .id()
            .map_or(0.0, |pid| cpu_secs(&format!("/proc/{pid}/stat")))
    }

    fn rss_kb(&self) -> u64 {
        let Some(pid) = self.child.id() else { return 0 };
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|n| n.parse().ok())
            })
            .unwrap_or(0)
    }

    async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn json(&self, path: &str, body: Value) -> Value {
        let resp = self.post(path, body).await;
        let status = resp.status();
        let value: Value = resp.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{path}: {status}: {value}");
        value
    }
}

/// A read SSE (or plain streamed) body.
struct Read {
    total: Duration,
    first_delta: Option<Duration>,
    frames: usize,
    body_tail: String,
}

/// Reads a streamed body to its end: frames counted, the first content delta noted, the
/// last bytes kept (for the terminal event). The same reader serves both sides of a ratio.
async fn read(resp: reqwest::Response, started: Instant) -> Read {
    let mut body = resp.bytes_stream();
    let mut frames = 0;
    let mut first_delta = None;
    let mut tail = String::new();
    while let Some(chunk) = body.next().await {
        let Ok(chunk) = chunk else { break };
        let text = String::from_utf8_lossy(&chunk);
        frames += text.matches("\n\n").count();
        if first_delta.is_none() && (text.contains("content_delta") || text.contains("\"delta\"")) {
            first_delta = Some(started.elapsed());
        }
        tail.push_str(&text);
        if tail.len() > 4_096 {
            tail.drain(..tail.len() - 2_048);
        }
    }
    Read {
        total: started.elapsed(),
        first_delta,
        frames,
        body_tail: tail,
    }
}

async fn direct(client: &reqwest::Client, mock: &MockLlm) -> Read {
    let started = Instant::now();
    let resp = client
        .post(format!("{}/chat/completions", mock.base_url()))
        .bearer_auth("sk-bench")
        .json(&json!({"model": "bench", "stream": true,
                      "messages": [{"role": "user", "content": "go"}]}))
        .send()
        .await
        .unwrap();
    read(resp, started).await
}

/// A run through the service over sse, read to its end; `Err` unless it completed.
async fn run(svc: &Service, body: Value) -> Result<Read, String> {
    run_at(svc, "/api/conversations/run/stream", body).await
}

/// A run started at `path` over sse, read to its end; `Err` unless it completed.
async fn run_at(svc: &Service, path: &str, body: Value) -> Result<Read, String> {
    let started = Instant::now();
    let resp = svc.post(path, body).await;
    if !resp.status().is_success() {
        return Err(format!("{path}: {}", resp.status()));
    }
    let r = read(resp, started).await;
    if r.body_tail.contains("event: run_completed") {
        Ok(r)
    } else {
        Err(format!(
            "{path}: no run_completed after {} frames",
            r.frames
        ))
    }
}

fn new_run() -> Value {
    json!({"preset_id": "bench", "input": [{"type": "text", "text": "go"}]})
}

/// utime + stime of a process, from its `/proc/…/stat`, in seconds.
fn cpu_secs(stat_path: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(stat_path) else {
        return 0.0;
    };
    // Fields after the `(comm)`: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // USER_HZ is 100 on Linux.
    (ticks(11) + ticks(12)) / 100.0
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    let at = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
    v[at]
}

/// Median direct and through-service totals for the mock's current default answer.
async fn ratio(
    svc: &Service,
    mock: &MockLlm,
    rounds: usize,
    r: &mut Report,
) -> (Duration, Duration) {
    // Warm both paths (connections, the preset cache of the OS).
    let _ = direct(&svc.client, mock).await;
    let _ = run(svc, new_run()).await;
    let (mut d, mut s) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        d.push(direct(&svc.client, mock).await.total);
        match run(svc, new_run()).await {
            Ok(read) => s.push(read.total),
            Err(e) => r.errors.push(format!("ratio run: {e}")),
        }
    }
    if s.is_empty() {
        return (median(d), Duration::ZERO);
    }
    (median(d), median(s))
}

/// `n` concurrent reads of the mock's answer, without the service.
async fn load_direct(svc: &Arc<Service>, mock: &Arc<MockLlm>, n: usize, r: &mut Report) {
    let cpu_before = cpu_secs("/proc/self/stat");
    let reads = (0..n).map(|_| {
        let (svc, mock) = (svc.clone(), mock.clone());
        tokio::spawn(async move { direct(&svc.client, &mock).await.total })
    });
    let mut times: Vec<Duration> = futures::future::join_all(reads)
        .await
        .into_iter()
        .filter_map(Result::ok)
        .collect();
    r.direct_cpu = cpu_secs("/proc/self/stat") - cpu_before;
    if !times.is_empty() {
        r.direct_p50 = percentile(&mut times, 0.5);
        r.direct_p99 = percentile(&mut times, 0.99);
    }
}

async fn load(svc: &Arc<Service>, n: usize, r: &mut Report) {
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (svc, peak) = (svc.clone(), peak.clone());
        tokio::spawn(async move {
            loop {
                peak.fetch_max(svc.rss_kb(), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let cpu_before = (svc.cpu_secs(), cpu_secs("/proc/self/stat"));
    let runs = (0..n).map(|_| {
        let svc = svc.clone();
        tokio::spawn(async move { run(&svc, new_run()).await.map(|read| read.total) })
    });
    let results = futures::future::join_all(runs).await;
    sampler.abort();
    r.load_cpu = (
        svc.cpu_secs() - cpu_before.0,
        cpu_secs("/proc/self/stat") - cpu_before.1,
    );
    let mut times = Vec::new();
    for result in results {
        match result {
            Ok(Ok(t)) => times.push(t),
            Ok(Err(e)) => {
                r.load_errors += 1;
                if r.errors.len() < 5 {
                    r.errors.push(format!("concurrent run: {e}"));
                }
            }
            Err(e) => {
                r.load_errors += 1;
                r.errors.push(format!("concurrent run panicked: {e}"));
            }
        }
    }
    r.load_runs = n;
    r.load_rss_kb = peak.load(Ordering::Relaxed);
    if !times.is_empty() {
        r.load_p50 = percentile(&mut times, 0.5);
        r.load_p99 = percentile(&mut times, 0.99);
    }
}

/// A committed session of a fresh conversation whose state is replaced by `messages`
/// messages (user and assistant alternating); returns its conversation and session ids.
async fn planted(svc: &Service, store: &OpendalStateStore, messages: usize) -> (String, String) {
    let resp = svc
        .json(
            "/api/conversations/run",
            json!({"preset_id": "bench", "input": [{"type": "text", "text": "plant"}]}),
        )
        .await;
    let session = resp["session_id"].as_str().unwrap().to_owned();
    let conversation = resp["conversation_id"].as_str().unwrap().to_owned();
    loop {
        let status = svc
            .client
            .get(format!("{}/api/sessions/{session}/status", svc.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap();
        if status["status"] != "executing" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let history = (0..messages)
        .map(|i| {
            let text = format!("message {i}: some words of an ordinary conversation turn");
            if i % 2 == 0 {
                ModelMessage::User {
                    parts: vec![UserPart::Text { text }],
                }
            } else {
                ModelMessage::Assistant {
                    parts: vec![AssistantPart::Text { text }],
                }
            }
        })
        .collect();
    let state = SessionState {
        message_history: history,
        ..SessionState::default()
    };
    store
        .save_state(&session.as_str().into(), &state)
        .await
        .unwrap();
    (conversation, session)
}

/// A fork of `session`, read to its end over sse.
async fn fork(svc: &Service, conversation: &str, session: &str) -> Result<Read, String> {
    run_at(
        svc,
        &format!("/api/conversations/{conversation}/fork/stream"),
        json!({"from_session_id": session, "input": [{"type": "text", "text": "more"}]}),
    )
    .await
}

/// The gap between the last event before finalize and `run_completed`, from the
/// timestamps the service put on the events at the stream's end.
fn commit_gap(tail: &str) -> Option<Duration> {
    let stamps: Vec<(String, chrono::DateTime<chrono::FixedOffset>)> = tail
        .split("\n\n")
        .filter_map(|frame| {
            let data = frame.lines().find_map(|l| l.strip_prefix("data: "))?;
            let v: Value = serde_json::from_str(data).ok()?;
            let at = chrono::DateTime::parse_from_rfc3339(v["timestamp"].as_str()?).ok()?;
            Some((v["event_type"].as_str()?.to_owned(), at))
        })
        .collect();
    let done = stamps.iter().position(|(t, _)| t == "run_completed")?;
    let before = stamps.get(done.checked_sub(1)?)?;
    (stamps[done].1 - before.1).to_std().ok()
}

async fn commits(svc: &Service, store: &OpendalStateStore, n: usize, r: &mut Report) {
    let (conversation, session) = planted(svc, store, 200).await;
    let mut gaps = Vec::new();
    for _ in 0..n {
        match fork(svc, &conversation, &session).await {
            Ok(read) => match commit_gap(&read.body_tail) {
                Some(gap) => gaps.push(gap),
                None => r
                    .errors
                    .push("commit: no timestamps in the tail".to_owned()),
            },
            Err(e) => r.errors.push(e),
        }
    }
    if !gaps.is_empty() {
        r.commit_p50 = percentile(&mut gaps, 0.5);
        r.commit_p99 = percentile(&mut gaps, 0.99);
    }
}

async fn continues(svc: &Service, store: &OpendalStateStore, n: usize, r: &mut Report) {
    let (small_conv, small) = planted(svc, store, 2).await;
    let (large_conv, large) = planted(svc, store, 5_000).await;
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..n {
        for (conv, session, into) in [(&small_conv, &small, &mut a), (&large_conv, &large, &mut b)]
        {
            match fork(svc, conv, session).await {
                Ok(read) => into.push(read.first_delta.unwrap_or(read.total)),
                Err(e) => r.errors.push(e),
            }
        }
    }
    if !a.is_empty() && !b.is_empty() {
        r.continue_small = median(a);
        r.continue_large = median(b);
    }
}

async fn bench(
    bin: &Path,
    mock: &Arc<MockLlm>,
    vars: Vec<(&str, String)>,
    plan: Plan,
    load_only: bool,
) -> Report {
    let dir = tempfile::tempdir().unwrap();
    let mut vars = vars;
    vars.push(("OPENAI_API_KEY", "sk-bench".to_owned()));
    vars.push(("OPENAI_BASE_URL", mock.base_url()));
    let mut r = Report::default();
    let (svc, start) = Service::start(bin, dir.path(), &vars).await;
    r.start = start;
    tokio::time::sleep(Duration::from_millis(500)).await;
    r.idle_rss_kb = svc.rss_kb();
    svc.json(
        "/api/presets/create",
        json!({"preset_id": "bench", "name": "Bench",
               "model": {"name": "openai:bench", "context_window": 4_000_000}}),
    )
    .await;

    if load_only {
        mock.set_default(DefaultAnswer {
            deltas: plan.load_deltas,
            delay: Duration::from_millis(10),
        });
        let svc = Arc::new(svc);
        load_direct(&svc, mock, plan.concurrent, &mut r).await;
        load(&svc, plan.concurrent, &mut r).await;
        return r;
    }
    mock.set_default(DefaultAnswer {
        deltas: 1_000,
        delay: Duration::from_millis(1),
    });
    r.slow = ratio(&svc, mock, plan.slow_rounds, &mut r).await;
    r.slow_ratio = r.slow.1.as_secs_f64() / r.slow.0.as_secs_f64();
    mock.set_default(DefaultAnswer {
        deltas: 1_000,
        delay: Duration::ZERO,
    });
    r.fast = ratio(&svc, mock, plan.ratio_rounds, &mut r).await;
    r.fast_ratio = r.fast.1.as_secs_f64() / r.fast.0.as_secs_f64();

    mock.set_default(DefaultAnswer {
        deltas: 200,
        delay: Duration::from_millis(10),
    });
    let svc = Arc::new(svc);
    load_direct(&svc, mock, plan.concurrent, &mut r).await;
    load(&svc, plan.concurrent, &mut r).await;

    mock.set_default(DefaultAnswer {
        deltas: 5,
        delay: Duration::ZERO,
    });
    let store = OpendalStateStore::local(&svc.dir).unwrap();
    commits(&svc, &store, plan.commits, &mut r).await;
    continues(&svc, &store, plan.continues, &mut r).await;
    drop(svc);
    drop(dir);
    r
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1_000.0)
}

fn mb(kb: u64) -> String {
    format!("{:.1} MB", kb as f64 / 1_024.0)
}

/// One table cell per backend, joined.
fn column(reports: &[(&str, Report)], f: &dyn Fn(&Report) -> String) -> String {
    reports
        .iter()
        .map(|(_, r)| f(r))
        .collect::<Vec<_>>()
        .join(" | ")
}

fn print(plan: Plan, reports: &[(&str, Report)]) {
    let col = |f: &dyn Fn(&Report) -> String| column(reports, f);
    let names: Vec<&str> = reports.iter().map(|(n, _)| *n).collect();
    println!("| measure | budget | {} |", names.join(" | "));
    println!("| --- | --- |{}", " --- |".repeat(reports.len()));
    println!(
        "| start to healthy | ≤ 200 ms | {} |",
        col(&|r| ms(r.start))
    );
    println!("| idle RSS | ≤ 30 MB | {} |", col(&|r| mb(r.idle_rss_kb)));
    println!(
        "| 1,000 deltas 1 ms apart: run ÷ mock read directly | ≤ 1.05 | {} |",
        col(&|r| format!("{:.3} ({} / {})", r.slow_ratio, ms(r.slow.1), ms(r.slow.0)))
    );
    println!(
        "| 1,000 deltas no delay, insert and commit included: run ÷ mock | ≤ 5 | {} |",
        col(&|r| format!("{:.2} ({} / {})", r.fast_ratio, ms(r.fast.1), ms(r.fast.0)))
    );
    print_load(plan, reports);
    println!(
        "| commit of a 200-message session (p99) | ≤ 20 ms | {} |",
        col(&|r| format!("{} (p50 {})", ms(r.commit_p99), ms(r.commit_p50)))
    );
    println!(
        "| continue a 5,000-message session: added latency | ≤ 50 ms | {} |",
        col(&|r| format!(
            "{} ({} vs {} to the first delta)",
            ms(r.continue_large.saturating_sub(r.continue_small)),
            ms(r.continue_large),
            ms(r.continue_small)
        ))
    );
}

/// The rows of the concurrent runs.
fn print_load(plan: Plan, reports: &[(&str, Report)]) {
    let col = |f: &dyn Fn(&Report) -> String| column(reports, f);
    let per_run =
        |cpu: f64, r: &Report| format!("{:.2} ms", cpu * 1000.0 / r.load_runs.max(1) as f64);
    println!(
        "| {} concurrent runs, 200 deltas 10 ms apart: p99 ÷ 2.0 s | ≤ 1.15, no errors | {} |",
        plan.concurrent,
        col(&|r| format!(
            "{:.3} (p50 {}, p99 {}, {} errors)",
            r.load_p99.as_secs_f64() / 2.0,
            ms(r.load_p50),
            ms(r.load_p99),
            r.load_errors
        ))
    );
    println!(
        "| the same reads of the mock directly, no service (reference) | | {} |",
        col(&|r| format!("p50 {}, p99 {}", ms(r.direct_p50), ms(r.direct_p99)))
    );
    println!(
        "| RSS during the concurrent runs (peak) | ≤ 300 MB | {} |",
        col(&|r| mb(r.load_rss_kb))
    );
    println!(
        "| CPU during the concurrent runs: service / mock LLM + clients | (2 cores) | {} |",
        col(&|r| format!("{:.1} s / {:.1} s", r.load_cpu.0, r.load_cpu.1))
    );
    println!(
        "| service CPU per concurrent run | | {} |",
        col(&|r| per_run(r.load_cpu.0, r))
    );
    println!(
        "| mock LLM + readers CPU per direct read, no service (reference) | | {} |",
        col(&|r| per_run(r.direct_cpu, r))
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let load_only = args.iter().any(|a| a == "--load-only");
    let concurrent = args
        .iter()
        .find_map(|a| a.strip_prefix("--concurrent="))
        .map(|n| n.parse::<usize>().expect("--concurrent=N takes a number"));
    let only_local = args.iter().any(|a| a == "--local-only");
    let mut plan = if quick { Plan::quick() } else { Plan::full() };
    if let Some(n) = concurrent {
        plan.concurrent = n;
    }
    if let Some(n) = args.iter().find_map(|a| a.strip_prefix("--deltas=")) {
        plan.load_deltas = n.parse().expect("--deltas=N takes a number");
    }
    let bin = PathBuf::from(
        std::env::var("AGENT_RUNTIME_BIN")
            .unwrap_or_else(|_| "target/release/agent-runtime".into()),
    );
    let bin = bin
        .canonicalize()
        .unwrap_or_else(|e| panic!("no service binary at {}: {e}", bin.display()));
    let mock = Arc::new(MockLlm::start().await);

    let mut reports = Vec::new();
    eprintln!("benchmarking SQLite + in-process bus + local files …");
    reports.push((
        "SQLite + in-process",
        bench(&bin, &mock, Vec::new(), plan, load_only).await,
    ));
    if !only_local {
        let redis =
            std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        match PgSchema::create("bench").await {
            Some(schema) => {
                eprintln!("benchmarking PostgreSQL + Redis …");
                let vars = vec![("DATABASE_URL", schema.url.clone()), ("REDIS_URL", redis)];
                reports.push((
                    "PostgreSQL + Redis",
                    bench(&bin, &mock, vars, plan, load_only).await,
                ));
            }
            None => eprintln!("PostgreSQL is not reachable: only the SQLite column"),
        }
    }
    println!(
        "\nagent-runtime benchmark ({}), {} cores\n",
        if quick { "quick" } else { "full" },
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    print(plan, &reports);
    let (plain, sandboxed) = shell_cost(&bin, if quick { 20 } else { 200 }).await;
    println!(
        "| shell call: sandboxed − plain (median) | < 5 ms | {} ({} vs {}) |",
        ms(sandboxed.saturating_sub(plain)),
        ms(sandboxed),
        ms(plain)
    );
    let errors: Vec<&String> = reports.iter().flat_map(|(_, r)| &r.errors).collect();
    if !errors.is_empty() {
        eprintln!("\nerrors:");
        for e in &errors {
            eprintln!("  {e}");
        }
        std::process::exit(1);
    }
}

/// Median time of one `true` shell call, plain and through the sandbox helper of `bin`,
/// with the settings the service itself uses (Landlock where available, a pids cgroup
/// where the machine offers one).
async fn shell_cost(bin: &Path, rounds: usize) -> (Duration, Duration) {
    use adapters::environment::{HostEnvironments, SYSTEM_READ_PATHS, SandboxSettings};
    use adapters::shell::sandbox::{self, Rlimits, cgroup::CgroupRoot};
    use ports::{EnvironmentFactory, EnvironmentSpec, ShellRequest};

    let dir = tempfile::tempdir().unwrap();
    let spec = EnvironmentSpec {
        default_path: dir.path().display().to_string(),
        ..EnvironmentSpec::default()
    };
    let sandboxed = HostEnvironments::new().with_sandbox(SandboxSettings {
        helper: bin.to_path_buf(),
        read_paths: SYSTEM_READ_PATHS.iter().map(PathBuf::from).collect(),
        rlimits: Rlimits::default(),
        landlock: sandbox::landlock_available(),
        required: false,
        cgroups: CgroupRoot::detect("bench"),
    });
    let mut medians = Vec::new();
    for factory in [HostEnvironments::new(), sandboxed] {
        let env = factory.open(&spec).await.unwrap();
        let mut times = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let request = ShellRequest {
                command: "true".into(),
                cwd: dir.path().display().to_string(),
                env: vec![("PATH".into(), "/usr/bin:/bin".into())],
                timeout: Duration::from_secs(10),
                output_cap: 1000,
            };
            let started = Instant::now();
            let out = env.shell.run(request).await.unwrap();
            times.push(started.elapsed());
            assert_eq!(out.exit_code, Some(0), "{out:?}");
        }
        medians.push(median(times));
    }
    (medians[0], medians[1])
}
