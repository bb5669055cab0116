-- A conversation's metadata: a flat string map callers set and filter lists by (an IM
-- gateway finds "the conversation of this channel"). One row per key, so a filter is an
-- indexed lookup on both backends.
CREATE TABLE conversation_metadata (
    conversation_id TEXT NOT NULL REFERENCES conversations (conversation_id),
    key             TEXT NOT NULL,
    value           TEXT NOT NULL,
    PRIMARY KEY (conversation_id, key)
);
CREATE INDEX conversation_metadata_lookup ON conversation_metadata (key, value);
