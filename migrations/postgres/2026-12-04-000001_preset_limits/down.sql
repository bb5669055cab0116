ALTER TABLE presets DROP COLUMN limits;
