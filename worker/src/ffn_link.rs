//! The data half of the flood-filling networks: for the Edit panel's FFN fill
//! (`ToWorker::FfnFill`) the image box cut around the click for the network worker
//! ([`FillBox`]) and the proposal made of its answer ([`Proposal`]: the object's voxels
//! connected to the click), kept per label layer until the user accepts it (one journal edit,
//! `LabelEdit::AcceptProposal`) or rejects it, and drawn over the layer's slices meanwhile;
//! for a segmentation (`ToWorker::FfnSegment`) the box sent ([`segment_box`]) and the label
//! layer made of the answer ([`segmentation_volume`]); for training (`ToWorker::FfnTrain`)
//! the box of image and labels ([`train_box`]), and the partitions its centres are balanced
//! over, as a layer to look at and export ([`partitions_volume`], what `emstudio ffn prepare`
//! writes).

use crate::compute::ComputeError;
use crate::workspace::Workspace;
use emstudio_core::ffn_data::{class_counts, compute_partitions, FfnDataError, PartitionParams};
use emstudio_core::progress::Progress;
use emstudio_core::{AnyVolume, Volume};
use emstudio_protocol::{LayerId, LayerKind};
use ndarray::{s, Array3};
use std::collections::VecDeque;

/// Most FOV positions one fill runs: a 250³ neuron crossing the whole demo with the light
/// preset's moves of 4 takes a few hundred; this bounds a runaway fill.
pub const MAX_FILL_STEPS: u32 = 4000;

/// Largest half-size of the fill box per axis (voxels): the box is at most 257³ values,
/// 68 MB of `f32` sent to the network worker.
pub const MAX_RADIUS: usize = 128;

/// The image around a click, for the network worker.
#[derive(Clone, Debug, PartialEq)]
pub struct FillBox {
    /// The box's first voxel in the stack, `[z, y, x]`.
    pub origin: [usize; 3],
    /// Its size `[z, y, x]`.
    pub size: [usize; 3],
    /// The click inside the box.
    pub seed: [usize; 3],
    /// The image scaled to [0, 1], raster order.
    pub values: Vec<f32>,
}

/// An FFN fill waiting for Accept or Reject.
#[derive(Clone, Debug, PartialEq)]
pub struct Proposal {
    /// The first voxel of `mask` in the stack, `[z, y, x]`.
    pub origin: [usize; 3],
    /// The object over its bounding box.
    pub mask: Array3<bool>,
    /// Its voxels.
    pub voxels: u64,
}

impl Proposal {
    /// The box, `[z, y, x]` start and end (exclusive).
    pub fn bounds(&self) -> [[usize; 3]; 2] {
        let (dz, dy, dx) = self.mask.dim();
        let o = self.origin;
        [o, [o[0] + dz, o[1] + dy, o[2] + dx]]
    }

    /// Its pixels on slice `z` of a `height × width` stack (none when it does not reach it).
    pub fn slice(&self, z: usize, height: usize, width: usize) -> Option<Vec<bool>> {
        let [lo, hi] = self.bounds();
        if z < lo[0] || z >= hi[0] {
            return None;
        }
        let mut out = vec![false; height * width];
        let plane = self.mask.slice(s![z - lo[0], .., ..]);
        for ((dy, dx), &m) in plane.indexed_iter() {
            let (y, x) = (lo[1] + dy, lo[2] + dx);
            if m && y < height && x < width {
                out[y * width + x] = true;
            }
        }
        Some(out)
    }
}

/// Cuts the box of ±`radius` around `seed` (clipped to the stack) from the image layer
/// `image`, after checking that `labels` is a label layer of the same extent.
pub fn fill_box(
    ws: &Workspace,
    labels: LayerId,
    image: LayerId,
    seed: [usize; 3],
    radius: [usize; 3],
) -> Result<FillBox, String> {
    let label_layer = ws.layer(labels)?;
    if label_layer.info.kind != LayerKind::Label {
        return Err(format!(
            "{}: an FFN fill writes into a label layer",
            label_layer.info.name
        ));
    }
    let image_layer = ws.layer(image)?;
    let shape = image_layer.volume.shape();
    if label_layer.volume.shape() != shape {
        return Err(format!(
            "{} is {shape} but {} is {}: an FFN fill needs both the same size",
            image_layer.info.name,
            label_layer.info.name,
            label_layer.volume.shape()
        ));
    }
    image_box(ws, image, seed, radius)
}

