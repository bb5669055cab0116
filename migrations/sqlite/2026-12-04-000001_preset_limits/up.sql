-- The caps on each run of a preset (JSON), none for every existing preset.
ALTER TABLE presets ADD COLUMN limits TEXT NOT NULL DEFAULT '{}';
