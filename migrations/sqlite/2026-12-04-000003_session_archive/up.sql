-- Archiving a conversation archives its sessions; the status each had before is kept so
-- unarchiving restores it (committed sessions are continuable again).
ALTER TABLE sessions ADD COLUMN status_before_archive TEXT;