/// Cuts the box of ±`radius` around `seed` (clipped to the stack) from the grayscale image
/// layer `image` (an FFN fill's, or a training run's live fill).
pub fn image_box(
    ws: &Workspace,
    image: LayerId,
    seed: [usize; 3],
    radius: [usize; 3],
) -> Result<FillBox, String> {
    let image_layer = ws.layer(image)?;
    let name = &image_layer.info.name;
    if image_layer.info.kind != LayerKind::Image {
        return Err(format!("{name}: an FFN fill reads an EM image layer"));
    }
    if image_layer.info.channels != 1 {
        return Err(format!(
            "{name}: has {} channels; an FFN takes grayscale images",
            image_layer.info.channels
        ));
    }
    let shape = image_layer.volume.shape();
    let dims = [shape.z, shape.y, shape.x];
    if (0..3).any(|a| seed[a] >= dims[a]) {
        return Err(format!(
            "FFN fill: the click (x {}, y {}, z {}) lies outside the stack",
            seed[2], seed[1], seed[0]
        ));
    }
    if let Some(a) = (0..3).find(|&a| radius[a] == 0 || radius[a] > MAX_RADIUS) {
        return Err(format!(
            "FFN fill: the box's half-size along {} is {}; give 1 to {MAX_RADIUS} voxels",
            ["z", "y", "x"][a],
            radius[a]
        ));
    }
    let lo: [usize; 3] = [0, 1, 2].map(|a| seed[a].saturating_sub(radius[a]));
    let hi: [usize; 3] = [0, 1, 2].map(|a| (seed[a] + radius[a] + 1).min(dims[a]));
    Ok(FillBox {
        origin: lo,
        size: [0, 1, 2].map(|a| hi[a] - lo[a]),
        seed: [0, 1, 2].map(|a| seed[a] - lo[a]),
        values: unit_box(image_layer, lo, hi)?,
    })
}

/// Voxels `lo..hi` (`[z, y, x]`) of an image layer scaled to [0, 1], raster order.
fn unit_box(
    layer: &crate::workspace::Layer,
    lo: [usize; 3],
    hi: [usize; 3],
) -> Result<Vec<f32>, String> {
    // One slice at a time: a small box of a large stack never holds whole slices as floats.
    let mut out = Vec::with_capacity((hi[0] - lo[0]) * (hi[1] - lo[1]) * (hi[2] - lo[2]));
    for z in lo[0]..hi[0] {
        let slice = layer
            .volume
            .to_unit_f32_slices(z..z + 1)
            .map_err(|e| format!("{}: {e}", layer.info.name))?;
        out.extend(
            slice
                .slice(s![0, lo[1]..hi[1], lo[2]..hi[2]])
                .iter()
                .copied(),
        );
    }
    Ok(out)
}

/// The image of an FFN segmentation, for the network worker.
#[derive(Clone, Debug, PartialEq)]
pub struct SegmentBox {
    /// The box's first voxel in the stack, `[z, y, x]`.
    pub origin: [usize; 3],
    /// Its size `[z, y, x]`.
    pub size: [usize; 3],
    /// The image scaled to [0, 1], raster order.
    pub values: Vec<f32>,
}

/// The box of an FFN segmentation: `region` (`[z, y, x]` start and end) of a grayscale image
/// layer, or all of it.
pub fn segment_box(
    ws: &Workspace,
    image: LayerId,
    region: Option<[[usize; 3]; 2]>,
) -> Result<SegmentBox, String> {
    let layer = ws.layer(image)?;
    let name = &layer.info.name;
    if layer.info.kind != LayerKind::Image || layer.info.channels != 1 {
        return Err(format!(
            "{name}: an FFN segments a grayscale EM image layer"
        ));
    }
    let s = layer.volume.shape();
    let dims = [s.z, s.y, s.x];
    let [lo, hi] = region.unwrap_or([[0, 0, 0], dims]);
    if (0..3).any(|a| lo[a] >= hi[a] || hi[a] > dims[a]) {
        return Err(format!(
            "{name}: the region z {}–{}, y {}–{}, x {}–{} is empty or outside the {s} stack",
            lo[0], hi[0], lo[1], hi[1], lo[2], hi[2]
        ));
    }
    Ok(SegmentBox {
        origin: lo,
        size: [0, 1, 2].map(|a| hi[a] - lo[a]),
        values: unit_box(layer, lo, hi)?,
    })
}

