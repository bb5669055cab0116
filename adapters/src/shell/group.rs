//! The process group of a spawned command, killed as a whole.
//!
//! Commands run in their own process group (`process_group(0)`), so `killpg` reaches every
//! process they started that did not leave the group. `kill_on_drop` would kill only the
//! direct child; this guard kills the group when dropped, which is what makes dropping the
//! `run` future (cancellation) safe.

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::process::Child;

/// Kills the group once, on [`ProcessGroup::kill`] or on drop, whichever comes first.
#[derive(Debug)]
pub(crate) struct ProcessGroup {
    pgid: Option<Pid>,
}

impl ProcessGroup {
    /// The group led by `child` (spawned with `process_group(0)`, so its pid is the pgid).
    pub(crate) fn led_by(child: &Child) -> Self {
        let pgid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            // 0 and 1 would address our own group or init: never signal those.
            .filter(|id| *id > 1)
            .map(Pid::from_raw);
        Self { pgid }
    }

    /// Sends SIGKILL to the whole group. Errors (the group is already gone) are ignored.
    pub(crate) fn kill(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            // ESRCH just means every member has exited already.
            let _ = killpg(pgid, Signal::SIGKILL);
        }
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.kill();
    }
}
