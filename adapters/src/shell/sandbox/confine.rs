//! The helper confining itself (and so every process it starts) before the command runs.
//! Capabilities and Landlock domains are per thread: this runs on the helper's only thread,
//! before any other thread exists.

use std::path::{Path, PathBuf};

use caps::CapSet;
use landlock::{
    ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, Ruleset, RulesetAttr,
    RulesetCreated, RulesetCreatedAttr, RulesetStatus, Scope, path_beneath_rules,
};
use nix::sys::resource::{Resource, setrlimit};

use super::policy::{Rlimits, SandboxPolicy};

/// The newest Landlock ABI whose rules were checked here (filesystem, TCP, scoping).
const ABI_TARGET: ABI = ABI::V6;

/// Why the helper refuses to start the command.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfineError {
    #[error("cannot join the command's cgroup: {0}")]
    Cgroup(std::io::Error),
    #[error("cannot set resource limits: {0}")]
    Rlimit(nix::Error),
    #[error("cannot drop capabilities: {0}")]
    Capabilities(String),
    #[error("cannot apply the Landlock sandbox: {0}")]
    Landlock(String),
    #[error("cannot set no_new_privs: {0}")]
    NoNewPrivs(nix::Error),
}

/// Applies `policy` to the current (only) thread, in the order the module doc gives.
pub(crate) fn apply(policy: &SandboxPolicy) -> Result<(), ConfineError> {
    if let Some(cgroup) = &policy.cgroup {
        super::cgroup::join(cgroup).map_err(ConfineError::Cgroup)?;
    }
    set_rlimits(&policy.rlimits)?;
    drop_bounding_capabilities()?;
    if policy.landlock {
        restrict_with_landlock(policy)?;
    } else {
        nix::sys::prctl::set_no_new_privs().map_err(ConfineError::NoNewPrivs)?;
    }
    clear_capabilities()
}

fn set_rlimits(limits: &Rlimits) -> Result<(), ConfineError> {
    let set = |resource, value: u64| setrlimit(resource, value, value);
    set(Resource::RLIMIT_FSIZE, limits.file_size).map_err(ConfineError::Rlimit)?;
    set(Resource::RLIMIT_NOFILE, limits.open_files).map_err(ConfineError::Rlimit)?;
    set(Resource::RLIMIT_CPU, limits.cpu_seconds).map_err(ConfineError::Rlimit)?;
    set(Resource::RLIMIT_CORE, 0).map_err(ConfineError::Rlimit)?;
    if !nix::unistd::Uid::effective().is_root() {
        set(Resource::RLIMIT_NPROC, limits.processes).map_err(ConfineError::Rlimit)?;
    }
    Ok(())
}

/// Empties the bounding and ambient sets, so no later `execve` can regain a capability
/// (root's `execve` otherwise refills the permitted set from the bounding set). A service
/// without `CAP_SETPCAP` holds no capabilities to lose: `no_new_privs` covers it.
fn drop_bounding_capabilities() -> Result<(), ConfineError> {
    let can_drop = caps::has_cap(None, CapSet::Effective, caps::Capability::CAP_SETPCAP)
        .map_err(|e| ConfineError::Capabilities(e.to_string()))?;
    if can_drop {
        caps::clear(None, CapSet::Bounding)
            .map_err(|e| ConfineError::Capabilities(e.to_string()))?;
    }
    caps::clear(None, CapSet::Ambient).map_err(|e| ConfineError::Capabilities(e.to_string()))
}

fn clear_capabilities() -> Result<(), ConfineError> {
    for set in [CapSet::Inheritable, CapSet::Effective, CapSet::Permitted] {
        caps::clear(None, set).map_err(|e| ConfineError::Capabilities(e.to_string()))?;
    }
    Ok(())
}

/// Read+execute on `read_paths`, everything on `write_paths`, read+write on `devices`, no
/// TCP unless allowed, no signals out of the sandbox. Sets `no_new_privs`.
fn restrict_with_landlock(policy: &SandboxPolicy) -> Result<(), ConfineError> {
    let landlock = |e: landlock::RulesetError| ConfineError::Landlock(e.to_string());
    let abi = ABI_TARGET;
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(abi))
        .map_err(landlock)?
        .scope(Scope::from_all(abi))
        .map_err(landlock)?;
    if !policy.network {
        ruleset = ruleset
            .handle_access(AccessNet::from_all(abi))
            .map_err(landlock)?;
    }
    let device_access = AccessFs::from_read(abi) | AccessFs::WriteFile | AccessFs::IoctlDev;
    let created: RulesetCreated = ruleset
        .create()
        .map_err(landlock)?
        .add_rules(path_beneath_rules(
            existing(&policy.read_paths),
            AccessFs::from_read(abi),
        ))
        .map_err(landlock)?
        .add_rules(path_beneath_rules(existing(&policy.devices), device_access))
        .map_err(landlock)?
        .add_rules(path_beneath_rules(
            existing(&policy.write_paths),
            AccessFs::from_all(abi),
        ))
        .map_err(landlock)?;
    let status = created.restrict_self().map_err(landlock)?;
    if status.ruleset == RulesetStatus::NotEnforced {
        return Err(ConfineError::Landlock(
            "this kernel does not enforce Landlock".to_owned(),
        ));
    }
    Ok(())
}

/// The paths that exist: a rule on a missing path would fail the whole ruleset.
fn existing(paths: &[PathBuf]) -> Vec<&Path> {
    paths
        .iter()
        .map(PathBuf::as_path)
        .filter(|p| p.exists())
        .collect()
}

/// Whether the kernel accepts a Landlock ruleset (creating one restricts nothing).
pub(crate) fn landlock_supported() -> bool {
    Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(AccessFs::from_all(ABI::V1))
        .and_then(Ruleset::create)
        .is_ok()
}
