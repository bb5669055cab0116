DROP TABLE mailbox;
DROP TABLE sessions;
DROP TABLE conversations;
DROP TABLE presets;
