//! Progress reporting and cancellation for long operations.
//!
//! Long kernels (3D filters, labelling, watershed, metrics over a volume) take a
//! `&mut dyn Progress` and call [`Progress::report`] every so often (per slice or per plane is
//! typical). The callee returns [`ControlFlow::Break`] to cancel; the kernel then stops and
//! returns [`Cancelled`]. The worker maps this to protocol progress events and `Cancel`, the
//! CLI to a progress bar and Ctrl-C.
//!
//! ```
//! use emstudio_core::progress::{Progress, NoProgress};
//! use std::ops::ControlFlow;
//! let mut seen = Vec::new();
//! let mut p = |done: u64, total: u64| { seen.push((done, total)); ControlFlow::Continue(()) };
//! assert!(p.report(1, 4).is_continue());
//! assert!(NoProgress.report(1, 4).is_continue());
//! assert_eq!(seen, vec![(1, 4)]);
//! ```

use std::ops::ControlFlow;

/// Receives progress and may ask to stop.
pub trait Progress {
    /// `done` of `total` units are finished. Return `Break` to cancel.
    fn report(&mut self, done: u64, total: u64) -> ControlFlow<()>;
}

impl<F: FnMut(u64, u64) -> ControlFlow<()>> Progress for F {
    fn report(&mut self, done: u64, total: u64) -> ControlFlow<()> {
        self(done, total)
    }
}

/// Ignores progress and never cancels.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn report(&mut self, _done: u64, _total: u64) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
}

/// The operation was cancelled through its [`Progress`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cancelled")]
pub struct Cancelled;

/// Reports and converts a `Break` into `Err(Cancelled)`, for use with `?`.
pub fn check(progress: &mut dyn Progress, done: u64, total: u64) -> Result<(), Cancelled> {
    match progress.report(done, total) {
        ControlFlow::Continue(()) => Ok(()),
        ControlFlow::Break(()) => Err(Cancelled),
    }
}
