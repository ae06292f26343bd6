//! Durable SQLite key store for keyplane (in progress).
