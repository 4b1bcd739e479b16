//! Splitting a segment in two (proofreading), as seeded watersheds on the EM image:
//!
//! - [`split_2d`]: Dojo's split. The user draws a stroke across a segment on one slice; the
//!   segment minus a band around the stroke falls apart into pieces, each piece seeds a
//!   watershed of the inverted EM intensity (dark membranes are ridges) restricted to the
//!   segment, so the cut follows the membrane nearest the stroke, within the band. The largest
//!   piece keeps the ID; every other piece gets a new one.
//! - [`split_3d`]: two seed clicks in one segment (on any slices). A watershed of the segment
//!   from the two seeds, over an elevation that mixes the inverted EM intensity with the
//!   inverted distance to the segment's boundary (so the cut prefers necks and membranes),
//!   separates the segment; the part of the first seed keeps the ID.
//!
//! Both work on the segment's bounding box only and return the [`Edit`] for the journal. They
//! reuse the seeded watershed of [`crate::labels`], which is checked against scikit-image.

use crate::distance::{edt_3d, sampling_from_voxel_size};
use crate::edit_ops::{for_each_brush_pixel, Locked};
use crate::journal::{Edit, EditRecorder};
use crate::labels::watershed::{watershed_2d, watershed_3d};
use crate::neighborhood::{Connectivity2, Connectivity3};
use crate::progress::NoProgress;
use crate::volume::{Volume, Voxel};
use ndarray::{Array2, Array3};
use std::collections::VecDeque;

/// Why a split could not be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    /// A seed or the slice lies outside the volume.
    #[error("({z}, {y}, {x}) lies outside the volume")]
    Outside {
        /// Slice.
        z: usize,
        /// Row.
        y: usize,
        /// Column.
        x: usize,
    },
    /// The stroke or a seed lies on background only.
    #[error("there is no segment under the {0}")]
    NoSegment(&'static str),
    /// The two seeds are in different segments.
    #[error("the seeds lie in different segments ({0} and {1}); both must be in the one to split")]
    DifferentSegments(u32, u32),
    /// Both seeds are the same voxel.
    #[error("the two seeds are the same voxel")]
    SameSeed,
    /// The segment is locked.
    #[error("segment {0} is locked")]
    Locked(u32),
    /// The stroke leaves the segment in one piece.
    #[error("the stroke does not cut segment {0} in two: draw across it from edge to edge")]
    DoesNotCut(u32),
    /// The image does not match the labels.
    #[error("the image is {image} but the labels are {labels}")]
    ShapeMismatch {
        /// Image shape.
        image: String,
        /// Label shape.
        labels: String,
    },
}

/// What a split did.
#[derive(Clone, Debug)]
pub struct Split {
    /// The change, for the journal.
    pub edit: Edit<u32>,
    /// The segment that was split (it keeps its ID on its largest / first-seed part).
    pub segment: u32,
    /// IDs given to the other parts, in order from `next_id`.
    pub new_ids: Vec<u32>,
}

fn check_image<I: Voxel>(image: &Volume<I>, labels: &Volume<u32>) -> Result<(), SplitError> {
    if image.shape() != labels.shape() {
        return Err(SplitError::ShapeMismatch {
            image: image.shape().to_string(),
            labels: labels.shape().to_string(),
        });
    }
    Ok(())
}

/// Mean over channels of the image at a voxel.
fn intensity<I: Voxel>(image: &Volume<I>, z: usize, y: usize, x: usize) -> f32 {
    let c = image.channels();
    ((0..c).map(|k| image.get(z, y, x, k).to_f64()).sum::<f64>() / c as f64) as f32
}

/// Rescales `values` to 0..1 and inverts them (bright 0, dark 1); flat input gives zeros.
fn inverted_unit(values: &mut [f32]) {
    let (lo, hi) = values
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    let span = hi - lo;
    for v in values.iter_mut() {
        *v = if span > 0.0 { (hi - *v) / span } else { 0.0 };
    }
}

/// A stroke drawn across a segment to split it.
#[derive(Clone, Copy, Debug)]
pub struct SplitStroke<'a> {
    /// Slice.
    pub z: usize,
    /// Polyline of `(y, x)` data pixels.
    pub points: &'a [(f32, f32)],
    /// Half-width (data pixels) around it within which the cut may move to follow a membrane.
    pub band: f32,
    /// The segment to split; none: the one under the stroke's midpoint (by length), else the
    /// nonzero ID most covered by the band.
    pub segment: Option<u32>,
}

