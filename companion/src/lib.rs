//! The EM Studio companion: a native binary next to the browser app.
//!
//! It serves the built app and datasets ([`catalog`], the `emstudio-catalog` crate, finds them;
//! [`server`] serves them with path traversal refused) and runs batch commands over stacks
//! ([`cli`]: `filter`, `label`, `evaluate`; [`nets_cli`]: `train`, `infer`, `card`, `import`;
//! [`ffn_cli`]: `ffn prepare`).
//! Collaboration and long training jobs build on the same binary later.

pub use emstudio_catalog as catalog;
pub mod cli;
pub mod ffn_cli;
pub mod nets_cli;
pub mod server;
