//! [`LocalWorkspace`]: the port implementation, moving each operation onto the blocking
//! pool so no filesystem call runs on the async runtime.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use ports::{
    DirEntry, FileInfo, GrepOutput, GrepRequest, LineSlice, LineWindow, PathList, PathPolicy,
    Workspace, WorkspaceError,
};

use super::beneath::open_root;
use super::resolve::Resolver;
use super::{files, search};

/// The agent's files on the host: its working directory plus the allowed paths.
#[derive(Debug, Clone)]
pub struct LocalWorkspace {
    inner: Arc<Resolver>,
}

impl LocalWorkspace {
    /// A workspace rooted at `working_dir` (which must be an existing directory) plus
    /// `allowed_paths` (relative ones are taken from the working directory; missing ones are
    /// skipped with a warning). Symlinks in all of them are resolved here, once, and each
    /// is opened: every later operation starts from these handles.
    ///
    /// `container_workdir` is set in docker mode: where the working directory is mounted in
    /// the container. Then `shell_dir` answers container paths, `working_dir` shows the
    /// container path, and absolute container paths under it are accepted as input.
    ///
    /// # Errors
    /// `NotFound` / `NotADirectory` / `Io` for an unusable working directory.
    pub fn new(
        working_dir: &Path,
        allowed_paths: &[PathBuf],
        container_workdir: Option<String>,
    ) -> Result<Self, WorkspaceError> {
        let shown = working_dir.display().to_string();
        let working_dir =
            std::fs::canonicalize(working_dir).map_err(|e| super::resolve::io_error(&shown, &e))?;
        if !working_dir.is_dir() {
            return Err(WorkspaceError::NotADirectory(shown));
        }
        let root = open_root(&working_dir).map_err(|e| super::resolve::io_error(&shown, &e))?;
        let mut handles = vec![(working_dir.clone(), root)];
        for path in allowed_paths {
            let joined = working_dir.join(path);
            match std::fs::canonicalize(&joined).and_then(|real| {
                let fd = open_root(&real)?;
                Ok((real, fd))
            }) {
                Ok(handle) => handles.push(handle),
                Err(e) => tracing::warn!(
                    path = %joined.display(),
                    error = %e,
                    "allowed path skipped: it does not resolve to a directory"
                ),
            }
        }
        let container_workdir = container_workdir.map(|dir| match dir.trim_end_matches('/') {
            "" => "/".to_owned(),
            trimmed => trimmed.to_owned(),
        });
        Ok(Self {
            inner: Arc::new(Resolver::new(working_dir, handles, container_workdir)),
        })
    }

    /// The same workspace, refusing every path at or under one of `protected` (absolute,
    /// symlink-free: the service's own files) even inside the working directory.
    ///
    /// # Errors
    /// `Io` when the workspace was already shared (cloned): protect it before that.
    pub fn with_protected(mut self, protected: Vec<PathBuf>) -> Result<Self, WorkspaceError> {
        let resolver = Arc::get_mut(&mut self.inner).ok_or_else(|| {
            WorkspaceError::Io("protected paths must be set before the workspace is shared".into())
        })?;
        resolver.protect(protected);
        Ok(self)
    }

    /// The resolved policy (working directory and allowed roots, symlink-free).
    pub fn policy(&self) -> &PathPolicy {
        self.inner.policy()
    }

    /// Runs `op` on the blocking pool.
    async fn blocking<T, F>(&self, op: F) -> Result<T, WorkspaceError>
    where
        T: Send + 'static,
        F: FnOnce(&Resolver) -> Result<T, WorkspaceError> + Send + 'static,
    {
        let resolver = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || op(&resolver))
            .await
            .map_err(|e| WorkspaceError::Io(format!("internal error: {e}")))?
    }
}

#[async_trait]
impl Workspace for LocalWorkspace {
    fn working_dir(&self) -> String {
        match self.inner.container_workdir() {
            Some(dir) => dir.to_owned(),
            None => self
                .inner
                .policy()
                .working_dir()
                .to_string_lossy()
                .into_owned(),
        }
    }

    async fn read_capped(&self, path: &str, max_bytes: u64) -> Result<Vec<u8>, WorkspaceError> {
        let path = path.to_owned();
        self.blocking(move |r| files::read_capped(r, &path, max_bytes))
            .await
    }

    async fn read_lines(
        &self,
        path: &str,
        window: LineWindow,
    ) -> Result<LineSlice, WorkspaceError> {
        let path = path.to_owned();
        self.blocking(move |r| files::read_lines(r, &path, &window))
            .await
    }

    async fn write(&self, path: &str, contents: Vec<u8>) -> Result<(), WorkspaceError> {
        let path = path.to_owned();
        self.blocking(move |r| files::write(r, &path, &contents))
            .await
    }

    async fn stat(&self, path: &str) -> Result<FileInfo, WorkspaceError> {
        let path = path.to_owned();
        self.blocking(move |r| files::stat(r, &path)).await
    }

    async fn list(&self, path: &str) -> Result<Vec<DirEntry>, WorkspaceError> {
        let path = path.to_owned();
        self.blocking(move |r| files::list(r, &path)).await
    }

    async fn glob(
        &self,
        pattern: &str,
        base: &str,
        limit: usize,
    ) -> Result<PathList, WorkspaceError> {
        let (pattern, base) = (pattern.to_owned(), base.to_owned());
        self.blocking(move |r| search::glob(r, &pattern, &base, limit))
            .await
    }

    async fn grep(&self, request: GrepRequest) -> Result<GrepOutput, WorkspaceError> {
        self.blocking(move |r| search::grep(r, &request)).await
    }

    async fn create_dir(&self, path: &str) -> Result<(), WorkspaceError> {
        let path = path.to_owned();
        self.blocking(move |r| files::create_dir(r, &path)).await
    }

    async fn rename(&self, from: &str, to: &str) -> Result<(), WorkspaceError> {
        let (from, to) = (from.to_owned(), to.to_owned());
        self.blocking(move |r| files::rename(r, &from, &to)).await
    }

    async fn remove(&self, path: &str) -> Result<(), WorkspaceError> {
        let path = path.to_owned();
        self.blocking(move |r| files::remove(r, &path)).await
    }

    async fn copy(&self, from: &str, to: &str) -> Result<(), WorkspaceError> {
        let (from, to) = (from.to_owned(), to.to_owned());
        self.blocking(move |r| files::copy(r, &from, &to)).await
    }

    async fn shell_dir(&self, path: &str) -> Result<String, WorkspaceError> {
        let path = path.to_owned();
        self.blocking(move |r| files::shell_dir(r, &path)).await
    }
}
