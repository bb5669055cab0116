//! Blocking file operations behind the workspace port, each on resolved paths used only
//! through root handles ([`super::beneath`]): a directory swapped for a symlink after the
//! check makes an operation fail, never escape.
//!
//! Writes go through a temporary file created in the target's directory handle and a
//! rename within it, so readers see the old or the new contents, a rename never follows a
//! symlink at the target, and a failed write removes its temporary file. Copies never
//! reproduce symlinks: a link is copied as its target's contents when that target is a
//! file inside the policy, and skipped otherwise. Moves take a symlink as itself.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use ports::{DirEntry, FileInfo, LineSlice, LineWindow, WorkspaceError};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, RenameFlags, Stat};
use rustix::io::Errno;

use super::beneath::{self, kind, open_at, stat_at};
use super::lines::read_window;
use super::resolve::{Resolved, Resolver, io_error};

/// A whole file of at most `max` bytes; never more than that is read.
pub(crate) fn read_capped(r: &Resolver, path: &str, max: u64) -> Result<Vec<u8>, WorkspaceError> {
    let target = r.resolve(path)?;
    let (file, stat) = open_regular(r, &target)?;
    let too_large = || WorkspaceError::TooLarge {
        path: target.shown.clone(),
        max,
    };
    let size = u64::try_from(stat.st_size).unwrap_or(0);
    if size > max {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    // One byte past the cap tells a file that grew since the stat.
    io::Read::read_to_end(&mut io::Read::take(file, max.saturating_add(1)), &mut bytes)
        .map_err(|e| io_error(&target.shown, &e))?;
    if bytes.len() as u64 > max {
        return Err(too_large());
    }
    Ok(bytes)
}

/// A window of a file's lines, streamed (see [`super::lines`]).
pub(crate) fn read_lines(
    r: &Resolver,
    path: &str,
    window: &LineWindow,
) -> Result<LineSlice, WorkspaceError> {
    let target = r.resolve(path)?;
    let (file, _) = open_regular(r, &target)?;
    read_window(io::BufReader::new(file), window).map_err(|e| io_error(&target.shown, &e))
}

/// Opens a resolved regular file for reading, through its root handle.
pub(crate) fn open_regular(
    r: &Resolver,
    target: &Resolved,
) -> Result<(File, Stat), WorkspaceError> {
    r.beneath(target)?
        .open_regular()
        .map_err(|e| file_error(&target.shown, &e))
}

pub(crate) fn write(r: &Resolver, path: &str, contents: &[u8]) -> Result<(), WorkspaceError> {
    let target = r.resolve(path)?;
    let shown = &target.shown;
    let Some((dir, name)) = r
        .beneath(&target)?
        .open_parent(true)
        .map_err(|e| parent_error(shown, &e))?
    else {
        return Err(WorkspaceError::IsADirectory(shown.clone()));
    };
    let existing = match stat_at(&dir, name) {
        Ok(stat) if kind(&stat) == FileType::Directory => {
            return Err(WorkspaceError::IsADirectory(shown.clone()));
        }
        Ok(stat) if kind(&stat) == FileType::RegularFile => Some(stat.st_mode),
        _ => None,
    };
    // Short enough for NAME_MAX whatever the target's name length.
    let stem: String = name.to_string_lossy().chars().take(64).collect();
    let temp = format!(".{stem}.{}.tmp", uuid::Uuid::new_v4().simple());
    let result = write_temp(&dir, OsStr::new(&temp), contents, existing).and_then(|()| {
        rustix::fs::renameat(&dir, temp.as_str(), &dir, name).map_err(io::Error::from)
    });
    if let Err(e) = result {
        let _ = rustix::fs::unlinkat(&dir, temp.as_str(), AtFlags::empty());
        return Err(io_error(shown, &e));
    }
    Ok(())
}

/// Writes the new contents into a new file `temp` of `dir`, keeping the permissions of
/// the file being replaced.
fn write_temp(
    dir: impl AsFd,
    temp: &OsStr,
    contents: &[u8],
    existing_mode: Option<u32>,
) -> io::Result<()> {
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL;
    let mut file = File::from(open_at(dir, temp, flags)?);
    file.write_all(contents)?;
    if let Some(mode) = existing_mode {
        rustix::fs::fchmod(&file, Mode::from_raw_mode(mode & 0o7777))?;
    }
    file.sync_all()
}

pub(crate) fn stat(r: &Resolver, path: &str) -> Result<FileInfo, WorkspaceError> {
    let target = r.resolve(path)?;
    let stat = r
        .beneath(&target)?
        .stat()
        .map_err(|e| io_error(&target.shown, &e))?;
    Ok(info(&stat))
}

fn info(stat: &Stat) -> FileInfo {
    let is_dir = kind(stat) == FileType::Directory;
    FileInfo {
        is_dir,
        size: if is_dir { 0 } else { stat.st_size as u64 },
    }
}

pub(crate) fn list(r: &Resolver, path: &str) -> Result<Vec<DirEntry>, WorkspaceError> {
    let dir = r.resolve(path)?;
    let fd = open_dir(r, &dir)?;
    let names = beneath::entries(&fd).map_err(|e| io_error(&dir.shown, &e))?;
    let mut out = Vec::new();
    for name in names {
        let Ok(stat) = stat_at(&fd, &name) else {
            continue;
        };
        let stat = if kind(&stat) == FileType::Symlink {
            // Shown with its target's details, and only when the target is allowed.
            match symlink_target_stat(r, &dir.real.join(&name)) {
                Some(stat) => stat,
                None => continue,
            }
        } else {
            stat
        };
        let info = info(&stat);
        out.push(DirEntry {
            name: name.to_string_lossy().into_owned(),
            is_dir: info.is_dir,
            size: info.size,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// What a symlink met in a listing or walk leads to, when that is inside the policy.
fn symlink_target_stat(r: &Resolver, link: &Path) -> Option<Stat> {
    let real = r.real_inside(link)?;
    r.beneath_path(&real)?.stat().ok()
}

pub(crate) fn create_dir(r: &Resolver, path: &str) -> Result<(), WorkspaceError> {
    let target = r.resolve(path)?;
    let shown = &target.shown;
    let Some((parent, name)) = r
        .beneath(&target)?
        .open_parent(true)
        .map_err(|e| parent_error(shown, &e))?
    else {
        return Ok(()); // the root itself
    };
    match rustix::fs::mkdirat(&parent, name, Mode::from_raw_mode(0o777)) {
        Ok(()) => Ok(()),
        Err(Errno::EXIST) => match stat_at(&parent, name) {
            Ok(stat) if kind(&stat) == FileType::Directory => Ok(()),
            _ => Err(WorkspaceError::AlreadyExists(shown.clone())),
        },
        Err(e) => Err(io_error(shown, &e.into())),
    }
}

pub(crate) fn rename(r: &Resolver, from: &str, to: &str) -> Result<(), WorkspaceError> {
    // A symlink is moved as itself, wherever it points: access through it is checked later.
    let source = r.resolve_entry(from)?;
    let target = r.resolve(to)?;
    refuse_root(r, &source, "moved")?;
    let (from_dir, from_name) = open_entry_parent(r, &source)?;
    let stat = stat_at(&from_dir, from_name).map_err(|e| io_error(&source.shown, &e))?;
    let is_dir = kind(&stat) == FileType::Directory;
    let (to_dir, to_name) = prepare_target(r, &source, is_dir, &target)?;
    match rename_noreplace(from_dir.as_fd(), from_name, to_dir.as_fd(), to_name) {
        Ok(()) => Ok(()),
        Err(Errno::EXIST | Errno::NOTEMPTY) => {
            Err(WorkspaceError::AlreadyExists(target.shown.clone()))
        }
        Err(Errno::XDEV) if kind(&stat) != FileType::Symlink => {
            // Another filesystem (an allowed path elsewhere): copy, then remove.
            copy_open_entry(
                r,
                &source,
                from_dir.as_fd(),
                from_name,
                to_dir.as_fd(),
                to_name,
            )
            .map_err(|e| io_error(&target.shown, &e))?;
            beneath::remove_tree(&from_dir, from_name).map_err(|e| io_error(&source.shown, &e))
        }
        Err(e) => Err(io_error(&source.shown, &e.into())),
    }
}

/// Removes a file or a directory with everything in it; a symlink goes as itself, never
/// what it points to. The working directory and allowed paths themselves stay.
pub(crate) fn remove(r: &Resolver, path: &str) -> Result<(), WorkspaceError> {
    let entry = r.resolve_entry(path)?;
    refuse_root(r, &entry, "removed")?;
    let (dir, name) = open_entry_parent(r, &entry)?;
    beneath::remove_tree(&dir, name).map_err(|e| io_error(&entry.shown, &e))
}

/// The working directory and the allowed paths are the policy's roots: never `done` to.
fn refuse_root(r: &Resolver, entry: &Resolved, done: &str) -> Result<(), WorkspaceError> {
    if r.is_root(&entry.real) {
        return Err(WorkspaceError::Io(format!(
            "{}: the working directory and allowed paths cannot be {done}",
            entry.shown
        )));
    }
    Ok(())
}

/// `renameat2(RENAME_NOREPLACE)`, falling back to a plain rename on filesystems without it
/// (the target was checked to be free just before).
fn rename_noreplace(
    from_dir: BorrowedFd<'_>,
    from: &OsStr,
    to_dir: BorrowedFd<'_>,
    to: &OsStr,
) -> Result<(), Errno> {
    match rustix::fs::renameat_with(from_dir, from, to_dir, to, RenameFlags::NOREPLACE) {
        Err(Errno::INVAL | Errno::NOSYS) => rustix::fs::renameat(from_dir, from, to_dir, to),
        other => other,
    }
}

pub(crate) fn copy(r: &Resolver, from: &str, to: &str) -> Result<(), WorkspaceError> {
    let source = r.resolve(from)?;
    let target = r.resolve(to)?;
    let (from_dir, from_name) = open_entry_parent(r, &source)?;
    let stat = stat_at(&from_dir, from_name).map_err(|e| io_error(&source.shown, &e))?;
    let (to_dir, to_name) =
        prepare_target(r, &source, kind(&stat) == FileType::Directory, &target)?;
    copy_open_entry(
        r,
        &source,
        from_dir.as_fd(),
        from_name,
        to_dir.as_fd(),
        to_name,
    )
    .map_err(|e| {
        if e.kind() == io::ErrorKind::InvalidInput {
            not_regular(&source.shown)
        } else {
            io_error(&target.shown, &e)
        }
    })
}

/// The directory handle holding a resolved entry, and its name there.
fn open_entry_parent<'a>(
    r: &'a Resolver,
    entry: &'a Resolved,
) -> Result<(std::os::fd::OwnedFd, &'a OsStr), WorkspaceError> {
    match r.beneath(entry)?.open_parent(false) {
        Ok(Some(found)) => Ok(found),
        // The root itself (copied or moved whole).
        Ok(None) => Err(WorkspaceError::Io(format!(
            "{}: the working directory and allowed paths cannot be moved or copied whole",
            entry.shown
        ))),
        Err(e) => Err(io_error(&entry.shown, &e)),
    }
}

/// The target of a move or copy: it must not exist (not even as a dangling link), a
/// directory may not go inside itself, and missing parents are created.
fn prepare_target<'a>(
    r: &'a Resolver,
    source: &Resolved,
    source_is_dir: bool,
    target: &'a Resolved,
) -> Result<(std::os::fd::OwnedFd, &'a OsStr), WorkspaceError> {
    let place = r.beneath(target)?;
    match place.stat() {
        Ok(_) => return Err(WorkspaceError::AlreadyExists(target.shown.clone())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(parent_error(&target.shown, &e)),
    }
    if source_is_dir && target.real.starts_with(&source.real) {
        return Err(WorkspaceError::Io(format!(
            "cannot put {} inside itself ({})",
            source.shown, target.shown
        )));
    }
    match place.open_parent(true) {
        Ok(Some(found)) => Ok(found),
        Ok(None) => Err(WorkspaceError::AlreadyExists(target.shown.clone())),
        Err(e) => Err(parent_error(&target.shown, &e)),
    }
}

/// Copies `from_name` of `from_dir` (a file, a directory, or a symlink followed to an
/// allowed file) to the new name `to_name` of `to_dir`.
fn copy_open_entry(
    r: &Resolver,
    source: &Resolved,
    from_dir: BorrowedFd<'_>,
    from_name: &OsStr,
    to_dir: BorrowedFd<'_>,
    to_name: &OsStr,
) -> io::Result<()> {
    match kind(&stat_at(from_dir, from_name)?) {
        FileType::Directory => {
            let from = beneath::walk(from_dir, Path::new(from_name), false)?;
            copy_tree(r, &from, &source.real, to_dir, to_name)
        }
        FileType::RegularFile => {
            let file = File::from(open_at(
                from_dir,
                from_name,
                OFlags::RDONLY | OFlags::NONBLOCK,
            )?);
            copy_file(file, to_dir, to_name)
        }
        FileType::Symlink => match r.real_inside(&source.real) {
            Some(real) => copy_symlinked(r, &real, to_dir, to_name),
            None => Err(io::ErrorKind::NotFound.into()),
        },
        _ => Err(io::ErrorKind::InvalidInput.into()),
    }
}

/// Copies a directory tree, every entry reached through handles. Symlinks are followed
/// only to files inside the policy; links to directories, links leading outside, and
/// special files are skipped.
fn copy_tree(
    r: &Resolver,
    from: &std::os::fd::OwnedFd,
    from_real: &Path,
    to_dir: BorrowedFd<'_>,
    to_name: &OsStr,
) -> io::Result<()> {
    rustix::fs::mkdirat(to_dir, to_name, Mode::from_raw_mode(0o777))?;
    let to = beneath::walk(to_dir, Path::new(to_name), false)?;
    for name in beneath::entries(from)? {
        let stat = stat_at(from, &name)?;
        match kind(&stat) {
            FileType::Directory => {
                let sub = beneath::walk(from.as_fd(), Path::new(&name), false)?;
                copy_tree(r, &sub, &from_real.join(&name), to.as_fd(), &name)?;
            }
            FileType::RegularFile => {
                let file = File::from(open_at(from, &name, OFlags::RDONLY | OFlags::NONBLOCK)?);
                copy_file(file, to.as_fd(), &name)?;
            }
            FileType::Symlink => match r.real_inside(&from_real.join(&name)) {
                Some(real) => match copy_symlinked(r, &real, to.as_fd(), &name) {
                    Err(e) if e.kind() == io::ErrorKind::InvalidInput => {}
                    other => other?,
                },
                None => tracing::debug!(
                    path = %from_real.join(&name).display(),
                    "copy skips a symlink leading outside"
                ),
            },
            _ => {}
        }
    }
    Ok(())
}

/// Copies the regular file a symlink leads to (`real`, inside the policy). Anything else
/// is `InvalidInput` (skipped in a tree).
fn copy_symlinked(
    r: &Resolver,
    real: &Path,
    to_dir: BorrowedFd<'_>,
    name: &OsStr,
) -> io::Result<()> {
    let place = r.beneath_path(real).ok_or(io::ErrorKind::InvalidInput)?;
    match place.open_regular() {
        Ok((file, _)) => copy_file(file, to_dir, name),
        Err(e) if e.kind() == io::ErrorKind::IsADirectory => {
            Err(io::ErrorKind::InvalidInput.into())
        }
        Err(e) => Err(e),
    }
}

/// Copies an open file's contents and permissions into a new file `name` of `to_dir`.
fn copy_file(mut from: File, to_dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    let mode = rustix::fs::fstat(&from)?.st_mode & 0o7777;
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL;
    let mut to = File::from(open_at(to_dir, name, flags)?);
    io::copy(&mut from, &mut to)?;
    rustix::fs::fchmod(&to, Mode::from_raw_mode(mode))?;
    Ok(())
}

/// Opens a resolved directory through its root handle.
pub(crate) fn open_dir(
    r: &Resolver,
    dir: &Resolved,
) -> Result<std::os::fd::OwnedFd, WorkspaceError> {
    r.beneath(dir)?
        .open_dir()
        .map_err(|e| io_error(&dir.shown, &e))
}

/// The resolved path of an existing directory.
pub(crate) fn existing_dir(r: &Resolver, path: &str) -> Result<Resolved, WorkspaceError> {
    let dir = r.resolve(path)?;
    open_dir(r, &dir)?;
    Ok(dir)
}

/// The directory `path` as the shell must see it.
pub(crate) fn shell_dir(r: &Resolver, path: &str) -> Result<String, WorkspaceError> {
    let dir = existing_dir(r, path)?;
    let Some(workdir) = r.container_workdir() else {
        return Ok(dir.real.to_string_lossy().into_owned());
    };
    match dir.real.strip_prefix(r.policy().working_dir()) {
        Ok(rel) if rel.as_os_str().is_empty() => Ok(workdir.to_owned()),
        Ok(rel) => Ok(Path::new(workdir).join(rel).to_string_lossy().into_owned()),
        Err(_) => Err(WorkspaceError::OutsideAllowed(format!(
            "{} (not mounted in the container, which sees only the working directory)",
            dir.shown
        ))),
    }
}

/// Errors opening a target's parents, about the target: a file where a directory is
/// needed is `NotADirectory`.
fn parent_error(shown: &str, e: &io::Error) -> WorkspaceError {
    match e.kind() {
        io::ErrorKind::AlreadyExists | io::ErrorKind::NotADirectory => {
            WorkspaceError::NotADirectory(shown.to_owned())
        }
        _ => io_error(shown, e),
    }
}

/// Errors opening a file to read.
fn file_error(shown: &str, e: &io::Error) -> WorkspaceError {
    if e.kind() == io::ErrorKind::InvalidInput {
        not_regular(shown)
    } else {
        io_error(shown, e)
    }
}

fn not_regular(shown: &str) -> WorkspaceError {
    WorkspaceError::Io(format!("{shown}: not a regular file or directory"))
}
