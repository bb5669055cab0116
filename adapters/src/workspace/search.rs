//! `glob` and `grep` over a gitignore-aware walk (`ignore`, `globset`, `grep-searcher`).
//!
//! `.gitignore` applies with or without a `.git` directory (`require_git(false)`); the
//! service user's global git excludes do not (the agent's view must not depend on the
//! host's configuration). Hidden files are visible, `.git` itself is not. Symlinks are not
//! followed into directories; a symlink to a file is kept only when its target is allowed.
//!
//! The walk lists names by path, so a directory swapped for a symlink mid-walk could list
//! another directory's names: every file it yields is therefore checked again through its
//! root handle ([`super::beneath`]) before it is reported, and searched files are read
//! through that handle, never by path.

use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobMatcher};
use grep_regex::RegexMatcherBuilder;
use grep_searcher::{BinaryDetection, SearcherBuilder, sinks::Lossy};
use ignore::WalkBuilder;
use ports::{GrepMatch, GrepOutput, GrepRequest, PathList, WorkspaceError};

use super::files::{existing_dir, open_regular};
use super::resolve::{Resolved, Resolver};

/// Characters kept of a matching line.
const MAX_LINE_CHARS: usize = 500;

pub(crate) fn glob(
    r: &Resolver,
    pattern: &str,
    base: &str,
    limit: usize,
) -> Result<PathList, WorkspaceError> {
    let base = existing_dir(r, base)?;
    let matcher = compile_glob(pattern.trim_start_matches("./"))?;
    let mut found = Vec::new();
    let mut truncated = false;
    for (shown_path, _) in walk_files(r, &base.real) {
        let rel = shown_path.strip_prefix(&base.real).unwrap_or(&shown_path);
        if !matcher.is_match(rel) {
            continue;
        }
        if found.len() == limit {
            truncated = true;
            break;
        }
        found.push(r.policy().display(&shown_path));
    }
    found.sort();
    Ok(PathList {
        paths: found,
        truncated,
    })
}

pub(crate) fn grep(r: &Resolver, request: &GrepRequest) -> Result<GrepOutput, WorkspaceError> {
    let matcher = RegexMatcherBuilder::new()
        .case_insensitive(request.case_insensitive)
        .line_terminator(Some(b'\n'))
        .build(&request.pattern)
        .map_err(|e| WorkspaceError::InvalidPattern(e.to_string()))?;
    let files = grep_files(r, request)?;
    let mut searcher = SearcherBuilder::new()
        .binary_detection(BinaryDetection::quit(b'\x00'))
        .line_number(true)
        .build();
    let mut out = GrepOutput::default();
    for (shown, real) in files {
        let shown = r.policy().display(&shown);
        let sink = Lossy(|line_number, line: &str| {
            if out.matches.len() >= request.max_matches {
                out.truncated = true;
                return Ok(false);
            }
            out.matches.push(GrepMatch {
                path: shown.clone(),
                line_number,
                line: clip(line),
            });
            Ok(true)
        });
        // Unreadable files are skipped, as grep -s would; read through the root handle.
        let opened = open_regular(
            r,
            &Resolved {
                real,
                shown: shown.clone(),
            },
        );
        if let Ok((file, _)) = opened {
            let _ = searcher.search_file(&matcher, &file, sink);
        }
        if out.truncated {
            break;
        }
    }
    Ok(out)
}

/// The files a grep reads, as (path shown to the model, path actually read): the walk of a
/// directory filtered by the include glob, or the one file named.
fn grep_files<'a>(
    r: &'a Resolver,
    request: &GrepRequest,
) -> Result<Box<dyn Iterator<Item = (PathBuf, PathBuf)> + 'a>, WorkspaceError> {
    let include = request
        .include
        .as_deref()
        .map(|glob| compile_glob(glob.trim_start_matches("./")).map(|m| (glob.contains('/'), m)))
        .transpose()?;
    let target = r.resolve(&request.path)?;
    let stat = r
        .beneath(&target)?
        .stat()
        .map_err(|e| super::resolve::io_error(&target.shown, &e))?;
    match super::beneath::kind(&stat) {
        rustix::fs::FileType::Directory => {
            let base = target.real.clone();
            let walked = walk_files(r, &target.real).filter(move |(shown, _)| {
                include.as_ref().is_none_or(|(by_path, glob)| {
                    if *by_path {
                        glob.is_match(shown.strip_prefix(&base).unwrap_or(shown))
                    } else {
                        shown.file_name().is_some_and(|name| glob.is_match(name))
                    }
                })
            });
            Ok(Box::new(walked))
        }
        // An explicitly named file is searched whatever the include glob or .gitignore say.
        rustix::fs::FileType::RegularFile => Ok(Box::new(std::iter::once((
            target.real.clone(),
            target.real,
        )))),
        // A FIFO or device would block the search forever.
        _ => Err(WorkspaceError::Io(format!(
            "{}: not a regular file or directory",
            target.shown
        ))),
    }
}

/// Files under `root` that the walk keeps: `(path under root, real path to read)`.
fn walk_files<'a>(r: &'a Resolver, root: &Path) -> impl Iterator<Item = (PathBuf, PathBuf)> + 'a {
    WalkBuilder::new(root)
        .hidden(false)
        .require_git(false)
        .git_global(false)
        .follow_links(false)
        .filter_entry(|entry| entry.file_name() != ".git")
        .sort_by_file_name(|a, b| a.cmp(b))
        .build()
        .filter_map(Result::ok)
        .filter_map(move |entry| {
            let kind = entry.file_type()?;
            let real = if kind.is_file() {
                entry.path().to_path_buf()
            } else if kind.is_symlink() {
                r.real_inside(entry.path())?
            } else {
                return None;
            };
            // Still a regular file where the walk saw it, reached without symlinks.
            let stat = r.beneath_path(&real)?.stat().ok()?;
            (r.policy().contains(&real)
                && super::beneath::kind(&stat) == rustix::fs::FileType::RegularFile)
                .then(|| (entry.into_path(), real))
        })
}

/// Globs use `/` literally: `*.md` is the top level, `**/*.md` any depth.
fn compile_glob(pattern: &str) -> Result<GlobMatcher, WorkspaceError> {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map(|glob| glob.compile_matcher())
        .map_err(|e| WorkspaceError::InvalidPattern(e.to_string()))
}

/// A matching line without its line ending, cut to [`MAX_LINE_CHARS`].
fn clip(line: &str) -> String {
    let line = line.trim_end_matches(['\n', '\r']);
    match line.char_indices().nth(MAX_LINE_CHARS) {
        Some((cut, _)) => format!("{}…", line.get(..cut).unwrap_or(line)),
        None => line.to_owned(),
    }
}
