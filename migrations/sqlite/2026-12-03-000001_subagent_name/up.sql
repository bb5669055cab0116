-- The async subagent's name, stored on its session instead of guessed from the mailbox.
ALTER TABLE sessions ADD COLUMN subagent_name TEXT;
UPDATE sessions
SET subagent_name = COALESCE(
    (SELECT m.subagent_name FROM mailbox m
     WHERE m.source_session_id = sessions.session_id
     ORDER BY m.created_at LIMIT 1),
    'subagent')
WHERE session_type = 'async_subagent';
