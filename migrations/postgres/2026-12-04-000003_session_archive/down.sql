ALTER TABLE sessions DROP COLUMN status_before_archive;