/// The data of an FFN training run: a box of the image and its labels.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainBox {
    /// Its size `[z, y, x]`.
    pub size: [usize; 3],
    /// The image scaled to [0, 1], raster order.
    pub image: Vec<f32>,
    /// The dense instance labels, raster order.
    pub labels: Vec<u32>,
    /// "image / labels, slices a–b", for the model's provenance.
    pub name: String,
}

/// The box of an FFN training run: `region` of a grayscale image layer and of a label layer
/// of the same extent (or all of them). A probability map is refused as labels.
pub fn train_box(
    ws: &Workspace,
    image: LayerId,
    label: LayerId,
    region: Option<[[usize; 3]; 2]>,
) -> Result<TrainBox, String> {
    let b = segment_box(ws, image, region)?;
    let labels_layer = ws.layer(label)?;
    let lname = &labels_layer.info.name;
    if labels_layer.info.kind != LayerKind::Label {
        return Err(format!(
            "{lname}: an FFN learns from a label layer of neurons (dense instance labels)"
        ));
    }
    let iname = &ws.layer(image)?.info.name;
    let shape = ws.layer(image)?.volume.shape();
    if labels_layer.volume.shape() != shape {
        return Err(format!(
            "{iname} is {shape} but {lname} is {}: an FFN trains on both the same size",
            labels_layer.volume.shape()
        ));
    }
    let [z0, y0, x0] = b.origin;
    let [nz, ny, nx] = b.size;
    let mut labels = Vec::with_capacity(nz * ny * nx);
    for z in z0..z0 + nz {
        let slice = labels_layer
            .volume
            .try_slice_labels(z)
            .map_err(|e| format!("{lname}: {e}"))?;
        for y in y0..y0 + ny {
            labels.extend_from_slice(&slice[y * shape.x + x0..y * shape.x + x0 + nx]);
        }
    }
    Ok(TrainBox {
        size: b.size,
        image: b.values,
        labels,
        name: format!("{iname} / {lname}, slices {z0}–{}", z0 + nz - 1),
    })
}

/// The label layer of a segmentation: the image's extent and voxel size, `labels` (a box of
/// `size` at `origin`, raster order) in place, 0 elsewhere.
pub fn segmentation_volume(
    ws: &Workspace,
    image: LayerId,
    origin: [usize; 3],
    size: [usize; 3],
    labels: &[u32],
) -> Result<emstudio_core::AnyVolume, String> {
    let layer = ws.layer(image)?;
    if labels.len() != size.iter().product::<usize>() {
        return Err(format!(
            "FFN segmentation: {} labels for a {}×{}×{} box",
            labels.len(),
            size[0],
            size[1],
            size[2]
        ));
    }
    let mut out =
        emstudio_core::Volume::<u32>::new(layer.volume.shape(), 1).map_err(|e| e.to_string())?;
    out.set_voxel_size(layer.volume.voxel_size());
    let mut i = 0;
    for z in 0..size[0] {
        for y in 0..size[1] {
            for x in 0..size[2] {
                out.set(origin[0] + z, origin[1] + y, origin[2] + x, 0, labels[i]);
                i += 1;
            }
        }
    }
    Ok(emstudio_core::AnyVolume::U32(out))
}

/// The proposal of a fill's mask over `fill` (1 = object, raster order): the object's voxels
/// 6-connected to the click, cropped to their bounding box; `None` when the click itself is
/// not in the object.
pub fn proposal(fill: &FillBox, mask: &[u8]) -> Result<Option<Proposal>, String> {
    let [nz, ny, nx] = fill.size;
    if mask.len() != nz * ny * nx {
        return Err(format!(
            "FFN fill: the network worker sent a mask of {} voxels for a {nz}×{ny}×{nx} box",
            mask.len()
        ));
    }
    let inside = |p: [usize; 3]| mask[(p[0] * ny + p[1]) * nx + p[2]] != 0;
    if !inside(fill.seed) {
        return Ok(None);
    }
    let mut object = Array3::from_elem((nz, ny, nx), false);
    let mut queue = VecDeque::from([fill.seed]);
    object[fill.seed] = true;
    let (mut lo, mut hi) = (fill.seed, fill.seed);
    let mut voxels = 0u64;
    while let Some(p) = queue.pop_front() {
        voxels += 1;
        for a in 0..3 {
            lo[a] = lo[a].min(p[a]);
            hi[a] = hi[a].max(p[a]);
        }
        for a in 0..3 {
            for up in [false, true] {
                let mut q = p;
                if up {
                    if p[a] + 1 >= fill.size[a] {
                        continue;
                    }
                    q[a] += 1;
                } else {
                    if p[a] == 0 {
                        continue;
                    }
                    q[a] -= 1;
                }
                if !object[q] && inside(q) {
                    object[q] = true;
                    queue.push_back(q);
                }
            }
        }
    }
    Ok(Some(Proposal {
        origin: [0, 1, 2].map(|a| fill.origin[a] + lo[a]),
        mask: object
            .slice(s![lo[0]..=hi[0], lo[1]..=hi[1], lo[2]..=hi[2]])
            .to_owned(),
        voxels,
    }))
}

