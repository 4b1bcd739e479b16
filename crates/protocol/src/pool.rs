//! Messages between the data worker and its helpers, the worker pool that decodes stacks and
//! filters and labels slabs in parallel.
//!
//! A helper is another instance of the data worker's own wasm module, started by the data
//! worker with the worker name [`HELPER_NAME`]; it owns no layers and answers one job at a
//! time. Jobs carry what they work on as attachments: [`ToHelper::Decode`] a `File` (or a URL
//! the helper fetches itself, so reading runs in parallel too), [`ToHelper::Filter`] one
//! transferred `ArrayBuffer` of little-endian `f32`, `depth × height × width`, row-major,
//! [`ToHelper::Label`] a block of a mask as bytes (and its markers). Every
//! job ends with exactly one reply carrying its `job` number: the result or
//! [`FromHelper::Failed`] with a message that names the file.
//!
//! ```
//! use emstudio_protocol::pool::{FromHelper, HELPER_NAME};
//! use emstudio_protocol::{decode, encode};
//! let msg = FromHelper::Failed { job: 3, error: "0007.png: truncated".into() };
//! assert_eq!(decode::<FromHelper>(&encode(&msg).unwrap()).unwrap(), msg);
//! assert!(HELPER_NAME.starts_with("emstudio"));
//! ```

use crate::RequestId;
use emstudio_core::labels::blocks::BlockLabelling;
use emstudio_core::stack::{FileFormat, Limits};
use emstudio_core::DType;
use serde::{Deserialize, Serialize};

/// The worker name (`new Worker(url, { name })`) that makes the data worker's module start as a
/// helper instead of as the data worker.
pub const HELPER_NAME: &str = "emstudio-helper";

/// A job for a helper.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ToHelper {
    /// Read and decode one slice file (every page of a TIFF). The file is the one attachment,
    /// or, when `url` is set, fetched by the helper.
    Decode {
        /// Job number, echoed in the reply.
        job: u32,
        /// File name, for errors.
        name: String,
        /// Where to fetch the file; `None` when it is attached.
        url: Option<String>,
        /// Per-file limits (the data worker checks the whole stack).
        limits: Limits,
    },
    /// Run a filter pipeline over one slab (attached `f32` buffer; a second attachment, when
    /// the page is cross-origin isolated, is the shared cancel board) and send back its
    /// slices `keep_from .. keep_from + keep` (the rest are neighbours a 3D step reads).
    Filter {
        /// Job number, echoed in the reply.
        job: u32,
        /// The app's request, whose slot on the cancel board stops the job.
        request: RequestId,
        /// The pipeline as JSON (`emstudio_core::filters::Pipeline`).
        pipeline_json: String,
        /// The first slice to send back.
        keep_from: usize,
        /// Slices to send back.
        keep: usize,
        /// Slices in the slab.
        depth: usize,
        /// Rows per slice.
        height: usize,
        /// Columns per slice.
        width: usize,
    },
    /// Label one block of a thresholded mask (attached: the mask as one `u8` per voxel,
    /// `depth × height × width`; then, when `markers`, the marker IDs as little-endian `u32`;
    /// then, when the page is cross-origin isolated, the shared cancel board) and send back
    /// the labels of its slices `send_from .. send_from + send`.
    Label {
        /// Job number, echoed in the reply.
        job: u32,
        /// The app's request, whose slot on the cancel board stops the job.
        request: RequestId,
        /// What to compute on the block.
        how: BlockLabelling,
        /// Whether the marker IDs are attached.
        markers: bool,
        /// The first slice to send back.
        send_from: usize,
        /// Slices to send back.
        send: usize,
        /// Slices in the block.
        depth: usize,
        /// Rows per slice.
        height: usize,
        /// Columns per slice.
        width: usize,
    },
}

/// The shape and type of one decoded page; its samples are the matching attachment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageShape {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Channels (1 or 3).
    pub channels: usize,
    /// Sample type; samples are little-endian.
    pub dtype: DType,
}

/// A helper's reply.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum FromHelper {
    /// The helper listens (sent once, after its module started).
    Ready {
        /// [`crate::PROTOCOL_VERSION`] of the helper's build.
        version: u8,
    },
    /// A decoded file: one attached `ArrayBuffer` per page.
    Decoded {
        /// Job number.
        job: u32,
        /// The file's format.
        format: FileFormat,
        /// Each page's shape, in order.
        pages: Vec<PageShape>,
    },
    /// How far a job has got (not its end: the job still sends its result), at most every
    /// 100 ms while a long kernel runs.
    Progress {
        /// Job number.
        job: u32,
        /// Work done, in the kernel's units.
        done: u64,
        /// Work in all.
        total: u64,
    },
    /// A filtered slab: one attached `f32` buffer, the slab's shape.
    Filtered {
        /// Job number.
        job: u32,
    },
    /// A labelled block: one attached little-endian `u32` buffer, the slices asked for.
    Labelled {
        /// Job number.
        job: u32,
    },
    /// The job failed; `error` names the file or step.
    Failed {
        /// Job number.
        job: u32,
        /// What went wrong.
        error: String,
    },
}

impl FromHelper {
    /// The job this reply is about (`None` for `Ready`); every reply but `Progress` ends it.
    pub fn job(&self) -> Option<u32> {
        match self {
            FromHelper::Ready { .. } => None,
            FromHelper::Decoded { job, .. }
            | FromHelper::Progress { job, .. }
            | FromHelper::Filtered { job }
            | FromHelper::Labelled { job }
            | FromHelper::Failed { job, .. } => Some(*job),
        }
    }
}

/// How many helpers a machine with `cores` logical cores gets when the page does not say
/// (`?workers=N`): one per core, since the data worker mostly waits while they work, at most 8.
///
/// ```
/// use emstudio_protocol::pool::default_helpers;
/// assert_eq!((default_helpers(0), default_helpers(2), default_helpers(64)), (1, 2, 8));
/// ```
pub fn default_helpers(cores: usize) -> usize {
    cores.clamp(1, 8)
}
