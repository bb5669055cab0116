-- The MCP servers a preset lists (JSON), empty for every existing preset.
ALTER TABLE presets ADD COLUMN mcp_servers TEXT NOT NULL DEFAULT '[]';
