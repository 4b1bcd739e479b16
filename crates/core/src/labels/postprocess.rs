//! UNI-EM's postprocessing chain in one call: a probability or binary map → threshold →
//! objects (3D connected components, distance-transform watershed, marker watershed, or 2D
//! components per slice linked across z) → size filter → consecutive IDs.
//!
//! The Postprocess dialog in the app and `emstudio label` on the command line both run
//! [`postprocess`] with a [`PostprocessParams`], so the two give the same labels. Every step is
//! one of the golden-tested kernels of this crate ([`crate::filters::intensity`] thresholds,
//! [`components`](super::components), [`watershed`](super::watershed),
//! [`relabel`](super::relabel)); this module only chains them and splits the progress bar.
//!
//! ```
//! use emstudio_core::labels::postprocess::{postprocess, PostprocessParams};
//! use emstudio_core::progress::NoProgress;
//! use emstudio_core::VoxelSize;
//! // Two bright blobs of 3 voxels and one of 1 voxel on a dark background.
//! let v = ndarray::Array3::<f32>::from_shape_vec(
//!     (1, 1, 9), vec![0.9, 0.8, 0.9, 0.1, 0.9, 0.1, 0.7, 0.9, 0.9]).unwrap();
//! let params = PostprocessParams { min_size: 2, ..PostprocessParams::default() };
//! let out = postprocess(v.view(), VoxelSize::default(), None, &params, &mut NoProgress).unwrap();
//! assert_eq!(out.objects, 2);
//! assert_eq!(out.labels.as_slice().unwrap(), &[1, 1, 1, 0, 0, 0, 2, 2, 2]);
//! ```

use super::blocks::{label_in_blocks, plain_blocks, plan_blocks, BlockLabelling, BlockParams};
use super::components::LabelError;
use super::relabel::{
    link_slices, relabel_sequential, remove_small_objects, LinkParams, SizeFilterParams,
};
use super::watershed::{DistanceWatershedParams, WatershedError};
use crate::distance::sampling_from_voxel_size;
use crate::filters::intensity::otsu_threshold;
use crate::neighborhood::{Connectivity2, Connectivity3};
use crate::progress::{Phase, Progress};
use crate::volume::VoxelSize;
use ndarray::{Array3, ArrayView3, Axis};
use serde::{Deserialize, Serialize};

/// How the map is turned into a foreground mask.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum ThresholdChoice {
    /// Foreground where the value is above this (or at most this, with
    /// [`PostprocessParams::foreground_below`]).
    Fixed(f32),
    /// Otsu's threshold of the whole volume (`skimage.filters.threshold_otsu`, 256 bins).
    Otsu,
    /// The input is already a label or mask volume: every nonzero voxel is foreground.
    Nonzero,
}

/// How foreground voxels become objects.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum LabelMethod {
    /// 3D connected components of the mask.
    Components {
        /// 6, 18 or 26.
        connectivity: Connectivity3,
    },
    /// Split touching objects: seeds at distance-transform peaks, watershed of −distance.
    DistanceWatershed(DistanceWatershedParams),
    /// Watershed of −distance inside the mask from the seeds of a marker (label) volume.
    MarkerWatershed {
        /// Flooding neighbourhood.
        connectivity: Connectivity3,
    },
    /// 2D connected components on each slice, then segments linked across z by overlap.
    SlicesLinked {
        /// 4 or 8 within a slice.
        connectivity: Connectivity2,
        /// Minimum overlap fraction of the smaller segment to join across z.
        min_overlap: f64,
    },
}

/// Everything the Postprocess dialog asks.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PostprocessParams {
    /// Threshold.
    pub threshold: ThresholdChoice,
    /// Foreground is at or below the threshold (e.g. cell interiors of a membrane map).
    pub foreground_below: bool,
    /// Object construction.
    pub method: LabelMethod,
    /// Objects with fewer voxels become background (0 keeps all).
    pub min_size: u64,
    /// Run a watershed in blocks along z (in parallel where there are workers); `None` runs
    /// it on the whole volume at once. Components are not affected (their blocks give the
    /// same labels as the whole volume).
    #[serde(default)]
    pub blocks: Option<BlockParams>,
}

