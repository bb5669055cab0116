//! `ports::Workspace` on the host filesystem ([`LocalWorkspace`]), in both local and
//! docker mode (spec 03: files stay on the host; the user mounts the working directory into
//! the container).
//!
//! Every path goes through [`resolve`]: the pure `PathPolicy` check on the lexical path,
//! then the same check on the path with symlinks resolved, so a link inside the workspace
//! cannot lead outside it (spec 02, security boundary). The checked path is then used
//! only through [`beneath`]: from the handle of its allowed root, component by component
//! with `O_NOFOLLOW`, so swapping a directory for a symlink between the check and the use
//! makes the operation fail rather than escape. All disk work runs on the blocking pool.

mod beneath;
mod files;
mod lines;
mod local;
mod resolve;
mod search;

pub use local::LocalWorkspace;
