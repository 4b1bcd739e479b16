//! Messages between the UI thread ([`ToWorker`]) and the Web Worker ([`FromWorker`]), and the
//! companion's dataset catalogue ([`DatasetInfo`]); [`nets`] holds the messages between the
//! data worker and the network worker.
//!
//! Messages are encoded with postcard behind a version byte ([`encode`] / [`decode`]). Bulk
//! data never goes inside a message: the envelope that carries the encoded bytes also carries
//! `File` objects (app → worker) and transferred `ArrayBuffer`s (worker → app, e.g. slice
//! pixels), and the message says what each attached buffer is. Every request carries a
//! [`RequestId`]; long requests stream [`FromWorker::Progress`] and end with exactly one
//! terminal reply (see [`FromWorker::is_terminal`]); [`ToWorker::Cancel`] stops them.
//!
//! ```
//! use emstudio_protocol::{decode, encode, RequestId, ToWorker};
//! let msg = ToWorker::Cancel { request: RequestId(7) };
//! let bytes = encode(&msg).unwrap();
//! assert_eq!(decode::<ToWorker>(&bytes).unwrap(), msg);
//! ```

use emstudio_core::labels::postprocess::PostprocessParams;
use emstudio_core::metrics::isbi::{IsbiParams, IsbiReport};
use emstudio_core::metrics::{EvaluateParams, Evaluation};
use emstudio_core::stack::ExportOptions;
use emstudio_core::{DType, Shape, VoxelSize};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

pub mod nets;
pub mod pool;

/// Version of this protocol; bumped on any incompatible change.
pub const PROTOCOL_VERSION: u8 = 15;

/// Slots of the shared cancel board ([`ToWorker::Configure`]).
pub const CANCEL_SLOTS: u32 = 64;

/// The board slot of `request` and the value written there when it is cancelled (the id's
/// bits as an `i32`, never 0, which marks an empty slot: request ids start at 1).
///
/// ```
/// use emstudio_protocol::{cancel_slot, RequestId, CANCEL_SLOTS};
/// assert_eq!(cancel_slot(RequestId(65)), (1, 65));
/// assert_eq!(cancel_slot(RequestId(u32::MAX)).0, (u32::MAX % CANCEL_SLOTS) as usize);
/// ```
pub fn cancel_slot(request: RequestId) -> (usize, i32) {
    (
        (request.0 % CANCEL_SLOTS) as usize,
        i32::from_ne_bytes(request.0.to_ne_bytes()),
    )
}

/// Identifies one request and all replies to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RequestId(pub u32);

/// Identifies a layer held by the worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LayerId(pub u32);

/// What a layer's values mean.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LayerKind {
    /// Intensities (EM image, probability map).
    Image,
    /// Instance or class IDs (0 = background).
    Label,
    /// Evaluation error map: 1 = voxel of a predicted object that merges GT objects,
    /// 2 = voxel of a GT object that the prediction splits, 3 = both; drawn in fixed colours.
    Errors,
}

impl LayerKind {
    /// Label-like layers (IDs, drawn as colours over the image): `Label` and `Errors`.
    pub fn is_labels(self) -> bool {
        matches!(self, LayerKind::Label | LayerKind::Errors)
    }
}

/// Where the slices of a stack to open come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum StackSource {
    /// `File` objects attached to the envelope, one per name, in this order.
    Attached {
        /// File names (used for sorting and in error messages).
        names: Vec<String>,
    },
    /// URLs the worker fetches itself (companion datasets).
    Urls {
        /// File names, parallel to `urls`.
        names: Vec<String>,
        /// Absolute or page-relative URLs.
        urls: Vec<String>,
    },
}