impl Workspace {
    /// Holds `proposal` for a label layer (replacing an earlier one).
    pub fn set_proposal(&mut self, layer: LayerId, proposal: Proposal) {
        self.proposals.insert(layer, proposal);
    }

    /// The pending proposal of a layer.
    pub fn proposal(&self, layer: LayerId) -> Option<&Proposal> {
        self.proposals.get(&layer)
    }
}

/// google/ffn's partition volume of a label layer of neurons (`core::ffn_data`, the same as
/// `emstudio ffn prepare`'s `partitions.tif`): per voxel the class of the fraction of its
/// `lom_radius` box (z, y, x) that shares its ID, 255 within the radius of the border (no
/// training centre there); objects under `min_size` voxels count as background. With the
/// training's radius (half its canvas) these are the classes FFN training balances its
/// centres over. Returns the `u8` volume and a summary of the classes.
pub fn partitions_volume(
    ws: &Workspace,
    label: LayerId,
    lom_radius: [usize; 3],
    min_size: u64,
    progress: &mut dyn Progress,
) -> Result<(AnyVolume, String), ComputeError> {
    let layer = ws.layer(label)?;
    let name = &layer.info.name;
    if layer.info.kind != LayerKind::Label {
        return Err(format!(
            "{name}: FFN partitions come from a label layer of neurons (dense instance labels)"
        )
        .into());
    }
    let labels = layer
        .volume
        .to_label_array()
        .map_err(|e| format!("{name}: {e}"))?;
    let params = PartitionParams {
        lom_radius,
        min_size,
        ..PartitionParams::default()
    };
    let partitions = compute_partitions(labels.view(), &params, progress).map_err(|e| match e {
        FfnDataError::Cancelled(_) => ComputeError::Cancelled,
        e => ComputeError::Failed(format!("{name}: {e}")),
    })?;
    let classes =
        class_counts(partitions.view(), lom_radius).map_err(|e| format!("{name}: {e}"))?;
    if classes.iter().all(|&(c, _)| c == 0) {
        return Err(format!(
            "{name}: no object of at least {min_size} voxels reaches inside the border of \
             {}×{}×{} voxels: an FFN has nothing to learn here",
            lom_radius[0], lom_radius[1], lom_radius[2]
        )
        .into());
    }
    let largest = classes.iter().map(|&(_, n)| n).max().unwrap_or(0);
    let summary = format!(
        "{} classes (0 = background), {} training centres in one balanced pass; 255 = \
         within {}×{}×{} of the border (no centres)",
        classes.len(),
        largest * classes.len() as u64,
        lom_radius[0],
        lom_radius[1],
        lom_radius[2]
    );
    let volume = Volume::from_array(partitions.view()).map_err(|e| format!("{name}: {e}"))?;
    Ok((AnyVolume::U8(volume), summary))
}

#[cfg(test)]
mod tests {
    use super::*;
    use emstudio_core::{AnyVolume, Shape, Volume};

    fn workspace() -> (Workspace, LayerId, LayerId) {
        let mut ws = Workspace::default();
        let mut img = Volume::<u8>::new(Shape::new(10, 20, 30), 1).expect("image");
        img.set(4, 5, 6, 0, 255);
        let image = ws
            .add("em", LayerKind::Image, AnyVolume::U8(img))
            .expect("add")
            .id;
        let labels = ws
            .add(
                "gt",
                LayerKind::Label,
                AnyVolume::U16(Volume::new(Shape::new(10, 20, 30), 1).expect("labels")),
            )
            .expect("add")
            .id;
        (ws, image, labels)
    }

