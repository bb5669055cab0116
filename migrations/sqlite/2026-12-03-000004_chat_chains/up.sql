-- The OpenAI-compatible surface's memory: the hash of a chat's user/assistant text chain
-- after a session, so a request resending the whole chat goes on from that session.
CREATE TABLE chat_chains (
    chain_hash TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    conversation_id TEXT NOT NULL
);