impl StackSource {
    /// Number of files.
    pub fn len(&self) -> usize {
        match self {
            StackSource::Attached { names } | StackSource::Urls { names, .. } => names.len(),
        }
    }
    /// True when there are no files.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Requests from the app to the worker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ToWorker {
    /// Decode a stack into a new layer. Replies: `Progress`*, then `Opened` or `Failed`/`Cancelled`.
    Open {
        /// Request id.
        request: RequestId,
        /// Image or label layer.
        kind: LayerKind,
        /// Display name of the layer.
        name: String,
        /// Where the slices are.
        source: StackSource,
        /// Voxel size if known (nm).
        voxel_size: Option<VoxelSize>,
    },
    /// Render slice `z` of a layer to RGBA. Reply: `Slice` with one attached buffer.
    RenderSlice {
        /// Request id.
        request: RequestId,
        /// Which layer.
        layer: LayerId,
        /// Slice index.
        z: usize,
        /// Label layers: draw only object outlines.
        outline: bool,
        /// Label layers: segments to ring in white (the editing selection).
        highlight: Vec<u32>,
    },
    /// Values of every layer at one voxel. Reply: `Probe`.
    Probe {
        /// Request id.
        request: RequestId,
        /// Voxel z.
        z: usize,
        /// Voxel y.
        y: usize,
        /// Voxel x.
        x: usize,
    },
    /// Encode a layer to files. Replies: `Progress`*, then `Exported` (one buffer per file).
    Export {
        /// Request id.
        request: RequestId,
        /// Which layer.
        layer: LayerId,
        /// Format and depth.
        options: ExportOptions,
    },
    /// Run a filter pipeline on slice `z` of an image layer and render the result (an instant
    /// preview; nothing is stored). Reply: `Slice` with one attached `ImageBitmap`.
    PreviewFilters {
        /// Request id.
        request: RequestId,
        /// Source image layer.
        layer: LayerId,
        /// Slice index.
        z: usize,
        /// The pipeline as JSON (`emstudio_core::filters::Pipeline`; its filters use serde's
        /// internal tagging, which postcard cannot carry, so JSON travels inside the message).
        pipeline_json: String,
    },
    /// Run a filter pipeline over a whole image layer into a new `f32` image layer.
    /// Replies: `Progress`*, then `LayerCreated` or `Failed`/`Cancelled`.
    ApplyFilters {
        /// Request id.
        request: RequestId,
        /// Source image layer.
        layer: LayerId,
        /// The pipeline as JSON (see `PreviewFilters`).
        pipeline_json: String,
        /// Name of the new layer.
        name: String,
    },
    /// Threshold → label → size filter → relabel an image (probability) or label layer into a
    /// new label layer. Replies: `Progress`*, then `LayerCreated` or `Failed`/`Cancelled`.
    Postprocess {
        /// Request id.
        request: RequestId,
        /// Source layer.
        layer: LayerId,
        /// Seeds for marker watershed.
        markers: Option<LayerId>,
        /// The chain's settings.
        params: PostprocessParams,
        /// Name of the new layer.
        name: String,
    },
    /// Score a predicted label layer against a ground-truth layer and build an error map layer.
    /// Replies: `Progress`*, then `Evaluated` or `Failed`/`Cancelled`.
    Evaluate {
        /// Request id.
        request: RequestId,
        /// Ground-truth label layer.
        gt: LayerId,
        /// Predicted label layer.
        pred: LayerId,
        /// Metric settings.
        params: EvaluateParams,
    },
    /// Score a probability map against a ground-truth layer with the ISBI 2012 protocol
    /// (threshold sweep, border thinning, per-slice means). Replies: `Progress`*, then
    /// `IsbiEvaluated` or `Failed`.
    EvaluateIsbi {
        /// Request id.
        request: RequestId,
        /// Ground-truth label layer (0 = membrane).
        gt: LayerId,
        /// Probability map layer (8/16-bit maps are read as value ÷ 255 / 65535).
        map: LayerId,
        /// Sweep, polarity, thinning.
        params: IsbiParams,
    },
    /// Train a 2D CNN on an image layer and a ground-truth label layer. Attachment 0, when
    /// present, is a model file (`ArrayBuffer`) to fine-tune. Replies: `TrainStarted`, then
    /// `TrainStep`* and `TrainPreview`*, and finally `Trained` (finished or stopped, with the
    /// model) or `Failed`/`Cancelled` (discarded). Steered with `TrainControl`.
    Train {
        /// Request id.
        request: RequestId,
        /// Image layer (grayscale).
        image: LayerId,
        /// Ground-truth label layer of the same size.
        label: LayerId,
        /// Slices to train on.
        train_slices: Vec<usize>,
        /// Held-out slices for the validation loss (empty: the bottom fifth of a single
        /// training slice).
        validation_slices: Vec<usize>,
        /// `emstudio_nets::train::TrainConfig` as JSON (its architecture uses serde's internal
        /// tagging, which postcard cannot carry).
        config_json: String,
        /// Label value meaning "not annotated" (ignored by the loss).
        ignore_label: Option<u32>,
        /// Slice whose prediction is sent as `TrainPreview` (none: no previews).
        preview_z: Option<usize>,
        /// Send a preview every this many steps (0: only at the end).
        preview_every: u32,
        /// Where to run the network.
        device: NetDevice,
    },
    /// Pause, resume or stop a training run, or change its preview slice. No reply of its own.
    TrainControl {
        /// The `Train` request.
        request: RequestId,
        /// What to do.
        control: TrainControl,
    },
    /// Run a model over an image layer into a new layer: the foreground probability (`f32`
    /// image) for one-output models, the most likely class (labels) for K-class ones.
    /// Attachment 0 is the model file. Replies: `Progress`*, then `LayerCreated` or
    /// `Failed`/`Cancelled`.
    Infer {
        /// Request id.
        request: RequestId,
        /// Image layer.
        layer: LayerId,
        /// Slices to run (empty: all; the others stay 0).
        slices: Vec<usize>,
        /// Only this part of each slice (the rest stays 0); none: whole slices.
        region: Option<Region>,
        /// Name of the new layer.
        name: String,
        /// Where to run the network.
        device: NetDevice,
        /// Orientations averaged per tile: 1, 4 (mirror images) or 8 (and 90° rotations).
        views: u8,
    },
    /// Grow one object in 3D with a flood-filling network from a clicked voxel (the Edit
    /// panel's FFN fill). Attachment 0 is the FFN model file. The network runs in a box of
    /// ±`radius` around the seed (clipped to the stack) of the image layer; the result is
    /// held as the label layer's proposal, drawn over its slices until `EditLabels` with
    /// `AcceptProposal` (one undoable edit) or `RejectProposal`. Replies: `Progress`*, then
    /// `FfnProposed` or `Failed`/`Cancelled`.
    FfnFill {
        /// Request id.
        request: RequestId,
        /// The label layer the proposal is for.
        layer: LayerId,
        /// The EM image layer (grayscale).
        image: LayerId,
        /// The clicked voxel `[z, y, x]`.
        seed: [usize; 3],
        /// Half-size of the box the network may fill, `[z, y, x]` voxels.
        radius: [usize; 3],
        /// The field of view moves to voxels at least this probable (google/ffn: 0.9; lower
        /// moves further, for a network that is not sure enough yet).
        move_threshold: f32,
        /// Where to run the network.
        device: NetDevice,
    },
    /// Segment neurons in 3D with a flood-filling network (google/ffn's inference: seeds
    /// from distance-transform peaks, one object at a time) over a box of an image layer
    /// into a new label layer of the image's extent (0 outside the box). Attachment 0 is the
    /// FFN model file. Replies: `Progress`* (seeds), then `LayerCreated` or
    /// `Failed`/`Cancelled`.
    FfnSegment {
        /// Request id.
        request: RequestId,
        /// The EM image layer (grayscale).
        image: LayerId,
        /// The box, `[z, y, x]` start and end (exclusive); none: the whole stack.
        region: Option<[[usize; 3]; 2]>,
        /// Name of the new layer.
        name: String,
        /// Where to run the network.
        device: NetDevice,
    },
    /// Train a flood-filling network on a box of an image layer and its dense instance labels
    /// (neurons). Attachment 0, if any: an FFN model file to fine-tune (its network and
    /// normalisation replace the settings'). Replies: `TrainStarted`, `FfnTrainStep`*, then
    /// `Trained` (attachment 0: the FFN model file) or `Failed`/`Cancelled`. Steered with
    /// `TrainControl` (pause, resume, stop) and `Cancel`, like a 2D run.
    FfnTrain {
        /// Request id.
        request: RequestId,
        /// The EM image layer (grayscale).
        image: LayerId,
        /// Dense instance labels of the same extent.
        label: LayerId,
        /// The box to train in, `[z, y, x]` start and end (exclusive); none: the whole stack.
        region: Option<[[usize; 3]; 2]>,
        /// `emstudio_nets::ffn::train::FfnTrainConfig` as JSON.
        config_json: String,
        /// Where to run.
        device: NetDevice,
    },
    /// The partitions FFN training balances its centres over (google/ffn's
    /// `compute_partitions`, what `emstudio ffn prepare` writes) of a label layer of neurons,
    /// as a new `u8` label layer of the classes (255 at the border). Replies: `Progress`*, then
    /// `LayerCreated` (its summary names the classes) or `Failed`/`Cancelled`.
    FfnPartitions {
        /// Request id.
        request: RequestId,
        /// Dense instance labels.
        label: LayerId,
        /// Half the box side, `[z, y, x]` (training uses half its canvas: the FOV's half plus
        /// the moves).
        lom_radius: [usize; 3],
        /// Objects with fewer voxels count as background.
        min_size: u64,
        /// Name of the new layer.
        name: String,
    },
    /// Look for a WebGPU adapter (once; later calls answer from memory). Reply: `Devices`.
    ProbeDevices {
        /// Request id.
        request: RequestId,
    },
    /// Check a model file before it is stored: the network worker reads it as inference
    /// would (header, every weight against the architecture, finite values). Its bytes are
    /// attached. Reply: `ModelChecked`, or `Failed` naming the file.
    CheckModel {
        /// Request id.
        request: RequestId,
        /// The file's name, for messages.
        name: String,
    },
    /// Make an empty label layer (all 0) the size of another layer, to paint ground truth in.
    /// Reply: `LayerCreated`.
    NewLabelLayer {
        /// Request id.
        request: RequestId,
        /// The layer whose extent and voxel size to copy.
        like: LayerId,
        /// Name of the new layer.
        name: String,
    },
    /// Change a label layer (paint, fill, merge, split, delete, lock, undo, redo). The first
    /// edit of a layer starts its autosave session (`session` names it: dataset and layer).
    /// Replies: `Edited` or `Failed`; later `Autosaved` once the change is on disk (OPFS).
    EditLabels {
        /// Request id.
        request: RequestId,
        /// The label layer.
        layer: LayerId,
        /// What to do.
        edit: LabelEdit,
        /// Autosave session of this layer ("dataset / layer").
        session: String,
    },
    /// List the autosaved edit sessions (from this or an earlier visit). Reply: `Sessions`.
    ListSessions {
        /// Request id.
        request: RequestId,
    },
    /// Reopen an autosaved session as a label layer with its undo history. Replies:
    /// `Progress`*, then `Opened` or `Failed` (`EditLabels` with `Status` then reports the
    /// history).
    RestoreSession {
        /// Request id.
        request: RequestId,
        /// The session's key (from `Sessions`).
        key: String,
    },
    /// Delete an autosaved session. Reply: `Sessions` (those left).
    DiscardSession {
        /// Request id.
        request: RequestId,
        /// The session's key.
        key: String,
    },
    /// Drop a layer and free its memory. No reply.
    Close {
        /// Which layer.
        layer: LayerId,
    },
    /// How the worker may use the machine, sent once after `Ready`: the number of helper
    /// workers for parallel decoding and filtering (0: everything in the data worker), and
    /// whether a shared cancel board is attached (a `SharedArrayBuffer` of
    /// [`CANCEL_SLOTS`] `i32`s, only when the page is cross-origin isolated). The app writes a
    /// cancelled request's id into slot `id % CANCEL_SLOTS` (see [`cancel_slot`]), so a kernel
    /// that runs without yielding sees it at its next progress report.
    Configure {
        /// Helper workers to start on first use.
        helpers: u32,
        /// Whether the cancel board is the one attachment.
        shared_cancel: bool,
    },
    /// Stop a running request; it ends with `Cancelled`.
    Cancel {
        /// The request to stop.
        request: RequestId,
    },
}

