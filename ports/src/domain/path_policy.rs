//! Which paths an agent may touch (spec 02, security boundary): its working directory and
//! the allowed paths, never the service's own files (protected paths), nothing else. This
//! is the pure half of the check; the workspace adapter resolves symlinks on disk and
//! checks the resolved path again.

use std::path::{Component, Path, PathBuf};

/// The roots an agent may reach. Roots are absolute and already free of symlinks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPolicy {
    working_dir: PathBuf,
    roots: Vec<PathBuf>,
    /// Refused even under a root: the service's data, database, `.env`, `PROTECTED_PATHS`.
    protected: Vec<PathBuf>,
}

impl PathPolicy {
    /// A policy rooted at `working_dir` plus `allowed`. Both must be absolute and resolved.
    pub fn new(working_dir: PathBuf, allowed: Vec<PathBuf>) -> Self {
        let mut roots = vec![working_dir.clone()];
        roots.extend(allowed);
        Self {
            working_dir,
            roots,
            protected: Vec::new(),
        }
    }

    /// The same policy, also refusing everything at or under `protected` (absolute,
    /// symlink-free paths).
    pub fn protecting(mut self, protected: Vec<PathBuf>) -> Self {
        self.protected = protected;
        self
    }

    /// The working directory followed by the allowed roots.
    pub fn roots(&self) -> &[PathBuf] {
        &self.roots
    }

    /// The working directory (absolute).
    pub fn working_dir(&self) -> &Path {
        &self.working_dir
    }

    /// Joins `input` to the working directory when relative and removes `.` and `..`
    /// lexically. `None` when the result lies outside every root (or climbs above `/`).
    pub fn resolve(&self, input: &str) -> Option<PathBuf> {
        let joined = if Path::new(input).is_absolute() {
            PathBuf::from(input)
        } else {
            self.working_dir.join(input)
        };
        let normal = normalize(&joined)?;
        self.contains(&normal).then_some(normal)
    }

    /// Whether an absolute, normalized path lies under one of the roots and under no
    /// protected path.
    pub fn contains(&self, path: &Path) -> bool {
        self.roots.iter().any(|root| path.starts_with(root))
            && !self.protected.iter().any(|p| path.starts_with(p))
    }

    /// How to show a path to the model: relative to the working directory when inside it.
    pub fn display(&self, path: &Path) -> String {
        match path.strip_prefix(&self.working_dir) {
            Ok(rel) if rel.as_os_str().is_empty() => ".".to_owned(),
            Ok(rel) => rel.to_string_lossy().into_owned(),
            Err(_) => path.to_string_lossy().into_owned(),
        }
    }
}

/// Removes `.` and resolves `..` without touching the disk; `None` above the root.
fn normalize(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::Prefix(_) | Component::RootDir => out.push(part.as_os_str()),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() || out.as_os_str().is_empty() {
                    return None;
                }
            }
            Component::Normal(name) => out.push(name),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> PathPolicy {
        PathPolicy::new("/work/proj".into(), vec!["/data/shared".into()])
    }

    #[test]
    fn relative_paths_resolve_under_the_working_dir() {
        let p = policy();
        assert_eq!(p.resolve("src/a.rs"), Some("/work/proj/src/a.rs".into()));
        assert_eq!(p.resolve("./src/../b.rs"), Some("/work/proj/b.rs".into()));
        assert_eq!(p.resolve("."), Some("/work/proj".into()));
        assert_eq!(p.resolve(""), Some("/work/proj".into()));
    }

    #[test]
    fn allowed_paths_are_reachable_and_nothing_else() {
        let p = policy();
        assert_eq!(p.resolve("/data/shared/x"), Some("/data/shared/x".into()));
        assert_eq!(p.resolve("/etc/passwd"), None);
        assert_eq!(p.resolve("../other/file"), None);
        assert_eq!(p.resolve("src/../../proj2"), None);
        assert_eq!(p.resolve("/work/proj/../../etc"), None);
        assert_eq!(p.resolve("/../../.."), None);
        // A sibling that merely shares the prefix string is outside.
        assert_eq!(p.resolve("/work/project-secret"), None);
    }

    #[test]
    fn protected_paths_are_refused_even_under_a_root() {
        let p = policy().protecting(vec!["/work/proj/.env".into(), "/data/shared/db".into()]);
        assert_eq!(p.resolve(".env"), None);
        assert_eq!(p.resolve("./sub/../.env"), None);
        assert_eq!(p.resolve("/data/shared/db/runtime.db-wal"), None);
        assert_eq!(
            p.resolve(".env.example"),
            Some("/work/proj/.env.example".into())
        );
        assert_eq!(p.resolve("src/a.rs"), Some("/work/proj/src/a.rs".into()));
    }

    #[test]
    fn display_is_relative_inside_the_working_dir() {
        let p = policy();
        assert_eq!(p.display(Path::new("/work/proj/src/a.rs")), "src/a.rs");
        assert_eq!(p.display(Path::new("/work/proj")), ".");
        assert_eq!(p.display(Path::new("/data/shared/x")), "/data/shared/x");
    }
}
