DROP TABLE chat_chains;