/// A rectangle of a slice in voxels: rows `y0..y1`, columns `x0..x1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Region {
    /// First row.
    pub y0: usize,
    /// One past the last row.
    pub y1: usize,
    /// First column.
    pub x0: usize,
    /// One past the last column.
    pub x1: usize,
}

/// Where the networks run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum NetDevice {
    /// WebGPU on a hardware adapter, else the CPU (a software adapter such as SwiftShader is
    /// slower than the CPU backend, so `Auto` does not pick it).
    #[default]
    Auto,
    /// WebGPU whatever the adapter (fails when there is none).
    Gpu,
    /// The CPU backend (burn flex in wasm).
    Cpu,
}

/// A WebGPU adapter and the limits that matter to the networks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuInfo {
    /// Adapter name and vendor as the browser reports them.
    pub adapter: String,
    /// Graphics API behind it ("vulkan", "metal", "webgpu", ...).
    pub backend: String,
    /// True for a software rasteriser (SwiftShader, llvmpipe, a fallback adapter).
    pub software: bool,
    /// Largest buffer, bytes.
    pub max_buffer_size: u64,
    /// Largest storage-buffer binding, bytes (bounds the tile size of inference).
    pub max_storage_binding: u64,
    /// Most invocations in one compute workgroup.
    pub max_workgroup_invocations: u32,
}

