//! Messages between the data worker (`worker/`, which owns the layers) and the network worker
//! (`nets-worker/`, which runs the CNNs on WebGPU or the CPU).
//!
//! The networks live in a worker of their own because burn's WebGPU backend makes a wasm module
//! about 30 MB larger, and every trip through JavaScript (a posted message, a yield) costs a
//! module that size several milliseconds (BENCHMARKS.md). The data worker starts the network
//! worker on the first network request and relays: the app's `Train`, `Infer`, `FfnFill`,
//! `FfnSegment` and `ProbeDevices` become [`ToNets`] messages with the pixels attached, and the network worker's
//! replies meant for the app come back as [`FromNets::App`] and are passed on unchanged.
//!
//! Pixels travel as attached, transferred `ArrayBuffer`s of little-endian `f32` (images scaled
//! to [0, 1], probabilities) or `u32` (labels, classes), channel by channel (an RGB image is
//! three planes one after the other), each row-major `height × width`; the message says what
//! each buffer is ([`Plane`]).

use crate::{FromWorker, NetDevice, RequestId, TrainControl};
use serde::{Deserialize, Serialize};

/// The size of one attached slice buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plane {
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
    /// Channels (1: gray, labels, probabilities; 3: RGB images).
    pub channels: usize,
}

impl Plane {
    /// A one-channel plane.
    pub fn single(height: usize, width: usize) -> Self {
        Self {
            height,
            width,
            channels: 1,
        }
    }

    /// Values in the buffer (pixels × channels).
    pub fn len(&self) -> usize {
        self.height * self.width * self.channels
    }

    /// True when it has no pixels.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The box of an FFN training run's live fill, cut by the data worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FfnFillBox {
    /// The box's first voxel `[z, y, x]` in the stack.
    pub origin: [usize; 3],
    /// Its size `[z, y, x]`.
    pub size: [usize; 3],
    /// The seed inside the box.
    pub seed: [usize; 3],
}

