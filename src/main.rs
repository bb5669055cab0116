//! The `agent-runtime` command: `serve` (default), `migrate`, `openapi`.

use std::{net::SocketAddr, process::ExitCode};

use adapters::shell::sandbox::{HELPER_SUBCOMMAND, helper};
use agent_runtime::{
    api, app, boundary,
    config::{Config, LogFormat, file as config_file, variables},
};
use clap::{Arg, ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "agent-runtime",
    version,
    about = "Runs LLM agents behind one HTTP API",
    after_help = "Every setting is a flag and an environment variable; a flag wins over the \
                  environment, which wins over --config, which wins over ./.env. Gateways are \
                  set by {NAME}_API_KEY and {NAME}_BASE_URL; RUST_LOG sets the log filter."
)]
struct Cli {
    /// A settings file: TOML (`.toml`: `PORT = 8080`, lists for comma-separated values) or
    /// `.env` lines (`PORT=8080`).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

/// The command line: the subcommands and `--config`, plus one flag per setting, each
/// backed by its environment variable (shown by `--help` without its value: some are
/// secrets).
fn command_line() -> clap::Command {
    let settings = variables::VARIABLES.iter().map(|v| {
        let help = if v.default.is_empty() {
            v.help.to_owned()
        } else {
            format!("{} [default: {}]", v.help, v.default)
        };
        Arg::new(v.name)
            .long(variables::flag_of(v.name))
            .env(v.name)
            .hide_env_values(true)
            .value_name("VALUE")
            .global(true)
            .help(help)
    });
    Cli::command().args(settings)
}

/// The settings given as flags or environment variables.
fn given_settings(matches: &ArgMatches) -> Vec<(String, String)> {
    variables::VARIABLES
        .iter()
        .filter_map(|v| {
            let value = matches.get_one::<String>(v.name)?;
            Some((v.name.to_owned(), value.clone()))
        })
        .collect()
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Print the OpenAPI document.
    Openapi {
        /// YAML instead of JSON.
        #[arg(long)]
        yaml: bool,
    },
}

fn main() -> ExitCode {
    // The shell sandbox helper: the service re-executes itself to confine one command
    // (adapters::shell::sandbox). Checked before anything else so it starts fast.
    let mut args = std::env::args_os();
    if args.nth(1).as_deref() == Some(HELPER_SUBCOMMAND.as_ref()) {
        let code = helper::main(args.collect());
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    let matches = command_line().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    if let Some(Command::Openapi { yaml }) = cli.command {
        let document = if yaml {
            api::spec_yaml()
        } else {
            api::spec_json()
        };
        return print_document(&document);
    }
    let config = match load_config(cli.config.as_deref(), given_settings(&matches)) {
        Ok(config) => config,
        Err(line) => {
            eprintln!("configuration error: {line}");
            return ExitCode::from(2);
        }
    };
    if !matches!(cli.command, Some(Command::Migrate))
        && let Err(e) = boundary::prepare(&config)
    {
        eprintln!("configuration error: {e}");
        return ExitCode::from(2);
    }
    init_tracing(config.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Some(Command::Migrate) => {
                let n = app::migrate(&config).await?;
                println!("applied {n} migration(s)");
                Ok(())
            }
            _ => serve(config).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Writes the document to stdout. A reader that stops early (`| head`) closes the pipe:
/// that ends the command quietly instead of panicking as `println!` would.
fn print_document(document: &str) -> ExitCode {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out
        .write_all(document.as_bytes())
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: writing the document: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The settings: flags over the environment over `--config` over `./.env`.
fn load_config(
    file: Option<&std::path::Path>,
    given: Vec<(String, String)>,
) -> Result<Config, String> {
    let mut vars: Vec<(String, String)> = match dotenvy::from_path_iter(".env") {
        Ok(iter) => iter
            .collect::<Result<_, _>>()
            .map_err(|e| format!(".env: {e}"))?,
        Err(e) if e.not_found() => Vec::new(),
        Err(e) => return Err(format!(".env: {e}")),
    };
    if let Some(file) = file {
        vars.extend(
            config_file::read(file).map_err(|e| format!("--config {}: {e}", file.display()))?,
        );
    }
    vars.extend(std::env::vars());
    vars.extend(given);
    Config::from_vars(vars).map_err(|e| e.to_string())
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,poem=warn"));
    // Colour codes only for a person at a terminal, never into a file or a journal.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    // A non-dumpable process's /proc files (environ, mem, fd) are closed to processes of
    // the same non-root user: the agent's shell cannot read the service's secrets.
    if let Err(e) = nix::sys::prctl::set_dumpable(false) {
        tracing::warn!(error = %e, "could not make the service non-dumpable");
    }
    let app = app::build(&config).await?;
    if app.auth_token_generated {
        let token = app.auth_token();
        let file = boundary::data_dir(&config).join(boundary::TOKEN_FILE);
        tracing::warn!(
            token_starts = %token.chars().take(4).collect::<String>(),
            file = %file.display(),
            "AUTH_TOKEN is not set; using the generated token kept in the file named here"
        );
    }
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(config.host, config.port)).await?;
    let addr = listener.local_addr()?;
    println!("listening on http://{addr}");
    tracing::info!(%addr, docs = %format!("http://{addr}/docs"), "serving");
    app::serve(app, listener, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
    tracing::info!("shutting down");
}

#[cfg(test)]
mod tests {

    #[test]
    fn cli_is_well_formed() {
        super::command_line().debug_assert();
    }

    #[test]
    fn flags_give_settings() {
        let matches = super::command_line()
            .try_get_matches_from([
                "agent-runtime",
                "--port",
                "9000",
                "--host",
                "0.0.0.0",
                "serve",
            ])
            .unwrap();
        let given = super::given_settings(&matches);
        assert!(
            given.contains(&("PORT".to_owned(), "9000".to_owned())),
            "{given:?}"
        );
        assert!(
            given.contains(&("HOST".to_owned(), "0.0.0.0".to_owned())),
            "{given:?}"
        );
    }
}
