//! Test support shared by the contract suites and the service's end-to-end tests:
//! per-test isolation (unique names, a PostgreSQL schema per test) and the rule that a
//! missing server is a visible SKIP, or a failure under `REQUIRE_SERVICES=1`. Compiled only
//! with the `testing` feature, which only dev-dependencies enable.

/// Called when a backend's server cannot be reached: a visible SKIP, or a failure when
/// `REQUIRE_SERVICES=1`. Returns `None` so the caller can bail out of the test.
pub fn skip_or_fail<T>(suite: &str, why: &str) -> Option<T> {
    if std::env::var("REQUIRE_SERVICES").is_ok_and(|v| v == "1") {
        panic!("{suite}: required service unavailable: {why}");
    }
    // Written to stderr directly rather than with `eprintln!`, which the test harness
    // captures: a skip must be visible in a passing run.
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!("SKIP {suite}: {why}\n").as_bytes(),
    );
    None
}

/// A short unique suffix for keys, schemas and prefixes so tests never share state.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

/// A PostgreSQL schema of its own for one test, dropped afterwards. The URL pins the
/// connection's `search_path` to it, so migrations and queries stay inside.
pub struct PgSchema {
    pub url: String,
    name: String,
    base: String,
}

impl PgSchema {
    /// Creates the schema on `TEST_DATABASE_URL` (default: the local server, database
    /// `test`); `None` (with a SKIP line) when the server cannot be reached.
    pub async fn create(prefix: &str) -> Option<Self> {
        let base = std::env::var("TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        Self::create_on(prefix, base).await
    }

    /// Creates the schema on the TLS-only server of `tests/tls/start.sh`
    /// (`TEST_PG_TLS_URL`, trusting `TEST_TLS_CA`); `None` (with a SKIP line) when it is
    /// not running.
    pub async fn create_tls(prefix: &str) -> Option<Self> {
        let (Ok(url), Ok(ca)) = (
            std::env::var("TEST_PG_TLS_URL"),
            std::env::var("TEST_TLS_CA"),
        ) else {
            return skip_or_fail(
                "postgres over TLS",
                "TEST_PG_TLS_URL / TEST_TLS_CA are not set (tests/tls/start.sh starts the server)",
            );
        };
        let sep = if url.contains('?') { '&' } else { '?' };
        Self::create_on(prefix, format!("{url}{sep}sslrootcert={ca}")).await
    }

    async fn create_on(prefix: &str, base: String) -> Option<Self> {
        let name = unique(&format!("ct_{prefix}"));
        if let Err(e) = execute(&base, &format!("CREATE SCHEMA {name}")).await {
            return skip_or_fail(&format!("postgres ({base})"), &e);
        }
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-c%20search_path%3D{name}");
        Some(Self { url, name, base })
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let (base, sql) = (
            self.base.clone(),
            format!("DROP SCHEMA {} CASCADE", self.name),
        );
        // Drop runs inside the test's runtime: do the async clean-up on a thread of its own.
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                let _ = rt.block_on(execute(&base, &sql));
            }
        })
        .join();
    }
}

async fn execute(url: &str, sql: &str) -> Result<(), String> {
    use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
    use futures::FutureExt;
    let tls = crate::sql::PgTls::parse(url)?;
    let connect = match tls.connector()? {
        None => AsyncPgConnection::establish(url).boxed(),
        Some(connector) => crate::sql::establish_tls(tls.url, connector),
    };
    let mut conn = tokio::time::timeout(std::time::Duration::from_secs(5), connect)
        .await
        .map_err(|_| "connect timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    conn.batch_execute(sql).await.map_err(|e| e.to_string())
}

/// A fake `docker` CLI for tests on machines without an engine, written into `dir` (its
/// path is returned). Each call logs its argv (one per line) and its own environment into
/// `dir/calls/<pid>.argv` / `.env` (read them with [`docker_shim_calls`]). `exec` into
/// container `missing` fails like the daemon; any other `exec` runs the command locally in
/// the `-w` directory with exactly the `-e` variables.
///
/// # Errors
/// Writing the script or its directory failed.
pub fn docker_shim(dir: &std::path::Path) -> std::io::Result<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let calls = dir.join("calls");
    std::fs::create_dir_all(&calls)?;
    let script = format!(
        r#"#!/bin/bash
log={calls}/$$
printf '%s\n' "$@" > "$log.argv"
env > "$log.env"
[ "$1" = exec ] || exit 2
shift
envs=()
wd=/
while [ $# -gt 0 ]; do
  case "$1" in
    -i) shift ;;
    -w) wd=$2; shift 2 ;;
    -e) envs+=("$2"); shift 2 ;;
    *) break ;;
  esac
done
container=$1
shift
if [ "$container" = missing ]; then
  echo "Error response from daemon: No such container: missing" >&2
  exit 1
fi
cd "$wd" || exit 126
exec /usr/bin/env -i "${{envs[@]}}" "$@"
"#,
        calls = calls.display()
    );
    let bin = dir.join("docker");
    std::fs::write(&bin, script)?;
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755))?;
    Ok(bin)
}

/// Every call the [`docker_shim`] in `dir` logged so far: (argv, environment of the CLI).
pub fn docker_shim_calls(dir: &std::path::Path) -> Vec<(Vec<String>, String)> {
    let Ok(entries) = std::fs::read_dir(dir.join("calls")) else {
        return Vec::new();
    };
    let mut calls = Vec::new();
    for path in entries.flatten().map(|e| e.path()) {
        if path.extension().is_some_and(|e| e == "argv") {
            let argv = std::fs::read_to_string(&path).unwrap_or_default();
            let env = std::fs::read_to_string(path.with_extension("env")).unwrap_or_default();
            calls.push((argv.lines().map(str::to_owned).collect(), env));
        }
    }
    calls
}
