//! One `pids` cgroup per command, where the machine lets the service create them (cgroup v1
//! `pids` controller, or v2 with `pids` delegated): `pids.max` bounds a fork bomb (root is
//! not bound by `RLIMIT_NPROC`), and `cgroup.procs` lists every process the command started
//! for the final kill, whatever it did to its process group or session.
//!
//! Layout: `<hierarchy>/agent-runtime/<instance>/<command id>`. The instance names one
//! service (its data directory), so a restarted service finds and kills the commands its
//! crashed predecessor left, and never touches another instance's.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Hierarchies tried in order: v1's `pids` controller, then the v2 root.
const HIERARCHIES: &[&str] = &["/sys/fs/cgroup/pids", "/sys/fs/cgroup"];

/// How many kill rounds before giving up on an emptying cgroup.
const KILL_ROUNDS: usize = 200;

/// The directory under which this instance creates command cgroups.
#[derive(Debug, Clone)]
pub struct CgroupRoot {
    dir: PathBuf,
}

impl CgroupRoot {
    /// The first hierarchy where a child cgroup can be created and has `pids.max`; `None`
    /// when there is none (not root, no controller, read-only mount).
    pub fn detect(instance: &str) -> Option<Self> {
        HIERARCHIES.iter().find_map(|base| {
            let dir = Path::new(base).join("agent-runtime").join(instance);
            Self::probe(&dir).ok().map(|()| Self { dir })
        })
    }

    /// Uses `dir` as the root (tests); it must be a cgroup directory with `pids.max`
    /// available in its children.
    pub fn at(dir: PathBuf) -> io::Result<Self> {
        Self::probe(&dir)?;
        Ok(Self { dir })
    }

    fn probe(dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let probe = dir.join(format!("probe-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir(&probe)?;
        let usable = probe.join("pids.max").exists();
        std::fs::remove_dir(&probe)?;
        if usable {
            Ok(())
        } else {
            Err(io::Error::other("no pids controller here"))
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A fresh cgroup for one command, allowing at most `max_pids` processes.
    pub fn create(&self, max_pids: u64) -> io::Result<CommandCgroup> {
        let dir = self.dir.join(uuid::Uuid::new_v4().simple().to_string());
        std::fs::create_dir(&dir)?;
        let cgroup = CommandCgroup { dir };
        if let Err(e) = std::fs::write(cgroup.dir.join("pids.max"), max_pids.to_string()) {
            cgroup.remove();
            return Err(e);
        }
        Ok(cgroup)
    }

    /// Kills and removes every command cgroup left here (by a service that crashed);
    /// returns how many there were.
    pub fn sweep(&self) -> usize {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return 0;
        };
        let mut swept = 0;
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                CommandCgroup { dir: entry.path() }.remove();
                swept += 1;
            }
        }
        swept
    }
}

/// One command's cgroup.
#[derive(Debug)]
pub struct CommandCgroup {
    dir: PathBuf,
}

impl CommandCgroup {
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Kills every process in the cgroup until it is empty, then removes it. Blocking.
    pub fn remove(self) {
        for _ in 0..KILL_ROUNDS {
            let pids = members(&self.dir);
            if pids.is_empty() && std::fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            for pid in pids {
                let _ = kill(pid, Signal::SIGKILL);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        tracing::warn!(cgroup = %self.dir.display(), "a command cgroup could not be emptied");
    }
}

fn members(dir: &Path) -> Vec<Pid> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.trim().parse::<i32>().ok())
        .filter(|pid| *pid > 1)
        .map(Pid::from_raw)
        .collect()
}

/// Moves the calling process into the cgroup at `dir` (the helper, before it confines
/// itself: its children are born inside).
pub fn join(dir: &Path) -> io::Result<()> {
    std::fs::write(dir.join("cgroup.procs"), std::process::id().to_string())
}
