-- Timestamps are epoch microseconds (BIGINT) and JSON is TEXT so both SQL backends share
-- one diesel schema and compare and order identically.
CREATE TABLE presets (
    preset_id     TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    description   TEXT,
    model         TEXT NOT NULL,
    system_prompt TEXT NOT NULL,
    toolsets      TEXT NOT NULL,
    environment   TEXT NOT NULL,
    subagents     TEXT NOT NULL,
    tool_config   TEXT NOT NULL,
    is_default    BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
-- At most one default preset.
CREATE UNIQUE INDEX presets_one_default ON presets (is_default) WHERE is_default;

CREATE TABLE conversations (
    conversation_id   TEXT PRIMARY KEY,
    title             TEXT,
    default_preset_id TEXT,
    status            TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE INDEX conversations_activity ON conversations (updated_at DESC, conversation_id DESC);
CREATE INDEX conversations_default_preset ON conversations (default_preset_id);

CREATE TABLE sessions (
    session_id         TEXT PRIMARY KEY,
    parent_session_id  TEXT,
    conversation_id    TEXT NOT NULL REFERENCES conversations (conversation_id),
    session_type       TEXT NOT NULL,
    transport          TEXT NOT NULL,
    spawned_by         TEXT,
    preset_id          TEXT,
    status             TEXT NOT NULL,
    run_summary        TEXT,
    pending_tool_calls TEXT NOT NULL DEFAULT '[]',
    error              TEXT,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);
CREATE INDEX sessions_by_conversation ON sessions (conversation_id, created_at);
-- The one-running-agent-session-per-conversation rule, enforced by the database.
CREATE UNIQUE INDEX sessions_one_running_agent ON sessions (conversation_id)
    WHERE status = 'created' AND session_type = 'agent';
CREATE INDEX sessions_running ON sessions (status) WHERE status = 'created';
CREATE INDEX sessions_preset ON sessions (preset_id) WHERE status = 'created';

CREATE TABLE mailbox (
    message_id        TEXT PRIMARY KEY,
    conversation_id   TEXT NOT NULL REFERENCES conversations (conversation_id),
    source_session_id TEXT NOT NULL,
    source_type       TEXT NOT NULL,
    subagent_name     TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    delivered_to      TEXT
);
CREATE INDEX mailbox_pending ON mailbox (conversation_id, created_at) WHERE delivered_to IS NULL;
CREATE INDEX mailbox_delivered ON mailbox (delivered_to);
