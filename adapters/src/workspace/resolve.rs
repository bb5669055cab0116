//! From a path as the model wrote it to a real path on disk that the policy allows.
//!
//! The lexical check (`PathPolicy::resolve`) alone would let `link/x` through when `link`
//! points outside, so the longest existing ancestor is canonicalized (following symlinks)
//! and the result checked again. This covers files that do not exist yet: writing
//! `link/new.txt` resolves `link` first.
//!
//! The resolved path is only ever used through [`Resolver::beneath`]: from the open
//! handle of its root, without following symlinks (see [`super::beneath`]), so a swap
//! after the check cannot redirect the use.

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use ports::{PathPolicy, WorkspaceError};

use super::beneath::{Beneath, is_symlink_met};

/// A path that passed both checks.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    /// Symlink-free absolute path (the last components may not exist yet).
    pub real: PathBuf,
    /// How the model sees it (relative to the working directory when inside it).
    pub shown: String,
}

/// The policy plus the docker-mode mapping of container paths.
#[derive(Debug)]
pub(crate) struct Resolver {
    policy: PathPolicy,
    /// Allowed roots other than the working directory (canonical).
    allowed: Vec<PathBuf>,
    /// Every root (the working directory first) with its directory handle, opened once.
    handles: Vec<(PathBuf, OwnedFd)>,
    /// In docker mode, where the working directory is mounted in the container.
    container_workdir: Option<String>,
}

impl Resolver {
    /// `working_dir` and `allowed` are canonical and their handles open, in that order.
    pub(crate) fn new(
        working_dir: PathBuf,
        handles: Vec<(PathBuf, OwnedFd)>,
        container_workdir: Option<String>,
    ) -> Self {
        let allowed: Vec<PathBuf> = handles
            .iter()
            .map(|(path, _)| path.clone())
            .filter(|path| *path != working_dir)
            .collect();
        Self {
            policy: PathPolicy::new(working_dir, allowed.clone()),
            allowed,
            handles,
            container_workdir,
        }
    }

    /// Refuses `protected` paths as well from now on.
    pub(crate) fn protect(&mut self, protected: Vec<PathBuf>) {
        self.policy = self.policy.clone().protecting(protected);
    }

