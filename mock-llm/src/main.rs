//! `mock-llm --port P --deltas N --delay-ms D`: serves the default answer (N text deltas
//! D ms apart) on both protocols forever, for benchmarks and manual tests. Histories a real
//! provider would refuse are answered 400 unless `--accept-any-history` is given.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use mock_llm::{DefaultAnswer, MockLlm};

#[derive(Parser)]
#[command(about = "Mock LLM server (OpenAI Chat Completions + Anthropic Messages, streaming)")]
struct Args {
    /// Port on 127.0.0.1 (0 = any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Text deltas per answer.
    #[arg(long, default_value_t = 100)]
    deltas: usize,
    /// Pause between deltas, in milliseconds.
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,
    /// Answer every request, even one whose history breaks a provider's rules.
    #[arg(long)]
    accept_any_history: bool,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let default = DefaultAnswer {
        deltas: args.deltas,
        delay: Duration::from_millis(args.delay_ms),
    };
    let mock = MockLlm::bind(SocketAddr::from(([127, 0, 0, 1], args.port)), default).await?;
    if args.accept_any_history {
        mock.accept_any_history();
    }
    println!("listening on {}", mock.base_url());
    // The server runs until the mock is dropped, which is never.
    std::future::pending::<()>().await;
    drop(mock);
    Ok(())
}