/// Data worker → network worker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ToNets {
    /// Look for a WebGPU adapter. Reply: `App(Devices)`.
    ProbeDevices {
        /// The app's request id.
        request: RequestId,
        /// The CPU helpers inference would use (for the CPU's description).
        helpers: u32,
    },
    /// Read the attached model file as inference would. Reply: `App(ModelChecked)` or
    /// `App(Failed)` naming the file.
    CheckModel {
        /// The app's request id.
        request: RequestId,
        /// The file's name, for messages.
        name: String,
    },
    /// Start training. Attachments, in order: for each slice of `train`, then of `validation`,
    /// its image (`f32`) and its labels (`u32`); then the model file to fine-tune when `init`.
    /// Replies: `App(TrainStarted)`, `App(TrainStep)`*, `App(TrainPreview)`*, then
    /// `App(Trained)` or `App(Failed)` / `App(Cancelled)`.
    Train {
        /// The app's request id.
        request: RequestId,
        /// Training slices.
        train: Vec<Plane>,
        /// Validation slices.
        validation: Vec<Plane>,
        /// `TrainConfig` as JSON.
        config_json: String,
        /// Label value meaning "not annotated".
        ignore_label: Option<u32>,
        /// What the data is, for the model's provenance.
        data_names: Vec<String>,
        /// A model file to fine-tune is attached last.
        init: bool,
        /// Preview every this many steps (0: only at the end).
        preview_every: u32,
        /// Where to run.
        device: NetDevice,
    },
    /// The slice to preview from now on (attachment: its image, `f32`), or none.
    Preview {
        /// The `Train` request.
        request: RequestId,
        /// Slice index and size; none stops previews.
        slice: Option<(usize, Plane)>,
        /// Preview it at once (the user picked it), not only at the next due step.
        now: bool,
    },
    /// The box of an FFN training run's live fill (`TrainControl::FfnFillAt`): attachment 0
    /// is the image (`f32` in [0, 1], `size` z × y × x); none stops the fills. Replies:
    /// `App(FfnTrainFill)` every few seconds while the run steps.
    FfnFillBox {
        /// The `FfnTrain` request.
        request: RequestId,
        /// The box; none: no more fills.
        fill: Option<FfnFillBox>,
    },
    /// Pause, resume or stop a run (`PreviewSlice` goes as [`ToNets::Preview`], `FfnFillAt`
    /// as [`ToNets::FfnFillBox`]).
    Control {
        /// The `Train` request.
        request: RequestId,
        /// What to do.
        control: TrainControl,
    },
    /// Load a model (attachment: the model file) for an inference run. Reply: `InferReady`
    /// or `App(Failed)`.
    InferStart {
        /// The app's request id.
        request: RequestId,
        /// Where to run.
        device: NetDevice,
        /// Orientations averaged per tile (1, 4 or 8).
        views: u8,
        /// Helper workers for the forward passes when the run is on the CPU (0: the network
        /// worker computes alone); see [`ToNetsHelper`].
        helpers: u32,
    },
    /// Predict one slice (attachment: its image, `f32`). Reply: `Inferred` or `App(Failed)`.
    InferSlice {
        /// The `InferStart` request.
        request: RequestId,
        /// Position in the run (echoed back).
        index: usize,
        /// Its size.
        plane: Plane,
    },
    /// Drop the state of an inference run (finished or cancelled). No reply.
    InferEnd {
        /// The `InferStart` request.
        request: RequestId,
    },
    /// Grow one object with a flood-filling network from `seed` in the attached image box.
    /// Attachments: the box (`f32` in [0, 1], `size` z × y × x, raster order), then the FFN
    /// model file. Replies: `App(Progress)`*, then `FfnFilled` or `App(Failed)` /
    /// `App(Cancelled)` (after `Cancel`).
    FfnFill {
        /// The app's request id.
        request: RequestId,
        /// The box's size `[z, y, x]`.
        size: [usize; 3],
        /// The seed inside the box `[z, y, x]`.
        seed: [usize; 3],
        /// Most FOV positions to run.
        max_steps: u32,
        /// The field of view moves to voxels at least this probable.
        move_threshold: f32,
        /// Where to run.
        device: NetDevice,
    },
    /// Segment the attached image box with a flood-filling network. Attachments: the box
    /// (`f32` in [0, 1], `size` z × y × x), then the FFN model file. Replies:
    /// `App(Progress)`* (seeds), then `FfnSegmented` or `App(Failed)` / `App(Cancelled)`.
    FfnSegment {
        /// The app's request id.
        request: RequestId,
        /// The box's size `[z, y, x]`.
        size: [usize; 3],
        /// Where to run.
        device: NetDevice,
    },
    /// Train a flood-filling network on the attached box. Attachments: the image (`f32` in
    /// [0, 1], `size` z × y × x), then its dense instance labels (`u32`, the same size), then
    /// the FFN model file to fine-tune when `init`.
    /// Replies: `App(TrainStarted)`, `App(FfnTrainStep)`*, then `App(Trained)` with the model
    /// file, or `App(Failed)` / `App(Cancelled)`; steered with `Control` and `Cancel`.
    FfnTrain {
        /// The app's request id.
        request: RequestId,
        /// The box's size `[z, y, x]`.
        size: [usize; 3],
        /// `FfnTrainConfig` as JSON.
        config_json: String,
        /// What the data is, for the model's provenance.
        data_name: String,
        /// An FFN model file to fine-tune is attached last (its network and normalisation
        /// replace the settings').
        init: bool,
        /// Where to run.
        device: NetDevice,
    },
    /// Cancel a training run, an FFN fill or an FFN segmentation. Reply: `App(Cancelled)`.
    Cancel {
        /// The request.
        request: RequestId,
    },
}

/// Network worker → data worker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum FromNets {
    /// The network worker listens (sent once, first).
    Ready {
        /// Its protocol version.
        version: u8,
    },
    /// A message for the app, to pass on with its attachments.
    App(FromWorker),
    /// The model of an inference run is loaded.
    InferReady {
        /// The `InferStart` request.
        request: RequestId,
        /// Architecture name ("U-Net").
        arch: String,
        /// Steps the model was trained for.
        steps: u64,
        /// True for K-class models (their slices come back as classes).
        classes: bool,
        /// The device, for the UI.
        device: String,
    },
    /// One predicted slice: attachment 0 is the foreground probability (`f32`) or, for
    /// K-class models, the class of each pixel (`u32`).
    Inferred {
        /// The `InferStart` request.
        request: RequestId,
        /// The `InferSlice` index.
        index: usize,
        /// Its size.
        plane: Plane,
        /// Tiles the network ran for it (each orientation counted).
        tiles: usize,
        /// Rows and columns of each tile.
        tile_side: (usize, usize),
    },
    /// An FFN segmentation is done: attachment 0 is its labels over the box (`u32`,
    /// consecutive IDs from 1, 0 = background, raster order).
    FfnSegmented {
        /// The `FfnSegment` request.
        request: RequestId,
        /// Objects kept.
        objects: u32,
        /// Seeds tried.
        seeds: u32,
        /// FOV positions the network ran.
        steps: u64,
        /// Blocks along z it was segmented in (1: the box in one).
        blocks: u32,
        /// The device, for the UI.
        device: String,
    },
    /// An FFN fill is done: attachment 0 is its mask over the box (`u8`, 1 = the object
    /// at or above the segment threshold, raster order).
    FfnFilled {
        /// The `FfnFill` request.
        request: RequestId,
        /// FOV positions the network ran.
        steps: u32,
        /// The object probability at the seed at the end.
        seed_probability: f32,
        /// Whether the seed held (at least the move threshold): google/ffn keeps the object.
        kept: bool,
        /// The device, for the UI.
        device: String,
    },
}