    /// A resolved path as seen from the handle of the deepest root containing it.
    ///
    /// # Errors
    /// `OutsideAllowed` when no root contains it (not for a path `resolve` returned).
    pub(crate) fn beneath<'a>(
        &'a self,
        target: &'a Resolved,
    ) -> Result<Beneath<'a>, WorkspaceError> {
        self.beneath_path(&target.real)
            .ok_or_else(|| WorkspaceError::OutsideAllowed(target.shown.clone()))
    }

    /// [`Self::beneath`] for a real path met during a walk.
    pub(crate) fn beneath_path<'a>(&'a self, real: &'a Path) -> Option<Beneath<'a>> {
        self.handles
            .iter()
            .filter_map(|(root, fd)| Some((real.strip_prefix(root).ok()?, fd)))
            .min_by_key(|(rel, _)| rel.components().count())
            .map(|(rel, fd)| Beneath {
                root: fd.as_fd(),
                rel,
            })
    }

    pub(crate) fn policy(&self) -> &PathPolicy {
        &self.policy
    }

    pub(crate) fn container_workdir(&self) -> Option<&str> {
        self.container_workdir.as_deref()
    }

    /// Whether `path` is the working directory or an allowed root (never moved away).
    pub(crate) fn is_root(&self, path: &Path) -> bool {
        path == self.policy.working_dir() || self.allowed.iter().any(|root| root == path)
    }

    /// Resolves `input` and checks it against the policy, symlinks included.
    pub(crate) fn resolve(&self, input: &str) -> Result<Resolved, WorkspaceError> {
        let lexical = self
            .lexical(input)
            .ok_or_else(|| WorkspaceError::OutsideAllowed(input.to_owned()))?;
        let shown = self.policy.display(&lexical);
        let real = match self.real_path(&lexical) {
            Ok(Some(real)) => real,
            Ok(None) => return Err(WorkspaceError::OutsideAllowed(shown)),
            Err(e) => return Err(io_error(&shown, &e)),
        };
        if !self.policy.contains(&real) {
            return Err(WorkspaceError::OutsideAllowed(shown));
        }
        Ok(Resolved { real, shown })
    }

    /// Like [`Resolver::resolve`] but the last component is not followed when it is a
    /// symlink: the entry itself, as `mv` sees it. Its directory must be allowed.
    pub(crate) fn resolve_entry(&self, input: &str) -> Result<Resolved, WorkspaceError> {
        let lexical = self
            .lexical(input)
            .ok_or_else(|| WorkspaceError::OutsideAllowed(input.to_owned()))?;
        let is_link = std::fs::symlink_metadata(&lexical).is_ok_and(|m| m.file_type().is_symlink());
        let (Some(parent), Some(name), true) = (lexical.parent(), lexical.file_name(), is_link)
        else {
            return self.resolve(input);
        };
        let shown = self.policy.display(&lexical);
        let parent = match self.real_path(parent) {
            Ok(Some(real)) if self.policy.contains(&real) => real,
            Ok(_) => return Err(WorkspaceError::OutsideAllowed(shown)),
            Err(e) => return Err(io_error(&shown, &e)),
        };
        Ok(Resolved {
            real: parent.join(name),
            shown,
        })
    }

    /// The real path of an existing entry met during a walk, if it stays inside the policy.
    pub(crate) fn real_inside(&self, path: &Path) -> Option<PathBuf> {
        std::fs::canonicalize(path)
            .ok()
            .filter(|real| self.policy.contains(real))
    }

    /// The policy's lexical resolution; in docker mode, an absolute container path under
    /// the container workdir is also accepted and mapped to the host working directory.
    fn lexical(&self, input: &str) -> Option<PathBuf> {
        if let Some(path) = self.policy.resolve(input) {
            return Some(path);
        }
        let workdir = self.container_workdir.as_deref()?;
        let rel = Path::new(input).strip_prefix(workdir).ok()?;
        let host = self.policy.working_dir().join(rel);
        self.policy.resolve(host.to_str()?)
    }

    /// `lexical` with its longest existing ancestor canonicalized. `None` when a dangling
    /// symlink on the way points outside the policy.
    fn real_path(&self, lexical: &Path) -> io::Result<Option<PathBuf>> {
        let mut existing = lexical.to_path_buf();
        let mut missing: Vec<OsString> = Vec::new();
        loop {
            match std::fs::canonicalize(&existing) {
                Ok(mut real) => {
                    real.extend(missing.iter().rev());
                    return Ok(Some(real));
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                    ) =>
                {
                    if !self.dangling_link_stays_inside(&existing) {
                        return Ok(None);
                    }
                    let (Some(parent), Some(name)) = (existing.parent(), existing.file_name())
                    else {
                        return Err(e);
                    };
                    missing.push(name.to_os_string());
                    existing = parent.to_path_buf();
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// A path that does not resolve may be a dangling symlink: refuse it when its target
    /// (read lexically) lies outside, so nothing can ever be created through it.
    fn dangling_link_stays_inside(&self, path: &Path) -> bool {
        let Ok(meta) = std::fs::symlink_metadata(path) else {
            return true; // plainly missing
        };
        if !meta.file_type().is_symlink() {
            return true;
        }
        let Ok(target) = std::fs::read_link(path) else {
            return false;
        };
        let base = path.parent().unwrap_or(Path::new("/"));
        base.join(target)
            .to_str()
            .and_then(|t| self.policy.resolve(t))
            .is_some()
    }
}

/// An I/O error worded for the model, about `shown`.
pub(crate) fn io_error(shown: &str, e: &io::Error) -> WorkspaceError {
    let shown = shown.to_owned();
    match e.kind() {
        io::ErrorKind::NotFound => WorkspaceError::NotFound(shown),
        io::ErrorKind::AlreadyExists => WorkspaceError::AlreadyExists(shown),
        io::ErrorKind::NotADirectory => WorkspaceError::NotADirectory(shown),
        io::ErrorKind::IsADirectory => WorkspaceError::IsADirectory(shown),
        io::ErrorKind::PermissionDenied => {
            WorkspaceError::Io(format!("{shown}: permission denied"))
        }
        _ if is_symlink_met(e) => WorkspaceError::Io(format!(
            "{shown}: the path changed while in use (a symlink appeared on the way); retry"
        )),
        _ => WorkspaceError::Io(format!("{shown}: {e}")),
    }
}