    #[test]
    fn partitions_are_the_libraries_and_bad_layers_are_named() {
        let mut ws = Workspace::default();
        // Two slabs of neurons along x and a small object: 12 × 20 × 24.
        let ids = ndarray::Array3::from_shape_fn((12, 20, 24), |(z, y, x)| match (y < 9, x) {
            _ if (5..7).contains(&z) && (10..12).contains(&y) && (16..18).contains(&x) => 9u16,
            (true, _) => 1,
            (false, x) if x < 15 => 2,
            _ => 0,
        });
        let label = ws
            .add(
                "neurons",
                LayerKind::Label,
                AnyVolume::U16(Volume::from_array(ids.view()).expect("v")),
            )
            .expect("add")
            .id;
        let image = ws
            .add(
                "em",
                LayerKind::Image,
                AnyVolume::U8(Volume::new(emstudio_core::Shape::new(12, 20, 24), 1).expect("v")),
            )
            .expect("add")
            .id;
        let radius = [2, 3, 3];
        let (volume, summary) = partitions_volume(
            &ws,
            label,
            radius,
            10,
            &mut emstudio_core::progress::NoProgress,
        )
        .expect("partitions");
        let want = compute_partitions(
            ids.mapv(u32::from).view(),
            &PartitionParams {
                lom_radius: radius,
                min_size: 10,
                ..PartitionParams::default()
            },
            &mut emstudio_core::progress::NoProgress,
        )
        .expect("library");
        let AnyVolume::U8(got) = &volume else {
            panic!("a u8 volume");
        };
        assert_eq!(got.to_array().expect("array"), want);
        assert!(
            summary.contains("training centres in one balanced pass"),
            "{summary}"
        );
        let e = partitions_volume(
            &ws,
            image,
            radius,
            10,
            &mut emstudio_core::progress::NoProgress,
        )
        .expect_err("an image is refused");
        assert!(
            matches!(&e, ComputeError::Failed(m) if m.starts_with("em: ")),
            "{e:?}"
        );
        let e = partitions_volume(
            &ws,
            label,
            [6, 3, 3],
            10,
            &mut emstudio_core::progress::NoProgress,
        )
        .expect_err("too small for the radius");
        assert!(
            matches!(&e, ComputeError::Failed(m) if m.starts_with("neurons: ")),
            "{e:?}"
        );
        let e = partitions_volume(
            &ws,
            label,
            radius,
            100_000,
            &mut emstudio_core::progress::NoProgress,
        )
        .expect_err("no object large enough");
        assert!(
            matches!(&e, ComputeError::Failed(m) if m.contains("nothing to learn")),
            "{e:?}"
        );
    }

    #[test]
    fn the_box_is_clipped_scaled_and_checked() {
        let (ws, image, labels) = workspace();
        let b = fill_box(&ws, labels, image, [4, 5, 6], [3, 8, 8]).expect("box");
        assert_eq!(b.origin, [1, 0, 0]);
        assert_eq!(b.size, [7, 14, 15]);
        assert_eq!(b.seed, [3, 5, 6]);
        assert_eq!(b.values.len(), 7 * 14 * 15);
        assert_eq!(b.values[(3 * 14 + 5) * 15 + 6], 1.0);
        assert_eq!(b.values.iter().filter(|&&v| v > 0.0).count(), 1);
        let err = |r: Result<FillBox, String>| r.expect_err("refused");
        assert!(err(fill_box(&ws, image, image, [4, 5, 6], [3, 3, 3])).contains("label layer"));
        assert!(err(fill_box(&ws, labels, labels, [4, 5, 6], [3, 3, 3])).contains("EM image"));
        assert!(
            err(fill_box(&ws, labels, image, [10, 5, 6], [3, 3, 3])).contains("outside the stack")
        );
        assert!(err(fill_box(&ws, labels, image, [4, 5, 6], [3, 0, 3])).contains("along y"));
        assert!(err(fill_box(&ws, labels, image, [4, 5, 6], [3, 3, 500])).contains("along x"));
    }

    #[test]
    fn a_mismatched_label_layer_is_named() {
        let (mut ws, image, _) = workspace();
        let small = ws
            .add(
                "small",
                LayerKind::Label,
                AnyVolume::U16(Volume::new(Shape::new(2, 2, 2), 1).expect("labels")),
            )
            .expect("add")
            .id;
        let e = fill_box(&ws, small, image, [1, 1, 1], [1, 1, 1]).expect_err("refused");
        assert!(e.contains("em is") && e.contains("small is"), "{e}");
    }

