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

/// Before `--`: the command is a server that speaks over the helper's stdin and stdout
/// (they are passed to it), so stdin is not the stop signal; the command's end (its stdin
/// closed) or the service killing the group is.
pub const ATTACH_FLAG: &str = "--attach";

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
    let parsed = parse(args)?;
    nix::sys::prctl::set_child_subreaper(true)
        .map_err(|e| format!("cannot become a subreaper: {e}"))?;
    confine::apply(&parsed.policy).map_err(|e| e.to_string())?;
    let stdin = if parsed.attach {
        Stdio::inherit()
    } else {
        Stdio::null()
    };
    let child = Command::new(&parsed.program)
        .args(&parsed.args)
        .stdin(stdin)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", parsed.program.to_string_lossy()))?;
    let pid = i32::try_from(child.id()).map_err(|e| e.to_string())?;
    let stop = Arc::new(AtomicBool::new(false));
    if !parsed.attach {
        supervise::watch_stdin(stop.clone());
    }
    Ok(supervise::reap_all(Pid::from_raw(pid), &stop))
}

/// The helper's arguments.
#[derive(Debug)]
struct Parsed {
    policy: SandboxPolicy,
    attach: bool,
    program: OsString,
    args: Vec<OsString>,
}

/// `--policy <json> [--attach] -- <program> [args…]`.
fn parse(args: Vec<OsString>) -> Result<Parsed, String> {
    let mut args = args.into_iter();
    let usage = "usage: sandbox-exec --policy <json> [--attach] -- <program> [args…]";
    if args.next().as_deref() != Some("--policy".as_ref()) {
        return Err(usage.to_owned());
    }
    let json = args.next().ok_or(usage)?;
    let policy: SandboxPolicy =
        serde_json::from_str(&json.to_string_lossy()).map_err(|e| format!("bad policy: {e}"))?;
    let mut next = args.next();
    let attach = next.as_deref() == Some(ATTACH_FLAG.as_ref());
    if attach {
        next = args.next();
    }
    if next.as_deref() != Some("--".as_ref()) {
        return Err(usage.to_owned());
    }
    let program = args.next().ok_or(usage)?;
    Ok(Parsed {
        policy,
        attach,
        program,
        args: args.collect(),
    })
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
        let parsed = parse(os(&["--policy", &json, "--", "/bin/sh", "-c", "true"])).unwrap();
        assert_eq!(parsed.policy, policy);
        assert!(!parsed.attach);
        assert_eq!(parsed.program, "/bin/sh");
        assert_eq!(parsed.args, os(&["-c", "true"]));
        let attached = parse(os(&["--policy", &json, ATTACH_FLAG, "--", "srv"])).unwrap();
        assert!(attached.attach);
        assert_eq!(attached.program, "srv");
        assert!(parse(os(&["--policy", &json, "--attach", "/bin/sh"])).is_err());
        assert!(parse(os(&["--policy", &json, "/bin/sh"])).is_err());
        assert!(parse(os(&["--policy", "{", "--", "/bin/sh"])).is_err());
        assert!(parse(os(&["--policy", &json, "--"])).is_err());
        assert!(parse(os(&[])).is_err());
    }
}
