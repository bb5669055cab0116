//! Blocking file operations behind the workspace port, each on resolved paths only.
//!
//! Writes go through a temporary file in the target directory and a rename, so readers see
//! the old or the new contents and a rename never follows a symlink at the target. Copies
//! never reproduce symlinks: a link is copied as its target's contents when that target is
//! a file inside the policy, and skipped otherwise.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use ports::{DirEntry, FileInfo, WorkspaceError};

use super::resolve::{Resolved, Resolver, io_error};

pub(crate) fn read(r: &Resolver, path: &str) -> Result<Vec<u8>, WorkspaceError> {
    let target = r.resolve(path)?;
    let meta = fs::metadata(&target.real).map_err(|e| io_error(&target.shown, &e))?;
    if meta.is_dir() {
        return Err(WorkspaceError::IsADirectory(target.shown));
    }
    if !meta.is_file() {
        return Err(not_regular(&target.shown));
    }
    fs::read(&target.real).map_err(|e| io_error(&target.shown, &e))
}

pub(crate) fn write(r: &Resolver, path: &str, contents: &[u8]) -> Result<(), WorkspaceError> {
    let target = r.resolve(path)?;
    let existing = match fs::metadata(&target.real) {
        Ok(meta) if meta.is_dir() => return Err(WorkspaceError::IsADirectory(target.shown)),
        Ok(meta) => Some(meta),
        Err(_) => None,
    };
    let (Some(dir), Some(name)) = (target.real.parent(), target.real.file_name()) else {
        return Err(WorkspaceError::IsADirectory(target.shown));
    };
    create_parents(dir, &target.shown)?;
    // Short enough for NAME_MAX whatever the target's name length.
    let stem: String = name.to_string_lossy().chars().take(64).collect();
    let temp = dir.join(format!(".{stem}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let result = write_temp(&temp, contents, existing.as_ref())
        .and_then(|()| fs::rename(&temp, &target.real));
    if let Err(e) = result {
        let _ = fs::remove_file(&temp);
        return Err(io_error(&target.shown, &e));
    }
    Ok(())
}

/// Writes the new contents, keeping the permissions of the file being replaced.
fn write_temp(temp: &Path, contents: &[u8], existing: Option<&fs::Metadata>) -> io::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(temp)?;
    file.write_all(contents)?;
    if let Some(meta) = existing {
        file.set_permissions(meta.permissions())?;
    }
    file.sync_all()
}

pub(crate) fn stat(r: &Resolver, path: &str) -> Result<FileInfo, WorkspaceError> {
    let target = r.resolve(path)?;
    let meta = fs::metadata(&target.real).map_err(|e| io_error(&target.shown, &e))?;
    Ok(FileInfo {
        is_dir: meta.is_dir(),
        size: if meta.is_dir() { 0 } else { meta.len() },
    })
}

pub(crate) fn list(r: &Resolver, path: &str) -> Result<Vec<DirEntry>, WorkspaceError> {
    let dir = existing_dir(r, path)?;
    let entries = fs::read_dir(&dir.real).map_err(|e| io_error(&dir.shown, &e))?;
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let meta = if kind.is_symlink() {
            // Shown with its target's details, and only when the target is allowed.
            match r.real_inside(&entry.path()).map(fs::metadata) {
                Some(Ok(meta)) => meta,
                _ => continue,
            }
        } else {
            match entry.metadata() {
                Ok(meta) => meta,
                Err(_) => continue,
            }
        };
        out.push(DirEntry {
            name: entry.file_name().to_string_lossy().into_owned(),
            is_dir: meta.is_dir(),
            size: if meta.is_dir() { 0 } else { meta.len() },
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

pub(crate) fn create_dir(r: &Resolver, path: &str) -> Result<(), WorkspaceError> {
    let target = r.resolve(path)?;
    match fs::metadata(&target.real) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(WorkspaceError::AlreadyExists(target.shown)),
        Err(_) => fs::create_dir_all(&target.real).map_err(|e| io_error(&target.shown, &e)),
    }
}

pub(crate) fn rename(r: &Resolver, from: &str, to: &str) -> Result<(), WorkspaceError> {
    // A symlink is moved as itself, wherever it points: access through it is checked later.
    let source = r.resolve_entry(from)?;
    let target = r.resolve(to)?;
    let meta = fs::symlink_metadata(&source.real).map_err(|e| io_error(&source.shown, &e))?;
    if r.is_root(&source.real) {
        return Err(WorkspaceError::Io(format!(
            "{}: the working directory and allowed paths cannot be moved",
            source.shown
        )));
    }
    prepare_target(&source, meta.is_dir(), &target)?;
    match fs::rename(&source.real, &target.real) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::CrossesDevices && !meta.is_symlink() => {
            // Another filesystem (an allowed path elsewhere): copy, then remove.
            copy_entry(r, &source, &target)?;
            let removed = if meta.is_dir() {
                fs::remove_dir_all(&source.real)
            } else {
                fs::remove_file(&source.real)
            };
            removed.map_err(|e| io_error(&source.shown, &e))
        }
        Err(e) => Err(io_error(&source.shown, &e)),
    }
}

pub(crate) fn copy(r: &Resolver, from: &str, to: &str) -> Result<(), WorkspaceError> {
    let source = r.resolve(from)?;
    let target = r.resolve(to)?;
    let meta = fs::metadata(&source.real).map_err(|e| io_error(&source.shown, &e))?;
    prepare_target(&source, meta.is_dir(), &target)?;
    copy_entry(r, &source, &target)
}

/// The target of a move or copy: it must not exist (not even as a dangling link), a
/// directory may not go inside itself, and missing parents are created.
fn prepare_target(
    source: &Resolved,
    source_is_dir: bool,
    target: &Resolved,
) -> Result<(), WorkspaceError> {
    if fs::symlink_metadata(&target.real).is_ok() {
        return Err(WorkspaceError::AlreadyExists(target.shown.clone()));
    }
    if source_is_dir && target.real.starts_with(&source.real) {
        return Err(WorkspaceError::Io(format!(
            "cannot put {} inside itself ({})",
            source.shown, target.shown
        )));
    }
    if let Some(parent) = target.real.parent() {
        create_parents(parent, &target.shown)?;
    }
    Ok(())
}

fn copy_entry(r: &Resolver, source: &Resolved, target: &Resolved) -> Result<(), WorkspaceError> {
    let meta = fs::metadata(&source.real).map_err(|e| io_error(&source.shown, &e))?;
    if meta.is_dir() {
        copy_tree(r, &source.real, &target.real).map_err(|e| io_error(&target.shown, &e))
    } else if meta.is_file() {
        fs::copy(&source.real, &target.real)
            .map(|_| ())
            .map_err(|e| io_error(&target.shown, &e))
    } else {
        Err(not_regular(&source.shown))
    }
}

/// Copies a directory tree. Symlinks are followed only to files inside the policy;
/// links to directories, links leading outside, and special files are skipped.
fn copy_tree(r: &Resolver, from: &Path, to: &Path) -> io::Result<()> {
    fs::create_dir(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let dest = to.join(entry.file_name());
        if kind.is_dir() {
            copy_tree(r, &entry.path(), &dest)?;
        } else if kind.is_file() {
            fs::copy(entry.path(), &dest)?;
        } else if kind.is_symlink() {
            match r.real_inside(&entry.path()) {
                Some(real) if real.is_file() => {
                    fs::copy(real, &dest)?;
                }
                _ => tracing::debug!(path = %entry.path().display(), "copy skips a symlink"),
            }
        }
    }
    Ok(())
}

/// The resolved path of an existing directory.
pub(crate) fn existing_dir(r: &Resolver, path: &str) -> Result<Resolved, WorkspaceError> {
    let dir = r.resolve(path)?;
    let meta = fs::metadata(&dir.real).map_err(|e| io_error(&dir.shown, &e))?;
    if !meta.is_dir() {
        return Err(WorkspaceError::NotADirectory(dir.shown));
    }
    Ok(dir)
}

/// The directory `path` as the shell must see it.
pub(crate) fn shell_dir(r: &Resolver, path: &str) -> Result<String, WorkspaceError> {
    let dir = existing_dir(r, path)?;
    let Some(workdir) = r.container_workdir() else {
        return Ok(dir.real.to_string_lossy().into_owned());
    };
    match dir.real.strip_prefix(r.working_dir()) {
        Ok(rel) if rel.as_os_str().is_empty() => Ok(workdir.to_owned()),
        Ok(rel) => Ok(Path::new(workdir).join(rel).to_string_lossy().into_owned()),
        Err(_) => Err(WorkspaceError::OutsideAllowed(format!(
            "{} (not mounted in the container, which sees only the working directory)",
            dir.shown
        ))),
    }
}

/// `mkdir -p` for the parents of a target, with errors about the target.
fn create_parents(dir: &Path, shown: &str) -> Result<(), WorkspaceError> {
    fs::create_dir_all(dir).map_err(|e| match e.kind() {
        // A file where a directory is needed.
        io::ErrorKind::AlreadyExists | io::ErrorKind::NotADirectory => {
            WorkspaceError::NotADirectory(shown.to_owned())
        }
        _ => io_error(shown, &e),
    })
}

fn not_regular(shown: &str) -> WorkspaceError {
    WorkspaceError::Io(format!("{shown}: not a regular file or directory"))
}
