ALTER TABLE sessions DROP COLUMN subagent_name;
