//! The sandbox around every local command (spec 02, security boundary).
//!
//! The service never confines itself: it re-executes its own binary as a small helper
//! (`agent-runtime sandbox-exec`, see [`helper`]) that confines itself and then starts the
//! command as its child. Confinement (see [`confine`]), in this order:
//! - a per-command `pids` cgroup where the machine offers one (a bound on processes, and a
//!   list of every process the command started, for the final kill; see [`cgroup`]);
//! - rlimits (file size, open files, CPU time, core dumps off; processes for a non-root
//!   service, since `RLIMIT_NPROC` does not bind root);
//! - every capability dropped (bounding, ambient, permitted, effective, inheritable) and
//!   `no_new_privs`: a root service's command then cannot read `/proc/<service>/environ`,
//!   because the service's capabilities are not a subset of its own;
//! - Landlock: read and execute on system directories, read and write on the workspace
//!   roots and a per-run temp dir, optionally no TCP, and no signals to processes outside
//!   the sandbox.
//!
//! The helper stays alive as the command's supervisor (a child subreaper): when the command
//! exits, or the service closes the helper's stdin (timeout, interrupt, the service died),
//! it kills every process the command left behind, `setsid` descendants included.

pub mod cgroup;
mod confine;
pub mod helper;
mod launch;
mod policy;
mod supervise;

pub use launch::Sandbox;
pub use policy::{Rlimits, SandboxPolicy};

/// The subcommand of the service binary that runs [`helper::main`].
pub const HELPER_SUBCOMMAND: &str = "sandbox-exec";

/// Whether this kernel enforces Landlock (the filesystem rules; the network rules need ABI
/// 4). Creating a ruleset restricts nothing: it only asks the kernel.
pub fn landlock_available() -> bool {
    confine::landlock_supported()
}