impl Default for PostprocessParams {
    fn default() -> Self {
        Self {
            threshold: ThresholdChoice::Fixed(0.5),
            foreground_below: false,
            method: LabelMethod::Components {
                connectivity: Connectivity3::C26,
            },
            min_size: 0,
            blocks: None,
        }
    }
}

/// The result of [`postprocess`].
#[derive(Debug, Clone, PartialEq)]
pub struct Postprocessed {
    /// Labels `1..=objects`, 0 = background.
    pub labels: Array3<u32>,
    /// Number of objects.
    pub objects: u32,
    /// The threshold used (the Otsu value when Otsu was asked; `NaN` for `Nonzero`).
    pub threshold: f32,
    /// Foreground voxels after thresholding.
    pub foreground_voxels: u64,
}

/// Why [`postprocess`] failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PostprocessError {
    /// Labelling, size filter or linking failed (or was cancelled).
    #[error(transparent)]
    Label(#[from] LabelError),
    /// Watershed failed (or was cancelled).
    #[error(transparent)]
    Watershed(#[from] WatershedError),
    /// A parameter is out of range or an input is missing.
    #[error("{0}")]
    Invalid(String),
}

impl PostprocessError {
    /// True when the progress callback stopped the run.
    pub fn is_cancelled(&self) -> bool {
        matches!(
            self,
            PostprocessError::Label(LabelError::Cancelled(_))
                | PostprocessError::Watershed(WatershedError::Cancelled(_))
        )
    }
}

/// The foreground mask of a map, as [`postprocess`] computes it first.
#[derive(Debug, Clone, PartialEq)]
pub struct Mask {
    /// 1 = foreground.
    pub mask: Array3<u8>,
    /// The threshold used (`NaN` for [`ThresholdChoice::Nonzero`]).
    pub threshold: f32,
    /// Foreground voxels.
    pub foreground_voxels: u64,
}

/// Thresholds `map` as `params` say.
pub fn threshold_mask(
    map: ArrayView3<'_, f32>,
    params: &PostprocessParams,
) -> Result<Mask, PostprocessError> {
    let threshold = match params.threshold {
        ThresholdChoice::Fixed(t) if t.is_nan() => {
            return Err(PostprocessError::Invalid(
                "the threshold must be a number".into(),
            ))
        }
        ThresholdChoice::Fixed(t) => t,
        ThresholdChoice::Otsu => {
            let dense = map.as_standard_layout();
            otsu_threshold(dense.as_slice().unwrap_or(&[]), 256)
        }
        ThresholdChoice::Nonzero => f32::NAN,
    };
    let below = params.foreground_below;
    let mask: Array3<u8> = map.mapv(|v| {
        let fg = if threshold.is_nan() {
            v != 0.0
        } else if below {
            v <= threshold
        } else {
            v > threshold
        };
        u8::from(fg)
    });
    let foreground_voxels = mask.iter().filter(|&&m| m != 0).count() as u64;
    Ok(Mask {
        mask,
        threshold,
        foreground_voxels,
    })
}

impl LabelMethod {
    /// What a worker runs on a block of the mask for this method (for
    /// [`LabelMethod::SlicesLinked`], the per-slice components that [`finish_postprocess`]
    /// links).
    pub fn block_labelling(&self, voxel_size: VoxelSize) -> BlockLabelling {
        match *self {
            LabelMethod::Components { connectivity } => {
                BlockLabelling::Components3 { connectivity }
            }
            LabelMethod::DistanceWatershed(p) => BlockLabelling::DistanceWatershed {
                sampling: if p.use_voxel_size {
                    sampling_from_voxel_size(voxel_size)
                } else {
                    [1.0; 3]
                },
                min_distance: p.min_distance,
                connectivity: p.connectivity,
            },
            LabelMethod::MarkerWatershed { connectivity } => BlockLabelling::MarkerWatershed {
                sampling: sampling_from_voxel_size(voxel_size),
                connectivity,
            },
            LabelMethod::SlicesLinked { connectivity, .. } => {
                BlockLabelling::Components2 { connectivity }
            }
        }
    }

    /// True for the watersheds, which run in blocks only when [`PostprocessParams::blocks`]
    /// asks (their blocks differ slightly from a whole-volume run; components do not).
    pub fn is_watershed(&self) -> bool {
        matches!(
            self,
            LabelMethod::DistanceWatershed(_) | LabelMethod::MarkerWatershed { .. }
        )
    }
}

/// Checks that a marker watershed has markers of the map's shape.
pub fn check_markers(
    method: &LabelMethod,
    markers: Option<ArrayView3<'_, u32>>,
    dim: (usize, usize, usize),
) -> Result<(), PostprocessError> {
    if !matches!(method, LabelMethod::MarkerWatershed { .. }) {
        return Ok(());
    }
    let markers = markers
        .ok_or_else(|| PostprocessError::Invalid("marker watershed needs a marker layer".into()))?;
    if markers.dim() != dim {
        return Err(PostprocessError::Invalid(format!(
            "the marker layer is {:?} (z, y, x) but the map is {:?}",
            markers.dim(),
            dim
        )));
    }
    Ok(())
}

/// Runs threshold → labelling → size filter → relabel on `map` (`z, y, x`). `markers` is
/// required by [`LabelMethod::MarkerWatershed`] and ignored otherwise. A watershed runs in
/// blocks when [`PostprocessParams::blocks`] says so ([`super::blocks`]), the same blocks the
/// browser's helper workers run. Progress runs from 0 to 1000: 5 % threshold, 75 %
/// labelling, 20 % linking, size filter and relabelling.
pub fn postprocess(
    map: ArrayView3<'_, f32>,
    voxel_size: VoxelSize,
    markers: Option<ArrayView3<'_, u32>>,
    params: &PostprocessParams,
    progress: &mut dyn Progress,
) -> Result<Postprocessed, PostprocessError> {
    let mask = threshold_mask(map, params)?;
    check_markers(&params.method, markers, map.dim())?;
    let _ = progress.report(50, 1000);
    let how = params.method.block_labelling(voxel_size);
    let depth = map.len_of(Axis(0));
    let blocks = match params.blocks.filter(|_| params.method.is_watershed()) {
        Some(b) => {
            b.validate()?;
            plan_blocks(depth, b)
        }
        None => plain_blocks(depth, 1),
    };
    let mut phase = Phase::new(progress, 50, 750);
    let (labels, _) = label_in_blocks(&how, mask.mask.view(), markers, &blocks, &mut phase)?;
    finish_postprocess(labels, mask, params, &mut Phase::new(progress, 800, 200))
}

/// The end of [`postprocess`] after labelling: slices linked across z (for
/// [`LabelMethod::SlicesLinked`], whose `labels` are numbered per slice), the size filter,
/// consecutive IDs.
pub fn finish_postprocess(
    labels: Array3<u32>,
    mask: Mask,
    params: &PostprocessParams,
    progress: &mut dyn Progress,
) -> Result<Postprocessed, PostprocessError> {
    let labels = match params.method {
        LabelMethod::SlicesLinked { min_overlap, .. } => {
            let link = LinkParams { min_overlap };
            link_slices(labels.view(), &link, &mut Phase::new(progress, 0, 400))?.0
        }
        _ => labels,
    };
    let mut tail = Phase::new(progress, 400, 600);
    let filtered = if params.min_size > 1 {
        let p = SizeFilterParams {
            min_size: params.min_size,
            connectivity: None,
        };
        remove_small_objects(labels.view(), &p, &mut Phase::new(&mut tail, 0, 500))?
    } else {
        labels
    };
    let (labels, map_ids) =
        relabel_sequential(filtered.view(), &mut Phase::new(&mut tail, 500, 500))?;
    Ok(Postprocessed {
        objects: map_ids.old_ids().len() as u32,
        labels,
        threshold: mask.threshold,
        foreground_voxels: mask.foreground_voxels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::NoProgress;
    use std::ops::ControlFlow;

    /// Two 3×3×3 cubes joined by a one-voxel bridge, plus a lone voxel.
    fn dumbbell() -> Array3<f32> {
        let mut v = Array3::<f32>::zeros((5, 5, 11));
        for z in 1..4 {
            for y in 1..4 {
                for x in 1..4 {
                    v[[z, y, x]] = 1.0;
                    v[[z, y, x + 6]] = 1.0;
                }
            }
        }
        for x in 4..7 {
            v[[2, 2, x]] = 1.0;
        }
        v[[4, 4, 5]] = 1.0;
        v
    }

    #[test]
    fn components_size_filter_and_relabel() {
        let v = dumbbell();
        let p = PostprocessParams::default();
        let out =
            postprocess(v.view(), VoxelSize::default(), None, &p, &mut NoProgress).expect("runs");
        assert_eq!(out.objects, 2, "dumbbell and lone voxel");
        assert_eq!(out.foreground_voxels, 27 * 2 + 3 + 1);
        let p = PostprocessParams { min_size: 2, ..p };
        let out =
            postprocess(v.view(), VoxelSize::default(), None, &p, &mut NoProgress).expect("runs");
        assert_eq!(out.objects, 1);
        assert_eq!(out.labels[[4, 4, 5]], 0);
    }

    #[test]
    fn distance_watershed_splits_the_dumbbell() {
        let v = dumbbell();
        let p = PostprocessParams {
            method: LabelMethod::DistanceWatershed(DistanceWatershedParams {
                min_distance: 2,
                connectivity: Connectivity3::C6,
                use_voxel_size: false,
            }),
            min_size: 2,
            ..PostprocessParams::default()
        };
        let out =
            postprocess(v.view(), VoxelSize::default(), None, &p, &mut NoProgress).expect("runs");
        assert_eq!(out.objects, 2);
        assert_ne!(out.labels[[2, 2, 2]], out.labels[[2, 2, 8]]);
        assert_ne!(out.labels[[2, 2, 2]], 0);
    }

    #[test]
    fn marker_watershed_uses_the_markers_and_checks_their_shape() {
        let v = dumbbell();
        let mut m = Array3::<u32>::zeros(v.dim());
        m[[2, 2, 2]] = 7;
        m[[2, 2, 8]] = 9;
        let p = PostprocessParams {
            method: LabelMethod::MarkerWatershed {
                connectivity: Connectivity3::C6,
            },
            ..PostprocessParams::default()
        };
        let out = postprocess(
            v.view(),
            VoxelSize::default(),
            Some(m.view()),
            &p,
            &mut NoProgress,
        )
        .expect("runs");
        assert_eq!(out.objects, 2, "the lone voxel has no seed");
        assert_eq!(
            postprocess(v.view(), VoxelSize::default(), None, &p, &mut NoProgress),
            Err(PostprocessError::Invalid(
                "marker watershed needs a marker layer".into()
            ))
        );
        let small = Array3::<u32>::zeros((1, 1, 1));
        assert!(postprocess(
            v.view(),
            VoxelSize::default(),
            Some(small.view()),
            &p,
            &mut NoProgress
        )
        .is_err());
    }

    #[test]
    fn below_threshold_otsu_and_linked_slices() {
        // A membrane-like map: interiors dark (0.1), walls bright (0.9).
        let mut v = Array3::<f32>::from_elem((3, 6, 6), 0.1);
        for z in 0..3 {
            for y in 0..6 {
                v[[z, y, 3]] = 0.9;
            }
        }
        let p = PostprocessParams {
            threshold: ThresholdChoice::Otsu,
            foreground_below: true,
            method: LabelMethod::SlicesLinked {
                connectivity: Connectivity2::C4,
                min_overlap: 0.5,
            },
            min_size: 0,
            blocks: None,
        };
        let out =
            postprocess(v.view(), VoxelSize::default(), None, &p, &mut NoProgress).expect("runs");
        assert_eq!(out.objects, 2);
        assert!(out.threshold > 0.1 && out.threshold < 0.9);
        assert_eq!(out.labels[[0, 0, 0]], out.labels[[2, 5, 2]]);
        assert_eq!(out.labels[[1, 1, 3]], 0);
    }

    #[test]
    fn nan_threshold_is_refused_and_cancel_stops() {
        let v = dumbbell();
        let p = PostprocessParams {
            threshold: ThresholdChoice::Fixed(f32::NAN),
            ..PostprocessParams::default()
        };
        assert!(postprocess(v.view(), VoxelSize::default(), None, &p, &mut NoProgress).is_err());
        let mut stop = |_: u64, _: u64| ControlFlow::Break(());
        let err = postprocess(
            v.view(),
            VoxelSize::default(),
            None,
            &PostprocessParams::default(),
            &mut stop,
        )
        .expect_err("cancelled");
        assert!(err.is_cancelled());
    }
}