    #[test]
    fn the_proposal_keeps_what_touches_the_click() {
        let fill = FillBox {
            origin: [10, 20, 30],
            size: [3, 4, 5],
            seed: [1, 1, 1],
            values: vec![0.0; 60],
        };
        let mut mask = vec![0u8; 60];
        let at = |z: usize, y: usize, x: usize| (z * 4 + y) * 5 + x;
        for p in [at(1, 1, 1), at(1, 1, 2), at(2, 1, 2), at(0, 3, 4)] {
            mask[p] = 1;
        }
        let p = proposal(&fill, &mask).expect("ok").expect("object");
        assert_eq!(p.voxels, 3, "the far voxel is not connected");
        assert_eq!(p.origin, [11, 21, 31]);
        assert_eq!(p.bounds(), [[11, 21, 31], [13, 22, 33]]);
        assert!(p.slice(12, 40, 40).expect("slice 12")[21 * 40 + 32]);
        assert_eq!(
            p.slice(12, 40, 40)
                .expect("slice 12")
                .iter()
                .filter(|&&m| m)
                .count(),
            1
        );
        assert!(p.slice(10, 40, 40).is_none());
        mask[at(1, 1, 1)] = 0;
        assert_eq!(
            proposal(&fill, &mask).expect("ok"),
            None,
            "the click not in it"
        );
        assert!(proposal(&fill, &mask[1..]).is_err());
    }

    #[test]
    fn a_segmentation_box_goes_out_and_its_labels_come_back_in_place() {
        let (ws, image, labels) = workspace();
        let b = segment_box(&ws, image, Some([[2, 3, 4], [6, 10, 12]])).expect("box");
        let (origin, size) = (b.origin, b.size);
        assert_eq!(
            (origin, size, b.values.len()),
            ([2, 3, 4], [4, 7, 8], 4 * 7 * 8)
        );
        assert_eq!(b.values[(2 * 7 + 2) * 8 + 2], 1.0, "voxel (4, 5, 6)");
        let whole = segment_box(&ws, image, None).expect("whole");
        assert_eq!(whole.size, [10, 20, 30]);
        let e = |r: Result<SegmentBox, String>| r.expect_err("refused");
        assert!(e(segment_box(&ws, labels, None)).contains("grayscale EM image"));
        assert!(e(segment_box(&ws, image, Some([[2, 3, 4], [2, 10, 12]]))).contains("empty"));
        assert!(e(segment_box(&ws, image, Some([[0, 0, 0], [11, 20, 30]]))).contains("outside"));
        let ids: Vec<u32> = (0..4 * 7 * 8).map(|i| (i % 3) as u32).collect();
        let v = segmentation_volume(&ws, image, origin, size, &ids).expect("volume");
        assert_eq!(v.shape(), emstudio_core::Shape::new(10, 20, 30));
        assert_eq!(v.get_f64(2, 3, 4, 0), 0.0);
        assert_eq!(v.get_f64(2, 3, 5, 0), 1.0);
        assert_eq!(v.get_f64(5, 9, 11, 0), f64::from(ids[ids.len() - 1]));
        assert_eq!(v.get_f64(0, 0, 0, 0), 0.0, "outside the box");
        assert!(segmentation_volume(&ws, image, origin, size, &ids[1..]).is_err());
    }

    #[test]
    fn a_training_box_takes_image_and_labels_and_refuses_a_probability_map() {
        let (mut ws, image, labels) = workspace();
        let t = train_box(&ws, image, labels, Some([[1, 2, 3], [4, 6, 9]])).expect("box");
        assert_eq!(t.size, [3, 4, 6]);
        assert_eq!((t.image.len(), t.labels.len()), (72, 72));
        assert_eq!(t.name, "em / gt, slices 1–3");
        let map = ws
            .add(
                "prob",
                LayerKind::Image,
                AnyVolume::F32(Volume::new(Shape::new(10, 20, 30), 1).expect("map")),
            )
            .expect("add")
            .id;
        let e = train_box(&ws, image, map, None).expect_err("not labels");
        assert!(e.contains("prob: an FFN learns from a label layer"), "{e}");
        let small = ws
            .add(
                "small",
                LayerKind::Label,
                AnyVolume::U16(Volume::new(Shape::new(2, 2, 2), 1).expect("labels")),
            )
            .expect("add")
            .id;
        let e = train_box(&ws, image, small, None).expect_err("size");
        assert!(e.contains("small is"), "{e}");
    }
}