/// One change to a label layer. Points are `(y, x)` in data pixels; IDs are `u32` (a label
/// layer becomes 32-bit on its first edit).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum LabelEdit {
    /// A round brush along a polyline on slice `z`; `id` 0 erases.
    Brush {
        /// Slice.
        z: usize,
        /// The stroke.
        points: Vec<(f32, f32)>,
        /// Brush radius, data pixels.
        radius: f32,
        /// Stylus pressure factor per point (radius × factor); empty: the radius everywhere.
        pressure: Vec<f32>,
        /// Paint this ID (0: erase).
        id: u32,
    },
    /// Flood fill from a voxel with `id`.
    Fill {
        /// Seed slice.
        z: usize,
        /// Seed row.
        y: usize,
        /// Seed column.
        x: usize,
        /// Through slices (6-connected) or on this slice only (4-connected).
        three_d: bool,
        /// What stops it.
        limit: FillLimit,
        /// The ID to fill with.
        id: u32,
    },
    /// Every voxel of `ids` becomes `into`.
    Merge {
        /// Segments to merge.
        ids: Vec<u32>,
        /// The ID they get.
        into: u32,
    },
    /// A segment's voxels become 0.
    Delete {
        /// The segment.
        id: u32,
    },
    /// Split the segment under a stroke on slice `z` with a watershed of `image`.
    Split2d {
        /// Slice.
        z: usize,
        /// The stroke across the segment.
        stroke: Vec<(f32, f32)>,
        /// Half-width (data pixels) within which the cut follows the membrane.
        band: f32,
        /// The segment to split (none: the one under the stroke's middle).
        segment: Option<u32>,
        /// The EM image layer.
        image: LayerId,
    },
    /// Split a segment in 3D from two seed voxels `[z, y, x]`.
    Split3d {
        /// The EM image layer.
        image: LayerId,
        /// Seed of the part that keeps the ID.
        a: [usize; 3],
        /// Seed of the part that gets a new ID.
        b: [usize; 3],
    },
    /// Write the layer's pending FFN proposal (`ToWorker::FfnFill`) into the labels as one
    /// edit: its voxels get `id` (an existing ID extends that segment), except voxels of
    /// locked segments.
    AcceptProposal {
        /// The ID the proposal's voxels get; 0: a new ID (one no voxel has).
        id: u32,
    },
    /// Drop the layer's pending FFN proposal.
    RejectProposal,
    /// Lock or unlock a segment (no tool changes a locked one).
    Lock {
        /// The segment.
        id: u32,
        /// Locked or not.
        locked: bool,
    },
    /// Undo the newest edit.
    Undo,
    /// Redo the newest undone edit.
    Redo,
    /// Only report the state (history, locks, next ID).
    Status,
}

/// What bounds a flood fill.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum FillLimit {
    /// Voxels with the seed's label.
    SameLabel,
    /// Voxels of `image` within `tolerance` of the seed's intensity.
    Intensity {
        /// The EM image layer.
        image: LayerId,
        /// Largest difference from the seed's value.
        tolerance: f64,
    },
}

/// The state of a label layer's editing after a change.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EditState {
    /// What the change did ("paint 5", "undo fill 3", "split 12 → 40").
    pub done: String,
    /// Voxels changed.
    pub changed: usize,
    /// First and last slice changed (none: nothing changed).
    pub slices: Option<(usize, usize)>,
    /// Labels of the edits that can be undone, oldest first (at most the last 100).
    pub history: Vec<String>,
    /// Edits that can be undone.
    pub undo_depth: usize,
    /// Edits that can be redone.
    pub redo_depth: usize,
    /// Locked segments.
    pub locked: Vec<u32>,
    /// An ID no voxel has (for "new ID").
    pub next_id: u32,
    /// Worker time, milliseconds.
    pub compute_ms: f64,
    /// Changes made to the layer so far (compare with `Autosaved::version`).
    pub version: u64,
}

/// An autosaved editing session in the browser's private storage (OPFS).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// Key ("dataset / layer", made safe for file names).
    pub key: String,
    /// Dataset and layer, as the user named them.
    pub title: String,
    /// Extent.
    pub shape: Shape,
    /// Edits in its history.
    pub edits: usize,
    /// Bytes on disk.
    pub bytes: u64,
    /// When it was last saved (ms since 1970).
    pub saved_at: f64,
}

/// Steering of a running `Train` request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TrainControl {
    /// Stop stepping until `Resume` (the run keeps its state).
    Pause,
    /// Continue a paused run.
    Resume,
    /// End now and keep the model trained so far (`Trained`).
    Stop,
    /// Preview this slice from now on (none: stop previews).
    PreviewSlice(Option<usize>),
    /// FFN training: fill the object at this voxel with the network as it is now, every few
    /// seconds (`FfnTrainFill`), in a box of this half-size around it (`TrainStarted`'s
    /// `fill_radius`); none: stop.
    FfnFillAt(Option<FfnFillAt>),
}

/// Where an FFN training run's live fill grows its object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FfnFillAt {
    /// The seed voxel `[z, y, x]` in the stack.
    pub voxel: [usize; 3],
    /// The box's half-size `[z, y, x]` (clipped to the stack).
    pub radius: [usize; 3],
}

/// Description of a layer the worker holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerInfo {
    /// Layer id.
    pub id: LayerId,
    /// Display name.
    pub name: String,
    /// Image or label.
    pub kind: LayerKind,
    /// Extent.
    pub shape: Shape,
    /// Values per voxel.
    pub channels: usize,
    /// Element type.
    pub dtype: DType,
    /// Voxel size (nm).
    pub voxel_size: VoxelSize,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
}

/// The central z plane of one FFN training example after a step (as google/ffn's training
/// summaries show it), rows of `size[1]` bytes: the image (0–255), the object of the
/// example's centre (255 on it), and the network's probability of the object (0–255).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FfnTrainPreview {
    /// Height and width: the training canvas (the FOV plus the moves on each side).
    pub size: [usize; 2],
    /// The image.
    pub image: Vec<u8>,
    /// The object the network should fill.
    pub target: Vec<u8>,
    /// What it fills.
    pub mask: Vec<u8>,
    /// Where the last FOV cut this plane, `[y0, x0, y1, x1]` (end exclusive).
    pub fov: Option<[usize; 4]>,
}

