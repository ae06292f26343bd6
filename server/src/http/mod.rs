//! Listeners, TLS, limits, health, metrics and shutdown.
//!
//! (Skeleton: the transport helper fills this module.)