/// Splits a segment along a stroke (see the module doc and [`SplitStroke`]). New IDs are
/// `next_id`, `next_id + 1`, ….
pub fn split_2d<I: Voxel>(
    labels: &mut Volume<u32>,
    image: &Volume<I>,
    stroke: SplitStroke<'_>,
    next_id: u32,
    locked: &Locked<u32>,
) -> Result<Split, SplitError> {
    let SplitStroke {
        z,
        points: stroke,
        band,
        segment,
    } = stroke;
    check_image(image, labels)?;
    let s = labels.shape();
    if z >= s.z {
        return Err(SplitError::Outside { z, y: 0, x: 0 });
    }
    // The segment: the ID with most pixels under the stroke's band.
    let mut under = Vec::new();
    for_each_brush_pixel(stroke, &[band], s.y, s.x, |y, x| under.push((y, x)));
    under.sort_unstable();
    under.dedup();
    let mut counts = std::collections::HashMap::<u32, usize>::new();
    for &(y, x) in &under {
        *counts.entry(labels.get(z, y, x, 0)).or_default() += 1;
    }
    let most_covered = || {
        counts
            .iter()
            .filter(|(id, _)| **id != 0)
            .max_by_key(|(id, n)| (**n, std::cmp::Reverse(**id)))
            .map(|(id, _)| *id)
    };
    let at_middle = midpoint(stroke)
        .filter(|(y, x)| *y >= 0.0 && *x >= 0.0 && (*y as usize) < s.y && (*x as usize) < s.x)
        .map(|(y, x)| labels.get(z, y as usize, x as usize, 0))
        .filter(|id| *id != 0);
    let segment = segment
        .filter(|id| *id != 0)
        .or(at_middle)
        .or_else(most_covered)
        .ok_or(SplitError::NoSegment("stroke"))?;
    if !counts.contains_key(&segment) {
        return Err(SplitError::DoesNotCut(segment));
    }
    if locked.contains(&segment) {
        return Err(SplitError::Locked(segment));
    }
    // The segment's bounding box on this slice.
    let (mut y0, mut y1, mut x0, mut x1) = (usize::MAX, 0, usize::MAX, 0);
    let slice = labels.slice(z);
    for (i, _) in slice.iter().enumerate().filter(|(_, v)| **v == segment) {
        let (y, x) = (i / s.x, i % s.x);
        (y0, y1, x0, x1) = (y0.min(y), y1.max(y + 1), x0.min(x), x1.max(x + 1));
    }
    let (h, w) = (y1 - y0, x1 - x0);
    let whole = Array2::from_shape_fn((h, w), |(y, x)| slice[(y + y0) * s.x + x + x0] == segment);
    let mut cut = Array2::from_elem((h, w), false);
    for &(y, x) in &under {
        if (y0..y1).contains(&y) && (x0..x1).contains(&x) {
            cut[(y - y0, x - x0)] = true;
        }
    }
    // Only the parts of the segment the stroke touches are split; other pieces of the same ID
    // on this slice (a neuron crossing it twice) keep it.
    let (parts, _) = components_2d(&whole);
    let touched: std::collections::HashSet<u32> = cut
        .indexed_iter()
        .filter(|(p, c)| **c && whole[*p])
        .map(|(p, _)| parts[p])
        .collect();
    let mask = Array2::from_shape_fn((h, w), |p| whole[p] && touched.contains(&parts[p]));
    // Pieces of the segment left by the band, largest first; crumbs of a few pixels are
    // flooded by their neighbours instead of becoming segments.
    let keep = Array2::from_shape_fn((h, w), |p| mask[p] && !cut[p]);
    let (pieces, sizes) = components_2d(&keep);
    let mut order: Vec<usize> = (0..sizes.len()).filter(|&i| sizes[i] >= 4).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(sizes[i]));
    if order.len() < 2 {
        return Err(SplitError::DoesNotCut(segment));
    }
    let mut rank = vec![0u32; sizes.len() + 1];
    for (r, &i) in order.iter().enumerate() {
        rank[i + 1] = r as u32 + 1;
    }
    let markers = pieces.mapv(|p| rank[p as usize]);
    let mut elevation: Vec<f32> = (0..h * w)
        .map(|i| intensity(image, z, i / w + y0, i % w + x0))
        .collect();
    inverted_unit(&mut elevation);
    let elevation = Array2::from_shape_vec((h, w), elevation).expect("h * w values");
    let basins = watershed_2d(
        elevation.view(),
        markers.view(),
        Some(mask.view()),
        Connectivity2::C4,
    )
    .expect("shapes built to match");
    let new_ids: Vec<u32> = (0..order.len() as u32 - 1).map(|k| next_id + k).collect();
    let mut recorder = EditRecorder::new(format!("split {segment}"));
    for ((y, x), &b) in basins.indexed_iter() {
        if b > 1 {
            recorder.set(labels, z, y + y0, x + x0, new_ids[b as usize - 2]);
        }
    }
    Ok(Split {
        edit: recorder.finish(),
        segment,
        new_ids,
    })
}

