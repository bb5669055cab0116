//! The vocabulary of agent-runtime and the ports through which its core talks to the world.
//!
//! Nothing here performs I/O: domain types are plain serde data, and each port is an
//! `async_trait` whose doc comments state its contract. Adapters live in the `adapters`
//! crate; the contract suite in `adapters/tests/contract` checks every sentence of those
//! docs against every adapter. With the `mock` feature every port gets a mockall mock so
//! the core can be unit-tested with no database, bus, network or shell.

pub mod domain;
pub mod download;
pub mod environment;
pub mod event_bus;
pub mod metrics;
pub mod model_provider;
pub mod notification_sink;
pub mod shell;
pub mod state_store;
pub mod storage;
pub mod tool_servers;
pub mod web_services;
pub mod workspace;

pub use domain::*;
pub use download::{DownloadError, Downloaded, Downloader};
pub use environment::{
    EnvironmentError, EnvironmentFactory, EnvironmentWarning, OpenedEnvironment, PathProblem,
};
pub use event_bus::{EventBus, EventBusError, StreamKey};
pub use metrics::{Metrics, NoMetrics};
pub use model_provider::{ModelDelta, ModelError, ModelProvider, ModelRequest, ModelStream};
pub use notification_sink::NotificationSink;
pub use shell::{Shell, ShellError, ShellOutput, ShellRequest};
pub use state_store::{StateStore, StateStoreError};
pub use storage::{
    ChatChainRepo, Claim, ConversationRepo, Database, IdempotencyRecord, IdempotencyRepo,
    MailboxRepo, NotificationRepo, PresetRepo, SessionRepo, StorageError,
};
pub use tool_servers::{
    RemoteTool, RemoteToolResult, ServerKey, ServerLaunch, ToolServerError, ToolServers,
};
pub use web_services::{ScrapedPage, Scraper, SearchHit, WebSearch, WebServiceError};
pub use workspace::{
    DirEntry, FileInfo, GrepMatch, GrepOutput, GrepRequest, LineSlice, LineWindow, PathList,
    TextLine, Workspace, WorkspaceError,
};

/// Mocks of every port (feature `mock`), for unit tests of the core.
#[cfg(feature = "mock")]
pub mod mocks {
    pub use crate::download::MockDownloader;
    pub use crate::environment::MockEnvironmentFactory;
    pub use crate::event_bus::MockEventBus;
    pub use crate::metrics::MockMetrics;
    pub use crate::model_provider::MockModelProvider;
    pub use crate::notification_sink::MockNotificationSink;
    pub use crate::shell::MockShell;
    pub use crate::state_store::MockStateStore;
    pub use crate::storage::{
        MockChatChainRepo, MockConversationRepo, MockDatabase, MockIdempotencyRepo,
        MockMailboxRepo, MockNotificationRepo, MockPresetRepo, MockSessionRepo,
    };
    pub use crate::tool_servers::MockToolServers;
    pub use crate::web_services::{MockScraper, MockWebSearch};
    pub use crate::workspace::MockWorkspace;
}

/// Boxed error source carried by port errors; keeps driver types out of the signatures.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
