//! What the helper is told: the paths, the network switch, the limits and the cgroup. The
//! service writes it as one JSON argument; the helper trusts nothing else.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Resource limits of one command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rlimits {
    /// Largest file the command may write, bytes (`RLIMIT_FSIZE`).
    pub file_size: u64,
    /// Open file descriptors (`RLIMIT_NOFILE`).
    pub open_files: u64,
    /// CPU seconds (`RLIMIT_CPU`).
    pub cpu_seconds: u64,
    /// Processes: `pids.max` of the command's cgroup, and `RLIMIT_NPROC` for a non-root
    /// service (it does not bind root).
    pub processes: u64,
}

impl Default for Rlimits {
    fn default() -> Self {
        Self {
            file_size: 1 << 30,
            open_files: 1024,
            cpu_seconds: 600,
            processes: 512,
        }
    }
}

impl Rlimits {
    /// Parses `SHELL_RLIMITS`: comma-separated `name=value` with names `fsize` (bytes, with
    /// an optional K, M or G suffix), `nofile`, `cpu` (seconds) and `nproc`; unnamed limits
    /// keep their defaults.
    ///
    /// # Errors
    /// An unknown name or a value that is not a positive number.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut limits = Self::default();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (name, value) = item
                .split_once('=')
                .ok_or_else(|| format!("expected name=value, got {item}"))?;
            let value = parse_size(value.trim())
                .filter(|v| *v > 0)
                .ok_or_else(|| format!("{name}: not a positive number: {value}"))?;
            match name.trim() {
                "fsize" => limits.file_size = value,
                "nofile" => limits.open_files = value,
                "cpu" => limits.cpu_seconds = value,
                "nproc" => limits.processes = value,
                other => {
                    return Err(format!(
                        "unknown limit {other} (expected fsize, nofile, cpu or nproc)"
                    ));
                }
            }
        }
        Ok(limits)
    }
}

/// `123`, `64K`, `10M`, `1G` (powers of 1024).
fn parse_size(value: &str) -> Option<u64> {
    let (digits, unit) = match value.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (value.get(..i)?, Some(c)),
        _ => (value, None),
    };
    let n: u64 = digits.parse().ok()?;
    let factor: u64 = match unit.map(|c| c.to_ascii_uppercase()) {
        None => 1,
        Some('K') => 1 << 10,
        Some('M') => 1 << 20,
        Some('G') => 1 << 30,
        Some(_) => return None,
    };
    n.checked_mul(factor)
}

/// Everything the helper applies to itself before it starts the command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxPolicy {
    /// Landlock on (mode `workspace`) or off (mode `off`: capabilities, limits and the
    /// final kill still apply).
    pub landlock: bool,
    /// Read and execute (system directories, `SANDBOX_READ_PATHS`).
    pub read_paths: Vec<PathBuf>,
    /// Read, write and execute (the workspace roots and the run's temp dir).
    pub write_paths: Vec<PathBuf>,
    /// Device nodes the command may read and write (`/dev/null`, …; never raw disks).
    pub devices: Vec<PathBuf>,
    /// TCP connect and bind allowed.
    pub network: bool,
    pub rlimits: Rlimits,
    /// The per-command `pids` cgroup the helper joins first, when there is one.
    pub cgroup: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rlimits_parse_with_units_and_keep_defaults() {
        let r = Rlimits::parse("fsize=10M, nofile=64").unwrap();
        assert_eq!(r.file_size, 10 << 20);
        assert_eq!(r.open_files, 64);
        assert_eq!(r.cpu_seconds, Rlimits::default().cpu_seconds);
        assert_eq!(Rlimits::parse("").unwrap(), Rlimits::default());
        assert_eq!(Rlimits::parse("nproc=2G").unwrap().processes, 2 << 30);
    }

    #[test]
    fn bad_rlimits_are_refused() {
        for bad in [
            "fsize", "fsize=", "fsize=0", "fsize=-1", "fsize=1T", "mem=1", "cpu=x",
        ] {
            assert!(Rlimits::parse(bad).is_err(), "{bad}");
        }
    }
}
