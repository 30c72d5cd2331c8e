//! Shared helpers for netsock's integration tests.
