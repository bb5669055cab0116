-- Retry keys of run requests (spec 06, safe retries): a repeat with the same key finds
-- the run the first request started.
CREATE TABLE idempotency_keys (
    key TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    session_id TEXT,
    conversation_id TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
