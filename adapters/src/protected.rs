//! The service's own files (spec 02, security boundary): its data directory, database,
//! `.env`, token file and `PROTECTED_PATHS`. No agent may reach them, whatever a preset
//! allows: the path policy refuses them, and an environment whose roots overlap one is
//! refused as a whole (a sandbox can allow trees but never carve a file out of one).

use std::io;
use std::path::{Path, PathBuf};

/// Absolute, symlink-free protected paths (those that do not exist yet are resolved through
/// their longest existing ancestor, so a database's `-wal` file is covered before it
/// appears).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProtectedPaths {
    paths: Vec<PathBuf>,
}

impl ProtectedPaths {
    /// Resolves each path (relative ones against the current directory).
    ///
    /// # Errors
    /// A path whose existing part cannot be resolved (permission denied, a loop).
    pub fn new(paths: impl IntoIterator<Item = PathBuf>) -> io::Result<Self> {
        let mut resolved = Vec::new();
        for path in paths {
            let real = real_path(&path)?;
            if !resolved.contains(&real) {
                resolved.push(real);
            }
        }
        Ok(Self { paths: resolved })
    }

    /// The resolved paths.
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    /// The first protected path that `root` contains or lies inside, if any. `root` is
    /// resolved the same way first.
    pub fn overlapping(&self, root: &Path) -> Option<&Path> {
        let root = real_path(root).unwrap_or_else(|_| root.to_path_buf());
        self.paths
            .iter()
            .find(|p| p.starts_with(&root) || root.starts_with(p))
            .map(PathBuf::as_path)
    }
}

/// `path` made absolute, with its longest existing ancestor canonicalized and the missing
/// rest appended (lexically normalized).
pub fn real_path(path: &Path) -> io::Result<PathBuf> {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    };
    let mut existing = normalize(&absolute);
    let mut missing = Vec::new();
    loop {
        match std::fs::canonicalize(&existing) {
            Ok(mut real) => {
                real.extend(missing.iter().rev());
                return Ok(real);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let (Some(parent), Some(name)) = (existing.parent(), existing.file_name()) else {
                    return Err(e);
                };
                missing.push(name.to_os_string());
                existing = parent.to_path_buf();
            }
            Err(e) => return Err(e),
        }
    }
}

/// Removes `.` and folds `..` without touching the disk (`/..` stays `/`).
fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_files_resolve_through_their_existing_ancestor() {
        let dir = tempfile::tempdir().unwrap();
        let real = std::fs::canonicalize(dir.path()).unwrap();
        let p = ProtectedPaths::new([dir.path().join("data/../db.sqlite-wal")]).unwrap();
        assert_eq!(p.paths(), &[real.join("db.sqlite-wal")]);
    }

    #[test]
    fn a_root_overlaps_what_it_contains_and_what_contains_it() {
        let dir = tempfile::tempdir().unwrap();
        let real = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::create_dir_all(real.join("data/sessions")).unwrap();
        std::fs::create_dir_all(real.join("workspace")).unwrap();
        let p = ProtectedPaths::new([real.join("data"), real.join(".env")]).unwrap();
        assert_eq!(p.overlapping(&real), Some(real.join("data").as_path()));
        assert_eq!(
            p.overlapping(&real.join("data/sessions/x")),
            Some(real.join("data").as_path())
        );
        assert_eq!(p.overlapping(&real.join("workspace")), None);
        assert_eq!(
            p.overlapping(&real.join("workspace/../.env")),
            Some(real.join(".env").as_path())
        );
        // A symlink is followed before comparing.
        std::os::unix::fs::symlink(real.join("data"), real.join("workspace/link")).unwrap();
        assert!(p.overlapping(&real.join("workspace/link")).is_some());
    }
}
