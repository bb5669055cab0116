//! The security boundary's start-time half (spec 02): which files are the service's own,
//! where agents work, how shell commands are confined, and the bearer token kept on disk.
//! Every refusal here stops the start with one line naming the variable.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use adapters::environment::{SYSTEM_READ_PATHS, SandboxSettings};
use adapters::protected::{ProtectedPaths, real_path};
use adapters::shell::sandbox::{self, cgroup::CgroupRoot};

use crate::config::{Config, ConfigError, DatabaseConfig, MIN_TOKEN_LEN, StateStoreConfig};

/// Name of the generated token's file in the data directory.
pub const TOKEN_FILE: &str = "auth_token";

/// What the rest of the wiring needs from the boundary.
#[derive(Debug)]
pub struct Boundary {
    pub protected: ProtectedPaths,
    /// `WORKSPACE_ROOT`, created and resolved.
    pub workspace_root: PathBuf,
    pub sandbox: SandboxSettings,
}

fn refuse(var: &str, reason: String) -> ConfigError {
    ConfigError {
        var: var.to_owned(),
        reason,
    }
}

/// Resolves the protected paths, creates the workspace root and checks that neither it
/// nor a sandbox read path reaches the service's own files.
pub fn prepare(config: &Config) -> Result<Boundary, ConfigError> {
    let protected = ProtectedPaths::new(own_files(config))
        .map_err(|e| refuse("PROTECTED_PATHS", format!("cannot resolve: {e}")))?;
    let workspace_root = workspace_root(&config.workspace_root, &protected)?;
    let mut read_paths: Vec<PathBuf> = SYSTEM_READ_PATHS.iter().map(PathBuf::from).collect();
    read_paths.extend(config.sandbox.read_paths.iter().cloned());
    for path in &read_paths {
        if let Some(hit) = protected.overlapping(path) {
            return Err(refuse(
                "SANDBOX_READ_PATHS",
                format!(
                    "the sandbox read path {} contains the service's own files ({}): move \
                     them, or narrow SANDBOX_READ_PATHS",
                    path.display(),
                    hit.display()
                ),
            ));
        }
    }
    let helper = match &config.sandbox.helper {
        Some(helper) => helper.clone(),
        None => std::env::current_exe()
            .map_err(|e| refuse("SANDBOX_HELPER", format!("cannot find this binary: {e}")))?,
    };
    Ok(Boundary {
        protected,
        workspace_root,
        sandbox: SandboxSettings {
            helper,
            read_paths,
            rlimits: config.sandbox.rlimits,
            landlock: sandbox::landlock_available(),
            required: config.sandbox.required,
            cgroups: CgroupRoot::detect(&instance_name(&data_dir(config))),
        },
    })
}

/// The service's own files: the data directory, the database and its journals, the `.env`
/// it reads, the token file, and `PROTECTED_PATHS`.
fn own_files(config: &Config) -> Vec<PathBuf> {
    let mut paths = vec![PathBuf::from(".env"), data_dir(config).join(TOKEN_FILE)];
    if let StateStoreConfig::Local { root } = &config.state_store {
        paths.push(root.clone());
    }
    if let DatabaseConfig::Sqlite { path } = &config.database {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            paths.push(PathBuf::from(format!("{path}{suffix}")));
        }
    }
    paths.extend(config.protected_paths.iter().cloned());
    paths
}

/// Where the service keeps its own state: the local state store's root, else `./data`.
pub fn data_dir(config: &Config) -> PathBuf {
    match &config.state_store {
        StateStoreConfig::Local { root } => root.clone(),
        StateStoreConfig::S3 { .. } => PathBuf::from("./data"),
    }
}

fn workspace_root(root: &Path, protected: &ProtectedPaths) -> Result<PathBuf, ConfigError> {
    if let Some(hit) = protected.overlapping(root) {
        return Err(refuse(
            "WORKSPACE_ROOT",
            format!(
                "{} reaches the service's own files ({}): choose a directory apart from them",
                root.display(),
                hit.display()
            ),
        ));
    }
    std::fs::create_dir_all(root)
        .and_then(|()| real_path(root))
        .map_err(|e| refuse("WORKSPACE_ROOT", format!("{}: {e}", root.display())))
}

