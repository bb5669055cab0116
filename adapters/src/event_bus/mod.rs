//! Event bus adapters: in-process and Redis Streams.
