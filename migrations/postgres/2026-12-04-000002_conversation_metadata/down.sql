DROP TABLE conversation_metadata;