/// The worker name that makes the network worker's module start as a helper: it runs forward
/// passes of a loaded model on the CPU for the network worker ([`ToNetsHelper`]).
pub const NETS_HELPER_NAME: &str = "emstudio-nets-helper";

/// Network worker → one of its CPU helpers. On the CPU a slice's tiles are cut into batches
/// (`emstudio_nets::infer::TiledPrediction`) that the helpers run side by side; the network
/// worker blends them in order, so the result is the same as computed alone.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ToNetsHelper {
    /// Load the attached model file for the inference run `run`. Reply: `Loaded` or `Failed`.
    Load {
        /// Job number, echoed in the reply.
        job: u32,
        /// The inference run (its `InferStart` request).
        run: RequestId,
    },
    /// Run one batch through the model of `run` and return its probabilities. Attachment: the
    /// normalised input, `f32`, `[items, channels, height, width]`. Reply: `Forwarded` (one
    /// `f32` buffer, `[items, classes, height, width]`) or `Failed`.
    Forward {
        /// Job number, echoed in the reply.
        job: u32,
        /// The inference run.
        run: RequestId,
        /// `[items, channels, height, width]` of the input.
        shape: [usize; 4],
    },
    /// Forget the model of `run`. No reply.
    Unload {
        /// The inference run.
        run: RequestId,
    },
}

/// A network helper's reply.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum FromNetsHelper {
    /// The helper listens (sent once, after its module started).
    Ready {
        /// [`crate::PROTOCOL_VERSION`] of the helper's build.
        version: u8,
    },
    /// The model is loaded.
    Loaded {
        /// Job number.
        job: u32,
    },
    /// One batch's probabilities (attached).
    Forwarded {
        /// Job number.
        job: u32,
    },
    /// The job failed.
    Failed {
        /// Job number.
        job: u32,
        /// What went wrong.
        error: String,
    },
}

impl FromNetsHelper {
    /// The job this reply ends (`None` for `Ready`).
    pub fn job(&self) -> Option<u32> {
        match self {
            FromNetsHelper::Ready { .. } => None,
            FromNetsHelper::Loaded { job }
            | FromNetsHelper::Forwarded { job }
            | FromNetsHelper::Failed { job, .. } => Some(*job),
        }
    }
}

/// `values` as little-endian bytes (what an attached buffer holds).
pub fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// `values` as little-endian bytes (what an attached buffer holds).
pub fn u32_bytes(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// A buffer that is not the size its message says.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "{what}: expected {expected} bytes ({plane_height}×{plane_width} × {plane_channels} channel(s) × 4), got {got}"
)]
pub struct PlaneSizeError {
    /// Which buffer.
    pub what: String,
    /// Bytes expected.
    pub expected: usize,
    /// Bytes attached.
    pub got: usize,
    /// Plane rows.
    pub plane_height: usize,
    /// Plane columns.
    pub plane_width: usize,
    /// Plane channels.
    pub plane_channels: usize,
}

fn check(what: &str, plane: Plane, bytes: &[u8]) -> Result<(), PlaneSizeError> {
    let expected = plane.len() * 4;
    if bytes.len() == expected {
        Ok(())
    } else {
        Err(PlaneSizeError {
            what: what.to_string(),
            expected,
            got: bytes.len(),
            plane_height: plane.height,
            plane_width: plane.width,
            plane_channels: plane.channels,
        })
    }
}

