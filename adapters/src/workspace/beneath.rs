//! Using a checked path without a check-then-use race (spec 02: "resolved without
//! following symlinks out (no check-then-use race)").
//!
//! [`super::resolve`] turns the model's path into a real, symlink-free path and checks it
//! against the policy. Everything here then reaches that path from the open handle of the
//! allowed root that contains it, one component at a time with `O_NOFOLLOW`: no symlink is
//! followed after the check. If something on the way was swapped for a symlink in the
//! meantime, the operation fails (`ELOOP`/`ENOTDIR`) instead of following it, so it can
//! only ever touch what lies beneath the root by real directories.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;

/// How every directory on the way is opened: no symlink, only a directory.
const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// New directories and files get the usual defaults; the umask applies.
const DIR_MODE: u32 = 0o777;
pub(crate) const FILE_MODE: u32 = 0o666;

/// A path under a root handle: the root's directory and the relative path below it.
#[derive(Clone, Copy)]
pub(crate) struct Beneath<'a> {
    pub root: BorrowedFd<'a>,
    /// Relative, made of plain names only (the resolver's real path minus the root).
    pub rel: &'a Path,
}

impl<'a> Beneath<'a> {
    /// Opens the directory itself (the root when `rel` is empty).
    pub fn open_dir(&self) -> io::Result<OwnedFd> {
        walk(self.root, self.rel, false)
    }

    /// Opens the directory holding the last component, creating missing directories on
    /// the way when `create` is set. `None` for the root itself (it has no parent here).
    pub fn open_parent(&self, create: bool) -> io::Result<Option<(OwnedFd, &'a OsStr)>> {
        let (Some(name), Some(parent)) = (self.rel.file_name(), self.rel.parent()) else {
            return Ok(None);
        };
        Ok(Some((walk(self.root, parent, create)?, name)))
    }

    /// What the path is, without following a symlink at its end.
    pub fn stat(&self) -> io::Result<Stat> {
        match self.open_parent(false)? {
            Some((parent, name)) => stat_at(&parent, name),
            None => Ok(rustix::fs::fstat(self.root)?),
        }
    }

    /// Opens a regular file for reading: directories are `IsADirectory`, other special
    /// files (FIFOs, devices, sockets) are refused before they are opened.
    pub fn open_regular(&self) -> io::Result<(File, Stat)> {
        let Some((parent, name)) = self.open_parent(false)? else {
            return Err(io::ErrorKind::IsADirectory.into());
        };
        check_regular(&stat_at(&parent, name)?)?;
        // NONBLOCK: were it swapped for a FIFO after the check, the open does not hang.
        let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY;
        let file = File::from(open_at(&parent, name, flags)?);
        let stat = rustix::fs::fstat(&file)?;
        check_regular(&stat)?;
        Ok((file, stat))
    }
}

/// Opens an allowed root (a canonical path) as the handle every later use starts from.
pub(crate) fn open_root(path: &Path) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(path, DIR_FLAGS, Mode::empty())?)
}

/// Opens `rel` below `root` directory by directory, never following a symlink; with
/// `create`, missing directories are made on the way (`mkdir -p`).
pub(crate) fn walk(root: BorrowedFd<'_>, rel: &Path, create: bool) -> io::Result<OwnedFd> {
    let mut dir = rustix::fs::openat(root, ".", DIR_FLAGS, Mode::empty())?;
    for part in rel.components() {
        let Component::Normal(name) = part else {
            // Real paths have plain names only; anything else is a bug, refused.
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a plain relative path",
            ));
        };
        dir = match rustix::fs::openat(&dir, name, DIR_FLAGS, Mode::empty()) {
            Ok(next) => next,
            Err(Errno::NOENT) if create => {
                match rustix::fs::mkdirat(&dir, name, Mode::from_raw_mode(DIR_MODE)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(e.into()),
                }
                rustix::fs::openat(&dir, name, DIR_FLAGS, Mode::empty())?
            }
            // With O_DIRECTORY a symlink is "not a directory": say what it really is.
            Err(Errno::NOTDIR) if is_symlink(&dir, name) => return Err(Errno::LOOP.into()),
            Err(e) => return Err(e.into()),
        };
    }
    Ok(dir)
}

fn is_symlink(dir: impl AsFd, name: &OsStr) -> bool {
    stat_at(dir, name).is_ok_and(|stat| kind(&stat) == FileType::Symlink)
}

/// Opens `name` in `dir` without following a symlink.
pub(crate) fn open_at(dir: impl AsFd, name: &OsStr, flags: OFlags) -> io::Result<OwnedFd> {
    let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    Ok(rustix::fs::openat(
        dir,
        name,
        flags,
        Mode::from_raw_mode(FILE_MODE),
    )?)
}