/// The point halfway along a polyline.
fn midpoint(points: &[(f32, f32)]) -> Option<(f32, f32)> {
    let length = |a: (f32, f32), b: (f32, f32)| ((b.0 - a.0).powi(2) + (b.1 - a.1).powi(2)).sqrt();
    let total: f32 = points.windows(2).map(|w| length(w[0], w[1])).sum();
    let mut left = total / 2.0;
    for w in points.windows(2) {
        let l = length(w[0], w[1]);
        if l >= left && l > 0.0 {
            let t = left / l;
            return Some((
                w[0].0 + t * (w[1].0 - w[0].0),
                w[0].1 + t * (w[1].1 - w[0].1),
            ));
        }
        left -= l;
    }
    points.first().copied()
}

/// Labels 4-connected `true` pixels 1, 2, …; returns the labels and each component's size.
fn components_2d(mask: &Array2<bool>) -> (Array2<u32>, Vec<usize>) {
    let (h, w) = mask.dim();
    let mut out = Array2::<u32>::zeros((h, w));
    let mut sizes = Vec::new();
    let mut queue = VecDeque::new();
    for start in 0..h * w {
        let p = (start / w, start % w);
        if !mask[p] || out[p] != 0 {
            continue;
        }
        sizes.push(0);
        let id = sizes.len() as u32;
        out[p] = id;
        queue.push_back(p);
        while let Some((y, x)) = queue.pop_front() {
            sizes[id as usize - 1] += 1;
            let near = [
                (y.wrapping_sub(1), x),
                (y + 1, x),
                (y, x.wrapping_sub(1)),
                (y, x + 1),
            ];
            for q in near {
                if q.0 < h && q.1 < w && mask[q] && out[q] == 0 {
                    out[q] = id;
                    queue.push_back(q);
                }
            }
        }
    }
    (out, sizes)
}