/// Replies and events from the worker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum FromWorker {
    /// The worker started and speaks this protocol version.
    Ready {
        /// [`PROTOCOL_VERSION`] of the worker build.
        version: u8,
    },
    /// Part of a long request is done.
    Progress {
        /// Request id.
        request: RequestId,
        /// Units done.
        done: u64,
        /// Units in all.
        total: u64,
        /// What is being done ("reading 0007.png").
        message: String,
    },
    /// A stack was opened.
    Opened {
        /// Request id.
        request: RequestId,
        /// The new layer.
        layer: LayerInfo,
        /// Helper workers that read and decoded its files (0: the data worker alone).
        decoded_by: u32,
        /// Files the data worker decoded itself after a helper stopped mid-open (0 when the
        /// helpers, or the data worker alone, took them all).
        decoded_here: u32,
        /// Milliseconds from the request to the assembled stack.
        open_ms: f64,
    },
    /// A computation made a new layer.
    LayerCreated {
        /// Request id.
        request: RequestId,
        /// The new layer.
        layer: LayerInfo,
        /// One line for the user ("312 objects, Otsu threshold 0.43").
        summary: String,
        /// Worker time spent computing, in milliseconds (for benchmarks).
        compute_ms: f64,
    },
    /// Metrics of a comparison, and the error map layer it made.
    Evaluated {
        /// Request id.
        request: RequestId,
        /// Scores and split/merge lists (boxed: far larger than the other replies).
        evaluation: Box<Evaluation>,
        /// The error map (kind `Errors`).
        error_map: LayerInfo,
        /// Worker time spent computing, in milliseconds (for benchmarks).
        compute_ms: f64,
    },
    /// ISBI 2012 scores of a probability map.
    IsbiEvaluated {
        /// Request id.
        request: RequestId,
        /// Per-threshold scores and the best thresholds.
        report: IsbiReport,
        /// Worker time spent computing, in milliseconds.
        compute_ms: f64,
    },
    /// Reply to `CheckModel`: the file is a model this build can run.
    ModelChecked {
        /// Request id.
        request: RequestId,
        /// The file's name.
        name: String,
    },
    /// Reply to `ProbeDevices`.
    Devices {
        /// Request id.
        request: RequestId,
        /// The WebGPU adapter, if one was found.
        gpu: Option<GpuInfo>,
        /// Why there is none (no `navigator.gpu`, no adapter, device request failed).
        gpu_missing: Option<String>,
        /// The CPU backend's description.
        cpu: String,
    },
    /// Training has begun.
    TrainStarted {
        /// Request id.
        request: RequestId,
        /// Where the network runs ("CPU (burn flex, wasm)").
        device: String,
        /// Steps in all (including steps done before, when resuming).
        total: u64,
        /// Patch side actually used (clamped to the slice size).
        patch: usize,
        /// FFN runs: the half-size `[z, y, x]` of the box a live fill needs (half the field of
        /// view and two moves); none for 2D runs.
        fill_radius: Option<[usize; 3]>,
    },
    /// One or more training steps are done (sent at most every ~100 ms, and with every
    /// validation measurement).
    TrainStep {
        /// Request id.
        request: RequestId,
        /// Steps done.
        step: u64,
        /// Steps in all.
        total: u64,
        /// Mean training loss over the steps since the previous `TrainStep`.
        loss: f32,
        /// Validation loss, when measured at this step.
        validation: Option<f32>,
        /// Learning rate of the last step.
        learning_rate: f64,
        /// Recent speed.
        steps_per_s: f64,
    },
    /// Steps of an FFN training run are done (sent at most every ~100 ms).
    FfnTrainStep {
        /// Request id.
        request: RequestId,
        /// Steps done.
        step: u64,
        /// Steps in all.
        total: u64,
        /// Mean loss over the steps since the previous report.
        loss: f32,
        /// Mask precision over those steps' fields of view (voxels over 0.5 against the
        /// object of the training centre).
        precision: f32,
        /// Mask recall over the same.
        recall: f32,
        /// Recent speed.
        steps_per_s: f64,
        /// What the network made of one training example at the last step.
        preview: Option<FfnTrainPreview>,
    },
    /// An FFN training run's live fill (`TrainControl::FfnFillAt`): the object the network, as
    /// it is after step `step`, grows from `seed`, on the seed's slice.
    FfnTrainFill {
        /// Request id.
        request: RequestId,
        /// Steps done when it filled.
        step: u64,
        /// The seed `[z, y, x]` in the stack.
        seed: [usize; 3],
        /// The box's first voxel `[z, y, x]` in the stack.
        origin: [usize; 3],
        /// The box's size `[z, y, x]`.
        size: [usize; 3],
        /// The object's probability (0–255) on slice `seed[0]` over the box, rows of `size[2]`.
        probability: Vec<u8>,
        /// Fields of view the network ran.
        fovs: u32,
        /// How long the fill took (ms).
        compute_ms: f64,
    },
    /// The current network's prediction of slice `z`; attachment 0 is a transferred
    /// `ImageBitmap` of `width × height` (probability as gray, or class colours).
    TrainPreview {
        /// Request id.
        request: RequestId,
        /// Slice.
        z: usize,
        /// Step at which it was made.
        step: u64,
        /// Pixels per row.
        width: usize,
        /// Rows.
        height: usize,
    },
    /// Training ended (all steps, or stopped); attachment 0 is the model file as an
    /// `ArrayBuffer` (the format `emstudio train` writes).
    Trained {
        /// Request id.
        request: RequestId,
        /// Steps trained.
        steps: u64,
        /// One line for the user.
        summary: String,
    },
    /// Reply to `FfnFill`: what the network grew from the seed. With `voxels` > 0 the
    /// label layer holds it as its proposal (drawn over its slices).
    FfnProposed {
        /// Request id.
        request: RequestId,
        /// The label layer.
        layer: LayerId,
        /// Voxels of the proposal (0: the network kept nothing at the seed).
        voxels: u64,
        /// The proposal's box, `[z, y, x]` start and end (exclusive).
        bounds: [[usize; 3]; 2],
        /// FOV positions the network ran.
        steps: u32,
        /// The object probability at the seed after the fill (google/ffn keeps an object
        /// when it is at least the move threshold, 0.9).
        seed_probability: f32,
        /// Where the network ran.
        device: String,
        /// Time from the request to the reply, milliseconds.
        compute_ms: f64,
    },
    /// A label layer changed (or its state was asked for).
    Edited {
        /// Request id.
        request: RequestId,
        /// The layer (its value range and type may have changed).
        layer: LayerInfo,
        /// History, locks, next ID.
        state: EditState,
    },
    /// Changes of a layer reached private storage: `edits` edits are safe across a reload.
    Autosaved {
        /// The layer.
        layer: LayerId,
        /// Edits in the stored history.
        edits: usize,
        /// The layer's change count (`EditState::version`) the stored files reflect.
        version: u64,
        /// Why the last save failed (none: saved).
        error: Option<String>,
    },
    /// Reply to `ListSessions` / `DiscardSession`.
    Sessions {
        /// Request id.
        request: RequestId,
        /// Stored sessions, newest first.
        sessions: Vec<SessionInfo>,
    },
    /// A rendered slice; attachment 0 is a transferred `ImageBitmap` of `width × height`.
    Slice {
        /// Request id.
        request: RequestId,
        /// Which layer.
        layer: LayerId,
        /// Slice index.
        z: usize,
        /// Pixels per row.
        width: usize,
        /// Rows.
        height: usize,
    },
    /// Values at a voxel for each layer (empty where outside the layer).
    Probe {
        /// Request id.
        request: RequestId,
        /// Per layer: its values at the voxel (one per channel).
        values: Vec<(LayerId, Vec<f64>)>,
    },
    /// Exported files; buffer `i` holds the bytes of `files[i]`.
    Exported {
        /// Request id.
        request: RequestId,
        /// File names.
        files: Vec<String>,
    },
    /// The request failed; `error` is a user-facing message naming file and problem.
    Failed {
        /// Request id.
        request: RequestId,
        /// What went wrong.
        error: String,
    },
    /// The request was cancelled.
    Cancelled {
        /// Request id.
        request: RequestId,
    },
}

