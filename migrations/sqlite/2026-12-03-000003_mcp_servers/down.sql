ALTER TABLE presets DROP COLUMN mcp_servers;
