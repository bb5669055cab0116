//! `ports::Shell` adapters: a command on the host ([`LocalShell`]) or inside the user's
//! running container through the docker CLI ([`DockerShell`]).
//!
//! Both share one supervisor ([`capture`]) so the output cap, truncation flags, timeout and
//! kill-on-cancel semantics are identical in the two environments (spec 02, security
//! boundary; spec 03, environment). Neither inherits the service's environment: the command
//! sees exactly `ShellRequest::env`.

mod capture;
mod docker;
mod group;
mod local;
pub mod sandbox;
pub mod server;

pub use docker::DockerShell;
pub use local::LocalShell;