/// `lstat` of `name` in `dir`.
pub(crate) fn stat_at(dir: impl AsFd, name: &OsStr) -> io::Result<Stat> {
    Ok(rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?)
}

pub(crate) fn kind(stat: &Stat) -> FileType {
    FileType::from_raw_mode(stat.st_mode)
}

fn check_regular(stat: &Stat) -> io::Result<()> {
    match kind(stat) {
        FileType::RegularFile => Ok(()),
        FileType::Directory => Err(io::ErrorKind::IsADirectory.into()),
        // The resolver's path ends in no symlink: one there now was swapped in since.
        FileType::Symlink => Err(Errno::LOOP.into()),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file or directory",
        )),
    }
}

/// Removes `name` from `dir`, a directory with everything in it, all through handles.
pub(crate) fn remove_tree(dir: impl AsFd, name: &OsStr) -> io::Result<()> {
    let dir = dir.as_fd();
    if kind(&stat_at(dir, name)?) != FileType::Directory {
        return Ok(rustix::fs::unlinkat(dir, name, AtFlags::empty())?);
    }
    let sub = rustix::fs::openat(dir, name, DIR_FLAGS, Mode::empty())?;
    for entry in entries(&sub)? {
        remove_tree(&sub, &entry)?;
    }
    Ok(rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)?)
}

/// The names in a directory (without `.` and `..`), read through its handle.
pub(crate) fn entries(dir: impl AsFd) -> io::Result<Vec<std::ffi::OsString>> {
    use std::os::unix::ffi::OsStrExt;
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(OsStr::from_bytes(name).to_owned());
        }
    }
    Ok(names)
}

/// Whether an I/O error means "a symlink was met where none may be": the path changed
/// between the check and the use.
pub(crate) fn is_symlink_met(e: &io::Error) -> bool {
    e.raw_os_error() == Some(Errno::LOOP.raw_os_error())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    fn root() -> (tempfile::TempDir, OwnedFd) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("a/b/f.txt"), "in").unwrap();
        let fd = open_root(dir.path()).unwrap();
        (dir, fd)
    }

    fn at<'a>(fd: &'a OwnedFd, rel: &'a str) -> Beneath<'a> {
        Beneath {
            root: fd.as_fd(),
            rel: Path::new(rel),
        }
    }

    #[test]
    fn plain_paths_open_and_missing_directories_are_created() {
        let (dir, fd) = root();
        let (mut file, stat) = at(&fd, "a/b/f.txt").open_regular().unwrap();
        let mut text = String::new();
        io::Read::read_to_string(&mut file, &mut text).unwrap();
        assert_eq!((text.as_str(), stat.st_size), ("in", 2));
        assert_eq!(kind(&at(&fd, "").stat().unwrap()), FileType::Directory);
        let (_, name) = at(&fd, "x/y/new.txt").open_parent(true).unwrap().unwrap();
        assert_eq!(name, "new.txt");
        assert!(dir.path().join("x/y").is_dir());
        assert!(at(&fd, "").open_parent(true).unwrap().is_none());
    }

    #[test]
    fn no_symlink_is_followed_even_one_leading_inside() {
        let (dir, fd) = root();
        symlink(dir.path().join("a"), dir.path().join("link")).unwrap();
        symlink(dir.path().join("a/b/f.txt"), dir.path().join("flink")).unwrap();
        for rel in ["link/b/f.txt", "flink"] {
            let e = at(&fd, rel).open_regular().unwrap_err();
            assert!(is_symlink_met(&e), "{rel}: {e}");
        }
        let e = at(&fd, "link/b").open_dir().unwrap_err();
        assert!(is_symlink_met(&e), "{e}");
        let e = at(&fd, "link/new/x").open_parent(true).unwrap_err();
        assert!(is_symlink_met(&e), "{e}");
        assert!(
            !dir.path().join("a/new").exists(),
            "nothing created through the link"
        );
        assert_eq!(kind(&at(&fd, "link").stat().unwrap()), FileType::Symlink);
    }

    #[test]
    fn special_files_are_refused_before_opening() {
        let (dir, fd) = root();
        rustix::fs::mkfifoat(&fd, "fifo", Mode::from_raw_mode(0o600)).unwrap();
        let e = at(&fd, "fifo").open_regular().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        let e = at(&fd, "a").open_regular().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::IsADirectory);
        assert!(dir.path().join("fifo").exists());
    }

    #[test]
    fn remove_tree_removes_through_handles_without_following_links() {
        let (dir, fd) = root();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("keep.txt"), "keep").unwrap();
        symlink(outside.path(), dir.path().join("a/b/out")).unwrap();
        remove_tree(&fd, OsStr::new("a")).unwrap();
        assert!(!dir.path().join("a").exists());
        assert!(outside.path().join("keep.txt").is_file());
    }
}