impl FromWorker {
    /// The request this message answers, if any.
    pub fn request(&self) -> Option<RequestId> {
        match self {
            FromWorker::Ready { .. } | FromWorker::Autosaved { .. } => None,
            FromWorker::Progress { request, .. }
            | FromWorker::Opened { request, .. }
            | FromWorker::LayerCreated { request, .. }
            | FromWorker::Evaluated { request, .. }
            | FromWorker::IsbiEvaluated { request, .. }
            | FromWorker::Slice { request, .. }
            | FromWorker::Devices { request, .. }
            | FromWorker::ModelChecked { request, .. }
            | FromWorker::TrainStarted { request, .. }
            | FromWorker::TrainStep { request, .. }
            | FromWorker::FfnTrainStep { request, .. }
            | FromWorker::FfnTrainFill { request, .. }
            | FromWorker::TrainPreview { request, .. }
            | FromWorker::Trained { request, .. }
            | FromWorker::Probe { request, .. }
            | FromWorker::Exported { request, .. }
            | FromWorker::Edited { request, .. }
            | FromWorker::FfnProposed { request, .. }
            | FromWorker::Sessions { request, .. }
            | FromWorker::Failed { request, .. }
            | FromWorker::Cancelled { request } => Some(*request),
        }
    }
    /// True for the last message of a request.
    pub fn is_terminal(&self) -> bool {
        !matches!(
            self,
            FromWorker::Progress { .. }
                | FromWorker::Ready { .. }
                | FromWorker::Autosaved { .. }
                | FromWorker::TrainStarted { .. }
                | FromWorker::TrainStep { .. }
                | FromWorker::FfnTrainStep { .. }
                | FromWorker::FfnTrainFill { .. }
                | FromWorker::TrainPreview { .. }
        )
    }
}

/// One layer of a companion dataset: a folder of slices.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DatasetLayer {
    /// Folder name inside the dataset ("image", "label_mito"); empty for the dataset root.
    pub path: String,
    /// Image or label.
    pub kind: LayerKind,
    /// Slice file names, naturally sorted.
    pub files: Vec<String>,
}

/// A dataset the companion serves (`GET /api/datasets`), or a static site lists in its
/// `datasets.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DatasetInfo {
    /// URL-safe id; files live under `/datasets/{id}/{layer.path}/{file}`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// True for the demo data shipped with the app.
    pub demo: bool,
    /// Attribution and license text to show with the data.
    pub attribution: Option<String>,
    /// Voxel size if known (nm).
    pub voxel_size: Option<VoxelSize>,
    /// Its layers.
    pub layers: Vec<DatasetLayer>,
    /// Model files shipped with it (listed in its `dataset.json`), offered in the Infer panel
    /// when it is opened.
    #[serde(default)]
    pub models: Vec<DatasetModel>,
}

/// A model file that comes with a dataset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DatasetModel {
    /// File name, as the model store lists it ("ac3-mito-unet.emsmodel").
    pub name: String,
    /// Path inside the dataset: `/datasets/{id}/{path}`.
    pub path: String,
}

/// A message that could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProtocolError {
    /// Empty buffer.
    #[error("empty message")]
    Empty,
    /// Sent by a different build.
    #[error("protocol version {got} received, this build speaks {expected}")]
    Version {
        /// Version byte found.
        got: u8,
        /// [`PROTOCOL_VERSION`].
        expected: u8,
    },
    /// The bytes are not a valid message.
    #[error("malformed message: {0}")]
    Malformed(String),
}

/// Encodes a message behind the version byte.
pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, ProtocolError> {
    let out = vec![PROTOCOL_VERSION];
    postcard::to_extend(msg, out).map_err(|e| ProtocolError::Malformed(e.to_string()))
}

