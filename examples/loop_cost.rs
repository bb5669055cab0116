//! What the agent loop adds to a 1,000-delta response: the same stream read directly and
//! through `Agent::run` (events emitted and serialized as the transport would), first from
//! memory (the loop's own cost), then over HTTP from the mock LLM through the OpenAI adapter.
//!
//! `cargo run --release --example loop_cost`

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a measuring tool")]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use agent_runtime::app;
use agent_runtime::config::Config;
use agent_runtime::core::agent::{Agent, AgentSpec, RetryPolicy, RunLimits};
use agent_runtime::core::environment::{Environment, ShellLimits};
use agent_runtime::core::run::{EventSink, RunControl};
use agent_runtime::core::tools::Toolbox;
use async_trait::async_trait;
use futures::StreamExt;
use mock_llm::{DefaultAnswer, MockLlm};
use ports::{
    EventPayload, ModelDelta, ModelError, ModelProvider, ModelRequest, ModelSettings, ModelStream,
    SessionState, Usage, UserPart,
};

const DELTAS: usize = 1_000;
const ROUNDS: usize = 30;

/// 1,000 text deltas from memory.
struct MemoryModel;

#[async_trait]
impl ModelProvider for MemoryModel {
    async fn stream(&self, _: &ModelRequest) -> Result<ModelStream, ModelError> {
        let deltas = (0..DELTAS)
            .map(|i| Ok(ModelDelta::Text(format!("w{i} "))))
            .chain([
                Ok(ModelDelta::Usage(Usage::default())),
                Ok(ModelDelta::Finish {
                    reason: "stop".into(),
                }),
            ]);
        Ok(futures::stream::iter(deltas).boxed())
    }
}

/// Serializes every event, as a transport would, and counts them.
#[derive(Default)]
struct SerializingSink {
    events: AtomicUsize,
    bytes: AtomicUsize,
}

impl EventSink for SerializingSink {
    fn emit(&self, _: &str, payload: EventPayload) {
        let json = serde_json::to_vec(&payload).unwrap();
        self.events.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(json.len(), Ordering::Relaxed);
    }
}

fn request(model: &str) -> ModelRequest {
    ModelRequest {
        model: model.into(),
        system: String::new(),
        messages: vec![],
        tools: vec![],
        temperature: None,
        max_tokens: None,
        ..Default::default()
    }
}

async fn direct(provider: &dyn ModelProvider, model: &str) -> Duration {
    let started = Instant::now();
    let mut stream = provider.stream(&request(model)).await.unwrap();
    let mut n = 0;
    while let Some(d) = stream.next().await {
        d.unwrap();
        n += 1;
    }
    assert!(n >= DELTAS);
    started.elapsed()
}

async fn through_loop(agent: &Agent) -> Duration {
    let sink = SerializingSink::default();
    let started = Instant::now();
    let out = agent
        .run(
            SessionState::default(),
            vec![UserPart::Text { text: "go".into() }],
            &RunControl::new(),
            &sink,
        )
        .await;
    let took = started.elapsed();
    assert!(
        sink.events.load(Ordering::Relaxed) > DELTAS,
        "{:?}",
        out.end
    );
    took
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

fn agent(provider: Arc<dyn ModelProvider>, model: &str) -> Agent {
    let dir = std::env::temp_dir();
    let env = Arc::new(Environment {
        workspace: Arc::new(adapters::workspace::LocalWorkspace::new(&dir, &[], None).unwrap()),
        shell: Arc::new(adapters::shell::LocalShell::new()),
        downloader: Arc::new(adapters::download::HttpDownloader::new(
            adapters::outbound::OutboundPolicy::default(),
            adapters::download::DEFAULT_DOWNLOAD_TIMEOUT,
        )),
        search: None,
        scraper: None,
        command_vars: vec![],
        limits: ShellLimits::default(),
        redactor: Default::default(),
        files: Default::default(),
    });
    Agent::new(
        provider,
        env,
        AgentSpec {
            agent_id: "main".into(),
            model: ModelSettings {
                name: model.into(),
                ..Default::default()
            },
            system_prompt: String::new(),
            toolbox: Toolbox::default(),
            limits: RunLimits::default(),
            retry: RetryPolicy::default(),
            deferral: Default::default(),
        },
    )
}

async fn measure(label: &str, provider: Arc<dyn ModelProvider>, model: &str) {
    let agent = agent(provider.clone(), model);
    // Warm up connections and allocators.
    direct(provider.as_ref(), model).await;
    through_loop(&agent).await;
    let mut d = Vec::new();
    let mut l = Vec::new();
    for _ in 0..ROUNDS {
        d.push(direct(provider.as_ref(), model).await);
        l.push(through_loop(&agent).await);
    }
    let (d, l) = (median(d), median(l));
    println!(
        "{label:<28} direct {:>9.3} ms   loop {:>9.3} ms   added {:>8.3} ms ({:.2} µs/delta, ratio {:.2})",
        d.as_secs_f64() * 1e3,
        l.as_secs_f64() * 1e3,
        (l.saturating_sub(d)).as_secs_f64() * 1e3,
        l.saturating_sub(d).as_secs_f64() * 1e6 / DELTAS as f64,
        l.as_secs_f64() / d.as_secs_f64()
    );
}

#[tokio::main]
async fn main() {
    println!("{DELTAS} deltas, median of {ROUNDS} rounds");
    measure("in memory", Arc::new(MemoryModel), "memory").await;

    let mock = MockLlm::bind(
        "127.0.0.1:0".parse().unwrap(),
        DefaultAnswer {
            deltas: DELTAS,
            delay: Duration::ZERO,
        },
    )
    .await
    .unwrap();
    let config = Config::from_vars([
        ("OPENAI_BASE_URL".to_owned(), mock.base_url()),
        ("OPENAI_API_KEY".to_owned(), "sk-bench".to_owned()),
    ])
    .unwrap();
    let provider = app::model_provider(&config).unwrap();
    measure("mock LLM over HTTP (OpenAI)", provider, "openai:bench").await;
}
