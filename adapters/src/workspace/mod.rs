//! `ports::Workspace` on the host filesystem ([`LocalWorkspace`]), in both local and
//! docker mode (spec 03: files stay on the host; the user mounts the working directory into
//! the container).
//!
//! Every path goes through [`resolve`]: the pure `PathPolicy` check on the lexical path,
//! then the same check on the path with symlinks resolved, so a link inside the workspace
//! cannot lead outside it (spec 02, security boundary). All disk work runs on the blocking
//! pool. Checks and use are not atomic: a process racing to swap a directory for a symlink
//! between the two is out of scope (the agent's own shell is the bigger door anyway).

mod files;
mod local;
mod resolve;
mod search;

pub use local::LocalWorkspace;