/// Decodes a message, checking the version byte.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ProtocolError> {
    let (&version, body) = bytes.split_first().ok_or(ProtocolError::Empty)?;
    if version != PROTOCOL_VERSION {
        return Err(ProtocolError::Version {
            got: version,
            expected: PROTOCOL_VERSION,
        });
    }
    postcard::from_bytes(body).map_err(|e| ProtocolError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use emstudio_core::stack::{BitDepth, ExportFormat};

    fn samples() -> Vec<ToWorker> {
        vec![
            ToWorker::Open {
                request: RequestId(1),
                kind: LayerKind::Label,
                name: "label".into(),
                source: StackSource::Urls {
                    names: vec!["0000.png".into()],
                    urls: vec!["/datasets/demo/label/0000.png".into()],
                },
                voxel_size: Some(VoxelSize {
                    z: 50.0,
                    y: 4.0,
                    x: 4.0,
                }),
            },
            ToWorker::RenderSlice {
                request: RequestId(2),
                layer: LayerId(3),
                z: 29,
                outline: true,
                highlight: vec![7],
            },
            ToWorker::Export {
                request: RequestId(4),
                layer: LayerId(1),
                options: ExportOptions {
                    format: ExportFormat::MultiPageTiff,
                    depth: BitDepth::U16,
                    rescale: false,
                    base_name: "labels".into(),
                },
            },
            ToWorker::ApplyFilters {
                request: RequestId(5),
                layer: LayerId(1),
                pipeline_json: r#"{"version":1,"steps":[{"filter":"otsu"}]}"#.into(),
                name: "otsu".into(),
            },
            ToWorker::Postprocess {
                request: RequestId(6),
                layer: LayerId(1),
                markers: Some(LayerId(2)),
                params: PostprocessParams::default(),
                name: "objects".into(),
            },
            ToWorker::Evaluate {
                request: RequestId(7),
                gt: LayerId(1),
                pred: LayerId(2),
                params: EvaluateParams::default(),
            },
            ToWorker::EvaluateIsbi {
                request: RequestId(8),
                gt: LayerId(1),
                map: LayerId(3),
                params: IsbiParams::default(),
            },
            ToWorker::Train {
                request: RequestId(9),
                image: LayerId(1),
                label: LayerId(2),
                train_slices: vec![0, 1],
                validation_slices: vec![2],
                config_json: r#"{"arch":{"arch":"unet","depth":2,"base_width":4}}"#.into(),
                ignore_label: Some(255),
                preview_z: Some(1),
                preview_every: 25,
                device: NetDevice::Gpu,
            },
            ToWorker::TrainControl {
                request: RequestId(9),
                control: TrainControl::PreviewSlice(Some(3)),
            },
            ToWorker::TrainControl {
                request: RequestId(9),
                control: TrainControl::FfnFillAt(Some(FfnFillAt {
                    voxel: [100, 120, 130],
                    radius: [16, 16, 16],
                })),
            },
            ToWorker::Infer {
                request: RequestId(10),
                layer: LayerId(1),
                slices: vec![],
                region: Some(Region {
                    y0: 10,
                    y1: 200,
                    x0: 0,
                    x1: 64,
                }),
                name: "probability".into(),
                device: NetDevice::Auto,
                views: 8,
            },
            ToWorker::ProbeDevices {
                request: RequestId(11),
            },
            ToWorker::CheckModel {
                request: RequestId(12),
                name: "mito.emsmodel".into(),
            },
        ]
    }

    #[test]
    fn round_trips() {
        for m in samples() {
            let bytes = encode(&m).expect("encode");
            assert_eq!(decode::<ToWorker>(&bytes).expect("decode"), m);
        }
        let reply = FromWorker::Failed {
            request: RequestId(9),
            error: "0007.png: truncated".into(),
        };
        let bytes = encode(&reply).expect("encode");
        let back: FromWorker = decode(&bytes).expect("decode");
        assert!(back.is_terminal());
        assert_eq!(back.request(), Some(RequestId(9)));
    }

    #[test]
    fn evaluation_replies_round_trip() {
        let gt = ndarray::Array3::from_shape_fn((2, 4, 4), |(_, _, x)| (x / 2 + 1) as u32);
        let pred = ndarray::Array3::from_shape_fn((2, 4, 4), |(z, _, _)| z as u32 + 1);
        let evaluation = emstudio_core::metrics::evaluate_labels_3d(
            gt.view(),
            pred.view(),
            &EvaluateParams {
                errors: emstudio_core::metrics::ErrorListOptions {
                    min_overlap_voxels: 1,
                    ..Default::default()
                },
                ..Default::default()
            },
            &mut emstudio_core::progress::NoProgress,
        )
        .expect("same shape");
        assert!(!evaluation.errors.splits.is_empty() && !evaluation.errors.merges.is_empty());
        let info = LayerInfo {
            id: LayerId(4),
            name: "errors".into(),
            kind: LayerKind::Errors,
            shape: Shape::new(2, 4, 4),
            channels: 1,
            dtype: DType::U8,
            voxel_size: VoxelSize::default(),
            min: 0.0,
            max: 3.0,
        };
        let msg = FromWorker::Evaluated {
            request: RequestId(3),
            evaluation: Box::new(evaluation),
            error_map: info,
            compute_ms: 1.5,
        };
        let back: FromWorker = decode(&encode(&msg).expect("encode")).expect("decode");
        assert_eq!(back, msg);
    }

    #[test]
    fn editing_messages_round_trip_and_autosave_is_no_reply() {
        let edits = [
            LabelEdit::Brush {
                z: 3,
                points: vec![(1.5, 2.0), (4.0, 9.25)],
                radius: 2.5,
                pressure: vec![0.5, 1.5],
                id: 0,
            },
            LabelEdit::Fill {
                z: 0,
                y: 1,
                x: 2,
                three_d: true,
                limit: FillLimit::Intensity {
                    image: LayerId(1),
                    tolerance: 12.0,
                },
                id: 7,
            },
            LabelEdit::Merge {
                ids: vec![3, 4],
                into: 3,
            },
            LabelEdit::Split2d {
                z: 1,
                stroke: vec![(0.0, 0.0)],
                band: 3.0,
                segment: Some(4),
                image: LayerId(1),
            },
            LabelEdit::Split3d {
                image: LayerId(1),
                a: [0, 1, 2],
                b: [3, 4, 5],
            },
            LabelEdit::Lock {
                id: 9,
                locked: true,
            },
            LabelEdit::AcceptProposal { id: 12 },
            LabelEdit::RejectProposal,
            LabelEdit::Undo,
        ];
        for edit in edits {
            let msg = ToWorker::EditLabels {
                request: RequestId(2),
                layer: LayerId(5),
                edit,
                session: "demo / gt".into(),
            };
            let back: ToWorker = decode(&encode(&msg).expect("encode")).expect("decode");
            assert_eq!(back, msg);
        }
        let saved = FromWorker::Autosaved {
            layer: LayerId(5),
            edits: 3,
            version: 4,
            error: None,
        };
        assert_eq!(saved.request(), None);
        assert!(!saved.is_terminal());
        let edited = FromWorker::Edited {
            request: RequestId(2),
            layer: LayerInfo {
                id: LayerId(5),
                name: "gt".into(),
                kind: LayerKind::Label,
                shape: Shape::new(2, 4, 4),
                channels: 1,
                dtype: DType::U32,
                voxel_size: VoxelSize::default(),
                min: 0.0,
                max: 7.0,
            },
            state: EditState {
                done: "paint 7".into(),
                changed: 12,
                slices: Some((1, 1)),
                history: vec!["paint 7".into()],
                undo_depth: 1,
                redo_depth: 0,
                locked: vec![9],
                next_id: 8,
                compute_ms: 0.4,
                version: 4,
            },
        };
        assert!(edited.is_terminal());
        assert_eq!(edited.request(), Some(RequestId(2)));
        let back: FromWorker = decode(&encode(&edited).expect("encode")).expect("decode");
        assert_eq!(back, edited);
        let fill = ToWorker::FfnFill {
            request: RequestId(6),
            layer: LayerId(5),
            image: LayerId(1),
            seed: [10, 120, 80],
            radius: [12, 40, 40],
            move_threshold: 0.5,
            device: NetDevice::Cpu,
        };
        assert_eq!(
            decode::<ToWorker>(&encode(&fill).expect("encode")).expect("decode"),
            fill
        );
        let segment = ToWorker::FfnSegment {
            request: RequestId(7),
            image: LayerId(1),
            region: Some([[0, 10, 20], [30, 110, 120]]),
            name: "FFN".into(),
            device: NetDevice::Auto,
        };
        assert_eq!(
            decode::<ToWorker>(&encode(&segment).expect("encode")).expect("decode"),
            segment
        );
        let train = ToWorker::FfnTrain {
            request: RequestId(8),
            image: LayerId(1),
            label: LayerId(2),
            region: None,
            config_json: "{}".into(),
            device: NetDevice::Cpu,
        };
        assert_eq!(
            decode::<ToWorker>(&encode(&train).expect("encode")).expect("decode"),
            train
        );
        let step = FromWorker::FfnTrainStep {
            request: RequestId(8),
            step: 20,
            total: 100,
            loss: 0.6,
            precision: 0.7,
            recall: 0.4,
            steps_per_s: 3.5,
            preview: Some(FfnTrainPreview {
                size: [2, 3],
                image: vec![0, 50, 100, 150, 200, 250],
                target: vec![0, 0, 255, 255, 255, 0],
                mask: vec![12, 12, 240, 200, 180, 12],
                fov: Some([0, 0, 2, 2]),
            }),
        };
        assert!(!step.is_terminal());
        assert_eq!(step.request(), Some(RequestId(8)));
        assert_eq!(
            decode::<FromWorker>(&encode(&step).expect("encode")).expect("decode"),
            step
        );
        let fill = FromWorker::FfnTrainFill {
            request: RequestId(8),
            step: 40,
            seed: [30, 100, 120],
            origin: [14, 84, 104],
            size: [33, 2, 3],
            probability: vec![0, 10, 200, 255, 90, 0],
            fovs: 12,
            compute_ms: 640.0,
        };
        assert!(!fill.is_terminal());
        assert_eq!(fill.request(), Some(RequestId(8)));
        assert_eq!(
            decode::<FromWorker>(&encode(&fill).expect("encode")).expect("decode"),
            fill
        );
        let proposed = FromWorker::FfnProposed {
            request: RequestId(6),
            layer: LayerId(5),
            voxels: 5120,
            bounds: [[2, 90, 50], [20, 150, 110]],
            steps: 31,
            seed_probability: 0.97,
            device: "CPU".into(),
            compute_ms: 812.5,
        };
        assert!(proposed.is_terminal());
        assert_eq!(proposed.request(), Some(RequestId(6)));
        assert_eq!(
            decode::<FromWorker>(&encode(&proposed).expect("encode")).expect("decode"),
            proposed
        );
    }

    #[test]
    fn training_replies_round_trip_and_only_trained_ends_the_request() {
        let msgs = [
            FromWorker::Devices {
                request: RequestId(8),
                gpu: Some(GpuInfo {
                    adapter: "SwiftShader (Google)".into(),
                    backend: "webgpu".into(),
                    software: true,
                    max_buffer_size: 1 << 28,
                    max_storage_binding: 1 << 27,
                    max_workgroup_invocations: 256,
                }),
                gpu_missing: None,
                cpu: "CPU (burn flex, wasm, 1 thread)".into(),
            },
            FromWorker::TrainStarted {
                request: RequestId(9),
                device: "CPU (burn flex, wasm)".into(),
                total: 200,
                patch: 128,
                fill_radius: None,
            },
            FromWorker::TrainStep {
                request: RequestId(9),
                step: 20,
                total: 200,
                loss: 0.61,
                validation: Some(0.58),
                learning_rate: 1e-3,
                steps_per_s: 4.5,
            },
            FromWorker::TrainPreview {
                request: RequestId(9),
                z: 3,
                step: 20,
                width: 64,
                height: 48,
            },
            FromWorker::Trained {
                request: RequestId(9),
                steps: 200,
                summary: "200 steps".into(),
            },
        ];
        for m in &msgs {
            let back: FromWorker = decode(&encode(m).expect("encode")).expect("decode");
            assert_eq!(&back, m);
            assert!(matches!(m.request(), Some(RequestId(8 | 9))));
        }
        let terminal: Vec<bool> = msgs.iter().map(FromWorker::is_terminal).collect();
        assert_eq!(terminal, [true, false, false, false, true]);
    }

    #[test]
    fn malformed_and_foreign_messages_are_errors() {
        assert_eq!(decode::<ToWorker>(&[]), Err(ProtocolError::Empty));
        assert!(matches!(
            decode::<ToWorker>(&[PROTOCOL_VERSION + 1, 0]),
            Err(ProtocolError::Version { .. })
        ));
        assert!(matches!(
            decode::<ToWorker>(&[PROTOCOL_VERSION, 250, 1, 2]),
            Err(ProtocolError::Malformed(_))
        ));
        // Every truncation of a valid message is an error, never a panic.
        for m in samples() {
            let bytes = encode(&m).expect("encode");
            for cut in 1..bytes.len() {
                assert!(decode::<ToWorker>(&bytes[..cut]).is_err());
            }
        }
    }
}