/// A stable name for this service's command cgroups, from its data directory.
fn instance_name(data_dir: &Path) -> String {
    let real = real_path(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    // FNV-1a: stable across builds, unlike std's hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in real.to_string_lossy().bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// The token the service uses when `AUTH_TOKEN` is unset: read from the data directory,
/// or generated and written there (mode 0600) so it survives restarts.
///
/// # Errors
/// The file cannot be read or written, or holds a token too short to trust.
pub fn stored_token(config: &Config) -> Result<String, ConfigError> {
    let dir = data_dir(config);
    let path = dir.join(TOKEN_FILE);
    let var = "AUTH_TOKEN";
    match std::fs::read_to_string(&path) {
        Ok(stored) => {
            let token = stored.trim().to_owned();
            if token.chars().count() < MIN_TOKEN_LEN {
                return Err(refuse(
                    var,
                    format!(
                        "{} holds a token shorter than {MIN_TOKEN_LEN} characters: delete it to generate a new one",
                        path.display()
                    ),
                ));
            }
            Ok(token)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let token = generate_token();
            std::fs::create_dir_all(&dir)
                .and_then(|()| {
                    let mut file = std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(0o600)
                        .open(&path)?;
                    file.write_all(token.as_bytes())
                })
                .map_err(|e| refuse(var, format!("cannot write {}: {e}", path.display())))?;
            Ok(token)
        }
        Err(e) => Err(refuse(var, format!("cannot read {}: {e}", path.display()))),
    }
}

/// 244 random bits as 64 hex characters.
fn generate_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path, extra: &[(&str, String)]) -> Config {
        let mut vars = vec![
            (
                "DATABASE_URL".to_owned(),
                format!("sqlite://{}/data/runtime.db", dir.display()),
            ),
            (
                "STATE_STORE_PATH".to_owned(),
                dir.join("data").display().to_string(),
            ),
            (
                "WORKSPACE_ROOT".to_owned(),
                dir.join("workspace").display().to_string(),
            ),
        ];
        vars.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
        Config::from_vars(vars).unwrap()
    }

    #[test]
    fn the_workspace_root_is_created_apart_from_the_data() {
        let dir = tempfile::tempdir().unwrap();
        let b = prepare(&config(dir.path(), &[])).unwrap();
        let real = std::fs::canonicalize(dir.path()).unwrap();
        assert_eq!(b.workspace_root, real.join("workspace"));
        assert!(b.workspace_root.is_dir());
        let protected = b.protected.paths();
        for own in ["data", "data/runtime.db-wal", "data/auth_token"] {
            assert!(
                protected.iter().any(|p| real.join(own).starts_with(p)),
                "{own} in {protected:?}"
            );
        }
    }

    #[test]
    fn a_workspace_root_holding_the_data_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().display().to_string();
        let err = prepare(&config(dir.path(), &[("WORKSPACE_ROOT", root)])).unwrap_err();
        assert_eq!(err.var, "WORKSPACE_ROOT");
        let extra = dir.path().join("workspace/keys");
        let err = prepare(&config(
            dir.path(),
            &[("PROTECTED_PATHS", extra.display().to_string())],
        ))
        .unwrap_err();
        assert_eq!(err.var, "WORKSPACE_ROOT", "{err}");
    }

    #[test]
    fn a_sandbox_read_path_holding_the_data_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = prepare(&config(
            dir.path(),
            &[("SANDBOX_READ_PATHS", dir.path().display().to_string())],
        ))
        .unwrap_err();
        assert_eq!(err.var, "SANDBOX_READ_PATHS");
        assert!(err.reason.contains("data"), "{err}");
    }

    #[test]
    fn a_generated_token_is_stored_private_and_reused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let c = config(dir.path(), &[]);
        let first = stored_token(&c).unwrap();
        assert_eq!(first.len(), 64);
        let path = dir.path().join("data").join(TOKEN_FILE);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(stored_token(&c).unwrap(), first);
        std::fs::write(&path, "short").unwrap();
        assert_eq!(stored_token(&c).unwrap_err().var, "AUTH_TOKEN");
    }
}
