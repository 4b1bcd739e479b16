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

/// Maps a sub-step's progress into `[offset, offset + span)` of 1000 overall units, so a
/// pipeline of steps reports one bar from 0 to 1000.
///
/// ```
/// use emstudio_core::progress::{Phase, Progress};
/// use std::ops::ControlFlow;
/// let mut last = (0, 0);
/// let mut outer = |d: u64, t: u64| { last = (d, t); ControlFlow::Continue(()) };
/// let _ = Phase::new(&mut outer, 500, 250).report(1, 2);
/// assert_eq!(last, (625, 1000));
/// ```
pub struct Phase<'a> {
    inner: &'a mut dyn Progress,
    offset: u64,
    span: u64,
}

impl<'a> Phase<'a> {
    /// Reports into `[offset, offset + span)` of 1000 units of `inner`.
    pub fn new(inner: &'a mut dyn Progress, offset: u64, span: u64) -> Self {
        Self {
            inner,
            offset,
            span,
        }
    }
}

impl Progress for Phase<'_> {
    fn report(&mut self, done: u64, total: u64) -> ControlFlow<()> {
        let frac = (done.min(total) * self.span)
            .checked_div(total)
            .unwrap_or(self.span);
        self.inner.report(self.offset + frac, 1000)
    }
}
