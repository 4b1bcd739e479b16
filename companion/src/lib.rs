//! The EM Studio companion: a native server next to the browser app.
//!
//! Today it serves the built app and datasets ([`catalog`] finds them, [`server`] serves them
//! with path traversal refused). Collaboration, long training jobs and batch CLI commands
//! build on the same binary later.

pub mod catalog;
pub mod server;