/// The `f32` values of an attached buffer of `plane`'s size.
pub fn plane_f32(what: &str, plane: Plane, bytes: &[u8]) -> Result<Vec<f32>, PlaneSizeError> {
    check(what, plane, bytes)?;
    Ok(bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

/// The `u32` values of an attached buffer of `plane`'s size.
pub fn plane_u32(what: &str, plane: Plane, bytes: &[u8]) -> Result<Vec<u32>, PlaneSizeError> {
    check(what, plane, bytes)?;
    Ok(bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{decode, encode};

    #[test]
    fn messages_round_trip() {
        let plane = Plane {
            height: 3,
            width: 2,
            channels: 3,
        };
        let to = vec![
            ToNets::ProbeDevices {
                request: RequestId(1),
                helpers: 2,
            },
            ToNets::CheckModel {
                request: RequestId(9),
                name: "m.emsmodel".into(),
            },
            ToNets::Train {
                request: RequestId(2),
                train: vec![plane],
                validation: vec![],
                config_json: "{}".into(),
                ignore_label: Some(7),
                data_names: vec!["img / gt".into()],
                init: true,
                preview_every: 20,
                device: NetDevice::Gpu,
            },
            ToNets::Preview {
                request: RequestId(2),
                slice: Some((4, plane)),
                now: true,
            },
            ToNets::Control {
                request: RequestId(2),
                control: TrainControl::Pause,
            },
            ToNets::FfnFillBox {
                request: RequestId(6),
                fill: Some(FfnFillBox {
                    origin: [4, 10, 12],
                    size: [33, 33, 33],
                    seed: [16, 16, 16],
                }),
            },
            ToNets::FfnFillBox {
                request: RequestId(6),
                fill: None,
            },
            ToNets::InferStart {
                request: RequestId(3),
                device: NetDevice::Cpu,
                views: 4,
                helpers: 2,
            },
            ToNets::InferSlice {
                request: RequestId(3),
                index: 1,
                plane,
            },
            ToNets::InferEnd {
                request: RequestId(3),
            },
            ToNets::FfnFill {
                request: RequestId(4),
                size: [33, 81, 81],
                seed: [16, 40, 40],
                max_steps: 500,
                move_threshold: 0.9,
                device: NetDevice::Auto,
            },
            ToNets::FfnSegment {
                request: RequestId(5),
                size: [20, 100, 100],
                device: NetDevice::Cpu,
            },
            ToNets::FfnTrain {
                request: RequestId(6),
                size: [50, 250, 250],
                config_json: "{}".into(),
                data_name: "flyem / label".into(),
                init: true,
                device: NetDevice::Auto,
            },
            ToNets::Cancel {
                request: RequestId(2),
            },
        ];
        for m in to {
            assert_eq!(decode::<ToNets>(&encode(&m).unwrap()).unwrap(), m);
        }
        let from = vec![
            FromNets::Ready { version: 5 },
            FromNets::App(FromWorker::Cancelled {
                request: RequestId(2),
            }),
            FromNets::InferReady {
                request: RequestId(3),
                arch: "U-Net".into(),
                steps: 40,
                classes: false,
                device: "CPU".into(),
            },
            FromNets::Inferred {
                request: RequestId(3),
                index: 1,
                plane,
                tiles: 9,
                tile_side: (480, 480),
            },
            FromNets::FfnSegmented {
                request: RequestId(5),
                objects: 12,
                seeds: 300,
                steps: 4100,
                blocks: 3,
                device: "CPU".into(),
            },
            FromNets::FfnFilled {
                request: RequestId(4),
                steps: 40,
                seed_probability: 0.96,
                kept: true,
                device: "CPU".into(),
            },
        ];
        for m in from {
            assert_eq!(decode::<FromNets>(&encode(&m).unwrap()).unwrap(), m);
        }
        let jobs = vec![
            ToNetsHelper::Load {
                job: 1,
                run: RequestId(3),
            },
            ToNetsHelper::Forward {
                job: 2,
                run: RequestId(3),
                shape: [2, 1, 480, 480],
            },
            ToNetsHelper::Unload { run: RequestId(3) },
        ];
        for m in jobs {
            assert_eq!(decode::<ToNetsHelper>(&encode(&m).unwrap()).unwrap(), m);
        }
        let replies = vec![
            (FromNetsHelper::Ready { version: 11 }, None),
            (FromNetsHelper::Loaded { job: 1 }, Some(1)),
            (FromNetsHelper::Forwarded { job: 2 }, Some(2)),
            (
                FromNetsHelper::Failed {
                    job: 3,
                    error: "model: truncated".into(),
                },
                Some(3),
            ),
        ];
        for (m, job) in replies {
            assert_eq!(m.job(), job);
            assert_eq!(decode::<FromNetsHelper>(&encode(&m).unwrap()).unwrap(), m);
        }
    }

    #[test]
    fn planes_decode_and_wrong_sizes_are_named() {
        let plane = Plane::single(1, 3);
        let v = [0.5f32, -1.0, 2.25];
        assert_eq!(plane_f32("image", plane, &f32_bytes(&v)).unwrap(), v);
        let l = [1u32, 70_000, 0];
        assert_eq!(plane_u32("labels", plane, &u32_bytes(&l)).unwrap(), l);
        let err = plane_f32("slice 4 image", plane, &[0; 8]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "slice 4 image: expected 12 bytes (1×3 × 1 channel(s) × 4), got 8"
        );
        let rgb = Plane {
            height: 1,
            width: 2,
            channels: 3,
        };
        assert_eq!(rgb.len(), 6);
        assert_eq!(
            plane_f32("rgb", rgb, &f32_bytes(&[0.0; 6])).unwrap().len(),
            6
        );
        assert!(plane_f32("rgb", rgb, &f32_bytes(&[0.0; 2]))
            .unwrap_err()
            .to_string()
            .contains("1×2 × 3 channel(s)"));
    }
}
