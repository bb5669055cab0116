//! The built binary, started for an attack test: its own temp directory as working
//! directory, exactly the environment the test gives (plus an isolated database and a
//! token), a free port, and its log kept in `service.log` for the assertions and for
//! diagnosis.

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    path::PathBuf,
    process::{Child, Command, Stdio},
};

use reqwest::Method;

const BIN: &str = env!("CARGO_BIN_EXE_agent-runtime");

/// The token every served binary expects (long enough for any token-length rule).
pub const TOKEN: &str = "attack-token-0123456789abcdef";

/// A running binary; killed when dropped.
pub struct Served {
    child: Child,
    pub addr: SocketAddr,
    pub base: String,
    pub dir: tempfile::TempDir,
    pub client: reqwest::Client,
}

impl Served {
    /// Starts the binary with `env` over the defaults (SQLite in its directory, `PORT=0`,
    /// [`TOKEN`]) and waits for its `listening on` line.
    pub fn start(env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(dir.path().join("service.log")).unwrap();
        let mut child = Command::new(BIN)
            .current_dir(dir.path())
            .env_clear()
            .env("PORT", "0")
            .env("AUTH_TOKEN", TOKEN)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr: SocketAddr = line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .parse()
            .unwrap();
        Self {
            child,
            addr,
            base: format!("http://{addr}"),
            dir,
            client: reqwest::Client::new(),
        }
    }

    /// A request with the token.
    pub fn req(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
    }

    /// A path under the binary's working directory.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Creates a preset whose agent works in a fresh `workspace/agent` directory under the
    /// binary's working directory; `preset` is the body without `environment`. Returns the
    /// working directory.
    pub async fn create_preset(&self, mut preset: serde_json::Value) -> PathBuf {
        let work = self.path("workspace/agent");
        std::fs::create_dir_all(&work).unwrap();
        preset["environment"] = serde_json::json!({"default_path": work.display().to_string()});
        let resp = self
            .req(Method::POST, "/api/presets/create")
            .json(&preset)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        assert_eq!(status, 200, "{}", resp.text().await.unwrap());
        work
    }

    /// What the service logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path("service.log")).unwrap_or_default()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
