//! The helper process: `agent-runtime sandbox-exec --policy <json> -- <program> <args…>`.
//!
//! It is started by the service with the command's environment, working directory, a
//! piped stdin (closed by the service to stop the command) and the command's stdout and
//! stderr. It confines itself, starts the command, and supervises it to the end. Its own
//! failures are written to stderr as one `sandbox: …` line with exit status 126, so they
//! reach the model like any command error.

use std::ffi::OsString;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use nix::unistd::Pid;

use super::policy::SandboxPolicy;
use super::{confine, supervise};

/// Exit status when the sandbox could not be set up (as a shell's "cannot execute").
const SETUP_FAILED: i32 = 126;

/// Runs the helper with the arguments after the subcommand; returns the exit status.
pub fn main(args: Vec<OsString>) -> i32 {
    match run(args) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("sandbox: {message}");
            SETUP_FAILED
        }
    }
}

fn run(args: Vec<OsString>) -> Result<i32, String> {
    let (policy, program, program_args) = parse(args)?;
    nix::sys::prctl::set_child_subreaper(true)
        .map_err(|e| format!("cannot become a subreaper: {e}"))?;
    confine::apply(&policy).map_err(|e| e.to_string())?;
    let child = Command::new(&program)
        .args(&program_args)
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", program.to_string_lossy()))?;
    let pid = i32::try_from(child.id()).map_err(|e| e.to_string())?;
    let stop = Arc::new(AtomicBool::new(false));
    supervise::watch_stdin(stop.clone());
    Ok(supervise::reap_all(Pid::from_raw(pid), &stop))
}

type Parsed = (SandboxPolicy, OsString, Vec<OsString>);

/// `--policy <json> -- <program> [args…]`.
fn parse(args: Vec<OsString>) -> Result<Parsed, String> {
    let mut args = args.into_iter();
    let usage = "usage: sandbox-exec --policy <json> -- <program> [args…]";
    if args.next().as_deref() != Some("--policy".as_ref()) {
        return Err(usage.to_owned());
    }
    let json = args.next().ok_or(usage)?;
    let policy: SandboxPolicy =
        serde_json::from_str(&json.to_string_lossy()).map_err(|e| format!("bad policy: {e}"))?;
    if args.next().as_deref() != Some("--".as_ref()) {
        return Err(usage.to_owned());
    }
    let program = args.next().ok_or(usage)?;
    Ok((policy, program, args.collect()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shell::sandbox::Rlimits;

    fn os(items: &[&str]) -> Vec<OsString> {
        items.iter().map(OsString::from).collect()
    }

    #[test]
    fn arguments_parse_and_anything_else_is_refused() {
        let policy = SandboxPolicy {
            landlock: true,
            read_paths: vec!["/usr".into()],
            write_paths: vec![],
            devices: vec![],
            network: false,
            rlimits: Rlimits::default(),
            cgroup: None,
        };
        let json = serde_json::to_string(&policy).unwrap();
        let (parsed, program, rest) =
            parse(os(&["--policy", &json, "--", "/bin/sh", "-c", "true"])).unwrap();
        assert_eq!(parsed, policy);
        assert_eq!(program, "/bin/sh");
        assert_eq!(rest, os(&["-c", "true"]));
        assert!(parse(os(&["--policy", &json, "/bin/sh"])).is_err());
        assert!(parse(os(&["--policy", "{", "--", "/bin/sh"])).is_err());
        assert!(parse(os(&["--policy", &json, "--"])).is_err());
        assert!(parse(os(&[])).is_err());
    }
}
