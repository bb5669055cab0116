//! State store adapters on opendal: local filesystem, S3, memory.
