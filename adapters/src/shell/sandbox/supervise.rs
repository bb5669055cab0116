//! The helper as supervisor: a child subreaper that reaps everything, and on the end of the
//! command (or when told to stop) kills every process the command left behind.
//!
//! Orphans of the command's tree are re-parented to the helper (not to init) because it is
//! a subreaper, so "every descendant of the helper" is the whole tree, `setsid` or not.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;

/// How often the kill sweep runs while descendants keep appearing, at most.
const SWEEPS: usize = 1000;

/// Reaps children until none is left; returns the exit code the helper should report for
/// `command` (its exit status, or 128 + the signal that ended it). When `command` ends,
/// or `stop` is set, every remaining descendant is killed.
pub(crate) fn reap_all(command: Pid, stop: &Arc<AtomicBool>) -> i32 {
    let mut code = None;
    loop {
        match waitpid(None::<Pid>, None) {
            Ok(status) => {
                if status.pid() == Some(command) {
                    code = exit_code(status);
                    kill_descendants();
                }
                if stop.load(Ordering::SeqCst) {
                    kill_descendants();
                }
            }
            Err(Errno::EINTR) => continue,
            // ECHILD: nothing left to wait for.
            Err(_) => break,
        }
    }
    code.unwrap_or(128 + Signal::SIGKILL as i32)
}

fn exit_code(status: WaitStatus) -> Option<i32> {
    match status {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, signal, _) => Some(128 + signal as i32),
        _ => None,
    }
}

/// SIGKILLs every descendant of this process, repeating until none is found (a process
/// forking while the sweep runs is caught by the next one; the pids cgroup bounds a bomb).
pub(crate) fn kill_descendants() {
    let me = Pid::this();
    // The common case, cheaply: the command left nothing behind (orphans would be our
    // children, since we are a subreaper).
    if !has_live_children() {
        return;
    }
    for _ in 0..SWEEPS {
        let victims = descendants_of(me);
        if victims.is_empty() {
            return;
        }
        for pid in victims {
            let _ = kill(pid, Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Whether any thread of this process has a child that is not a zombie.
fn has_live_children() -> bool {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return true; // cannot tell: take the thorough path
    };
    tasks.flatten().any(|task| {
        std::fs::read_to_string(task.path().join("children"))
            .unwrap_or_default()
            .split_whitespace()
            .any(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .ok()
                    .as_deref()
                    .and_then(parent_of_stat)
                    .is_some()
            })
    })
}

/// Every process whose chain of parents leads to `root`, read from `/proc`.
fn descendants_of(root: Pid) -> Vec<Pid> {
    let parents = parent_map();
    let mut found = Vec::new();
    for (&pid, _) in parents.iter() {
        let mut cursor = pid;
        // Bounded walk: pid reuse could in theory build a cycle.
        for _ in 0..4096 {
            match parents.get(&cursor) {
                Some(&parent) if parent == root.as_raw() => {
                    found.push(Pid::from_raw(pid));
                    break;
                }
                Some(&parent) if parent > 1 => cursor = parent,
                _ => break,
            }
        }
    }
    found
}

/// pid → parent pid of every live process visible in `/proc` (zombies are already dead:
/// they only wait to be reaped).
fn parent_map() -> HashMap<i32, i32> {
    let mut map = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return map;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if let Some(ppid) = std::fs::read_to_string(entry.path().join("stat"))
            .ok()
            .as_deref()
            .and_then(parent_of_stat)
        {
            map.insert(pid, ppid);
        }
    }
    map
}

/// The ppid field of `/proc/<pid>/stat` of a live process: the 2nd field after the
/// parenthesised command name (which may itself contain spaces and parentheses, hence the
/// last `)`); the 1st is the state, `Z` or `X` for a dead process.
fn parent_of_stat(stat: &str) -> Option<i32> {
    let mut fields = stat.get(stat.rfind(')')? + 1..)?.split_whitespace();
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    fields.next()?.parse().ok()
}

/// Sets `stop` and kills the tree when the service closes our stdin (its end of the pipe
/// closes when the command is cancelled, times out, or the service dies).
pub(crate) fn watch_stdin(stop: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        use std::io::Read;
        let mut sink = [0u8; 64];
        let mut stdin = std::io::stdin();
        loop {
            match stdin.read(&mut sink) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        stop.store(true, Ordering::SeqCst);
        kill_descendants();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ppid_is_read_past_a_hostile_command_name() {
        assert_eq!(parent_of_stat("42 (sh) S 7 42 42 0"), Some(7));
        assert_eq!(parent_of_stat("42 (a) b) 9) S 13 1 1"), Some(13));
        assert_eq!(parent_of_stat("garbage"), None);
        assert_eq!(parent_of_stat("42 (sh) Z 7 42 42 0"), None, "a zombie");
    }
}