/// Splits the segment containing both seeds `(z, y, x)` in 3D (see the module doc). The part
/// flooded from `seed_a` keeps the ID; the other gets `next_id`.
pub fn split_3d<I: Voxel>(
    labels: &mut Volume<u32>,
    image: &Volume<I>,
    seed_a: (usize, usize, usize),
    seed_b: (usize, usize, usize),
    next_id: u32,
    locked: &Locked<u32>,
) -> Result<Split, SplitError> {
    check_image(image, labels)?;
    let s = labels.shape();
    for &(z, y, x) in &[seed_a, seed_b] {
        if z >= s.z || y >= s.y || x >= s.x {
            return Err(SplitError::Outside { z, y, x });
        }
    }
    if seed_a == seed_b {
        return Err(SplitError::SameSeed);
    }
    let id_a = labels.get(seed_a.0, seed_a.1, seed_a.2, 0);
    let id_b = labels.get(seed_b.0, seed_b.1, seed_b.2, 0);
    if id_a == 0 || id_b == 0 {
        return Err(SplitError::NoSegment("seed"));
    }
    if id_a != id_b {
        return Err(SplitError::DifferentSegments(id_a, id_b));
    }
    let segment = id_a;
    if locked.contains(&segment) {
        return Err(SplitError::Locked(segment));
    }
    // Bounding box of the segment.
    let mut lo = [usize::MAX; 3];
    let mut hi = [0usize; 3];
    for z in 0..s.z {
        let slice = labels.slice(z);
        for (i, _) in slice.iter().enumerate().filter(|(_, v)| **v == segment) {
            let p = [z, i / s.x, i % s.x];
            for k in 0..3 {
                lo[k] = lo[k].min(p[k]);
                hi[k] = hi[k].max(p[k] + 1);
            }
        }
    }
    let dim = (hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]);
    let mask = Array3::from_shape_fn(dim, |(z, y, x)| {
        labels.get(z + lo[0], y + lo[1], x + lo[2], 0) == segment
    });
    // Elevation: half inverted intensity, half inverted boundary distance (both 0..1).
    let sampling = sampling_from_voxel_size(labels.voxel_size());
    let distance = edt_3d(mask.view(), sampling, &mut NoProgress).unwrap_or_else(|_| {
        // Invalid voxel size: measure in voxels.
        edt_3d(mask.view(), [1.0; 3], &mut NoProgress).expect("unit sampling is valid")
    });
    let mut near_edge: Vec<f32> = distance.iter().map(|d| -d).collect();
    inverted_unit(&mut near_edge);
    // inverted_unit(-d) gives d / max: deep inside is 1; flip so necks are ridges.
    let mut dark: Vec<f32> = mask
        .indexed_iter()
        .map(|((z, y, x), _)| intensity(image, z + lo[0], y + lo[1], x + lo[2]))
        .collect();
    inverted_unit(&mut dark);
    let elevation = Array3::from_shape_vec(
        dim,
        dark.iter()
            .zip(&near_edge)
            .map(|(d, n)| 0.5 * d + 0.5 * (1.0 - n))
            .collect(),
    )
    .expect("one value per voxel");
    let mut markers = Array3::<u32>::zeros(dim);
    markers[(seed_a.0 - lo[0], seed_a.1 - lo[1], seed_a.2 - lo[2])] = 1;
    markers[(seed_b.0 - lo[0], seed_b.1 - lo[1], seed_b.2 - lo[2])] = 2;
    let basins = watershed_3d(
        elevation.view(),
        markers.view(),
        Some(mask.view()),
        Connectivity3::C6,
        &mut NoProgress,
    )
    .expect("shapes built to match");
    let mut recorder = EditRecorder::new(format!("split {segment} in 3D"));
    for ((z, y, x), &b) in basins.indexed_iter() {
        if b == 2 {
            recorder.set(labels, z + lo[0], y + lo[1], x + lo[2], next_id);
        }
    }
    Ok(Split {
        edit: recorder.finish(),
        segment,
        new_ids: vec![next_id],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::Journal;
    use crate::volume::Shape;

    /// A 1×20×30 slice: segment 7 is a bar across the whole slice; the image is bright with a
    /// dark vertical membrane at column 17.
    fn bar() -> (Volume<u32>, Volume<u8>) {
        let s = Shape::new(1, 20, 30);
        let mut labels = Volume::<u32>::new(s, 1).expect("labels");
        let mut image = Volume::<u8>::new(s, 1).expect("image");
        for y in 0..20 {
            for x in 0..30 {
                if (5..15).contains(&y) {
                    labels.set(0, y, x, 0, 7);
                }
                image.set(0, y, x, 0, if x == 17 { 20 } else { 200 });
            }
        }
        (labels, image)
    }

    #[test]
    fn a_stroke_across_a_bar_splits_it_at_the_nearby_membrane() {
        let (mut labels, image) = bar();
        let before = labels.clone();
        // Vertical stroke at x = 15.5, band 3: the cut may move to the membrane at x = 17.
        let split = split_2d(
            &mut labels,
            &image,
            SplitStroke {
                z: 0,
                points: &[(0.0, 15.5), (19.0, 15.5)],
                band: 3.0,
                segment: None,
            },
            100,
            &Locked::new(),
        )
        .expect("split");
        assert_eq!((split.segment, split.new_ids.clone()), (7, vec![100]));
        for y in 5..15 {
            for x in 0..30 {
                // The larger (left) part keeps 7; the cut lies on the membrane column.
                let want = if x < 17 { 7 } else { 100 };
                let got = labels.get(0, y, x, 0);
                assert!(
                    got == want || (x == 17 && got == 7),
                    "({y}, {x}) = {got}, want {want}"
                );
            }
        }
        assert_eq!(labels.get(0, 2, 2, 0), 0, "background untouched");
        let mut journal = Journal::new(1 << 20);
        journal.record(split.edit);
        journal.undo(&mut labels).expect("undo");
        assert_eq!(labels, before);
    }

    #[test]
    fn pieces_of_the_segment_away_from_the_stroke_keep_their_id() {
        let (mut labels, image) = bar();
        // A gap at columns 3..5 leaves a small piece of 7 at columns 0..3, far from the stroke.
        for y in 5..15 {
            for x in 3..5 {
                labels.set(0, y, x, 0, 0);
            }
        }
        let split = split_2d(
            &mut labels,
            &image,
            SplitStroke {
                z: 0,
                points: &[(0.0, 15.5), (19.0, 15.5)],
                band: 3.0,
                segment: None,
            },
            100,
            &Locked::new(),
        )
        .expect("split");
        assert_eq!(split.new_ids, vec![100]);
        assert_eq!(
            labels.get(0, 8, 1, 0),
            7,
            "the detached piece is not relabelled"
        );
        // Of the cut part, the larger right side keeps 7; the left side between gap and cut
        // gets the new ID.
        assert_eq!(labels.get(0, 8, 25, 0), 7);
        assert_eq!(labels.get(0, 8, 10, 0), 100);
    }

    #[test]
    fn a_stroke_that_does_not_cut_is_refused() {
        let (mut labels, image) = bar();
        let before = labels.clone();
        let err = split_2d(
            &mut labels,
            &image,
            SplitStroke {
                z: 0,
                points: &[(7.0, 10.0), (12.0, 10.0)],
                band: 1.0,
                segment: None,
            },
            100,
            &Locked::new(),
        )
        .expect_err("does not cut");
        assert_eq!(err, SplitError::DoesNotCut(7));
        assert_eq!(labels, before);
        let locked = Locked::from([7]);
        let err = split_2d(
            &mut labels,
            &image,
            SplitStroke {
                z: 0,
                points: &[(0.0, 15.5), (19.0, 15.5)],
                band: 3.0,
                segment: None,
            },
            100,
            &locked,
        )
        .expect_err("locked");
        assert_eq!(err, SplitError::Locked(7));
        let err = split_2d(
            &mut labels,
            &image,
            SplitStroke {
                z: 0,
                points: &[(1.0, 1.0)],
                band: 1.0,
                segment: None,
            },
            100,
            &locked,
        )
        .expect_err("background");
        assert_eq!(err, SplitError::NoSegment("stroke"));
    }

    #[test]
    fn the_segment_under_the_strokes_middle_is_split_even_when_the_band_covers_more_of_another() {
        let (mut labels, image) = bar();
        // Background around the bar becomes segment 2: the band covers more of 2 than of 7.
        for y in (0..5).chain(15..20) {
            for x in 0..30 {
                labels.set(0, y, x, 0, 2);
            }
        }
        let split = split_2d(
            &mut labels,
            &image,
            SplitStroke {
                z: 0,
                points: &[(0.0, 15.5), (19.0, 15.5)],
                band: 3.0,
                segment: None,
            },
            100,
            &Locked::new(),
        )
        .expect("split");
        assert_eq!(split.segment, 7);
        let err = split_2d(
            &mut labels,
            &image,
            SplitStroke {
                z: 0,
                points: &[(0.0, 15.5), (19.0, 15.5)],
                band: 3.0,
                segment: Some(9),
            },
            200,
            &Locked::new(),
        )
        .expect_err("9 is not under the stroke");
        assert_eq!(err, SplitError::DoesNotCut(9));
    }

    /// Two 7×7×7 cubes joined by a 1×1 neck along x, all segment 3, uniform image: the split
    /// falls at the neck.
    #[test]
    fn two_seeds_split_a_dumbbell_at_its_neck() {
        let s = Shape::new(9, 9, 21);
        let mut labels = Volume::<u32>::new(s, 1).expect("labels");
        let image = Volume::<u8>::new(s, 1).expect("image");
        for z in 1..8 {
            for y in 1..8 {
                for x in (1..8).chain(13..20) {
                    labels.set(z, y, x, 0, 3);
                }
            }
        }
        for x in 8..13 {
            labels.set(4, 4, x, 0, 3);
        }
        let before = labels.clone();
        let split = split_3d(
            &mut labels,
            &image,
            (4, 4, 3),
            (2, 6, 17),
            9,
            &Locked::new(),
        )
        .expect("split");
        assert_eq!(split.new_ids, vec![9]);
        assert_eq!(labels.get(1, 1, 1, 0), 3);
        assert_eq!(labels.get(7, 7, 19, 0), 9);
        assert!((8..13).all(|x| [3, 9].contains(&labels.get(4, 4, x, 0))));
        let nine = (0..9)
            .flat_map(|z| labels.slice(z))
            .filter(|v| *v == 9)
            .count();
        // One cube (343) and at most the neck.
        assert!((343..=348).contains(&nine), "{nine} voxels moved");
        assert_eq!(labels.get(0, 0, 0, 0), 0);
        split.edit.apply(&mut labels, false).expect("undo");
        assert_eq!(labels, before);

        let err = split_3d(&mut labels, &image, (4, 4, 3), (0, 0, 0), 9, &Locked::new())
            .expect_err("background seed");
        assert_eq!(err, SplitError::NoSegment("seed"));
        let err = split_3d(&mut labels, &image, (4, 4, 3), (4, 4, 3), 9, &Locked::new())
            .expect_err("same seed");
        assert_eq!(err, SplitError::SameSeed);
    }
}
