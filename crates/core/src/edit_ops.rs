//! Label editing operations (painting and proofreading), each returning the [`Edit`] it made so
//! the [`crate::journal::Journal`] can undo and redo it:
//!
//! - [`brush_stroke`]: a round brush dragged along a polyline on one slice (paint with an ID,
//!   erase with 0); the radius is in data pixels, so the caller converts screen pixels at the
//!   current zoom.
//! - [`flood_fill`]: 2D (one slice) or 3D fill from a seed, bounded by the seed's label or by an
//!   EM-intensity tolerance around the seed's intensity.
//! - [`merge`] and [`delete_segment`]: every voxel of some IDs becomes another ID, or 0.
//! - [`paint_mask`]: the voxels of a boolean mask over a box get one ID (an accepted FFN fill
//!   proposal).
//!
//! Locked IDs are never changed by any of them.

use crate::journal::{Edit, EditRecorder};
use crate::volume::{Volume, Voxel};
use std::collections::{HashSet, VecDeque};

/// IDs no tool may change.
pub type Locked<T> = HashSet<T>;

/// Paints `value` with a round brush of `radius` data pixels along the polyline `points`
/// (`(y, x)` in data pixels, fractional allowed) on slice `z`. A single point is a dab. Voxels
/// whose ID is locked keep it; points outside the slice are clipped.
pub fn brush_stroke<T: Voxel + std::hash::Hash + Eq>(
    volume: &mut Volume<T>,
    z: usize,
    points: &[(f32, f32)],
    radius: f32,
    value: T,
    locked: &Locked<T>,
) -> Edit<T> {
    brush_stroke_varying(volume, z, points, &[radius], value, locked)
}

/// [`brush_stroke`] with a radius per point (`radii[i]` at `points[i]`, interpolated between
/// them; stylus pressure); a single radius applies to every point.
pub fn brush_stroke_varying<T: Voxel + std::hash::Hash + Eq>(
    volume: &mut Volume<T>,
    z: usize,
    points: &[(f32, f32)],
    radii: &[f32],
    value: T,
    locked: &Locked<T>,
) -> Edit<T> {
    let mut recorder = EditRecorder::new(if value == T::default() {
        "erase".to_string()
    } else {
        format!("paint {value:?}")
    });
    let s = volume.shape();
    if z >= s.z || points.is_empty() {
        return recorder.finish();
    }
    for_each_brush_pixel(points, radii, s.y, s.x, |y, x| {
        if !locked.contains(&volume.get(z, y, x, 0)) {
            recorder.set(volume, z, y, x, value);
        }
    });
    recorder.finish()
}

/// Calls `f(y, x)` for every pixel of a `height × width` slice whose centre lies within the
/// brush radius of the polyline `points` (`(y, x)`, fractional allowed): the union of capsules
/// around its segments, so edges are smooth whatever the spacing of the points. `radii` holds
/// one radius, or one per point (interpolated along each segment). A pixel may be visited more
/// than once.
pub(crate) fn for_each_brush_pixel(
    points: &[(f32, f32)],
    radii: &[f32],
    height: usize,
    width: usize,
    mut f: impl FnMut(usize, usize),
) {
    if points.is_empty() || height == 0 || width == 0 {
        return;
    }
    let radius_at = |i: usize| {
        radii
            .get(i)
            .or(radii.last())
            .copied()
            .unwrap_or(1.0)
            .max(0.5)
    };
    // A lone point is a segment of length zero.
    let segments: Vec<(usize, usize)> = if points.len() == 1 {
        vec![(0, 0)]
    } else {
        (0..points.len() - 1).map(|i| (i, i + 1)).collect()
    };
    for (i, j) in segments {
        let (a, b) = (points[i], points[j]);
        let (ra, rb) = (radius_at(i), radius_at(j));
        let r = ra.max(rb);
        let (lo_y, hi_y) = (a.0.min(b.0) - r, a.0.max(b.0) + r);
        let (lo_x, hi_x) = (a.1.min(b.1) - r, a.1.max(b.1) + r);
        if hi_y < 0.0 || hi_x < 0.0 || lo_y >= height as f32 || lo_x >= width as f32 {
            continue;
        }
        let y0 = lo_y.floor().max(0.0) as usize;
        let x0 = lo_x.floor().max(0.0) as usize;
        let y1 = (hi_y.ceil() as usize).min(height - 1);
        let x1 = (hi_x.ceil() as usize).min(width - 1);
        let (dy, dx) = (b.0 - a.0, b.1 - a.1);
        let len2 = dy * dy + dx * dx;
        for y in y0..=y1 {
            for x in x0..=x1 {
                // Nearest point of the segment to the pixel centre, and the radius there.
                let (py, px) = (y as f32 + 0.5 - a.0, x as f32 + 0.5 - a.1);
                let t = if len2 > 0.0 {
                    ((py * dy + px * dx) / len2).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                let (ey, ex) = (py - t * dy, px - t * dx);
                let rt = ra + t * (rb - ra);
                if ey * ey + ex * ex <= rt * rt {
                    f(y, x);
                }
            }
        }
    }
}

/// What bounds a [`flood_fill`].
#[derive(Clone, Copy, Debug)]
pub enum FillBound<'a, I: Voxel> {
    /// Voxels with the seed's label (filling background fills a hole; filling an object
    /// recolours it).
    SameLabel,
    /// Voxels whose intensity in `image` is within `tolerance` of the seed's.
    Intensity {
        /// The EM image, same shape as the labels.
        image: &'a Volume<I>,
        /// Largest difference from the seed's intensity.
        tolerance: f64,
    },
}

/// Why a fill could not run.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FillError {
    /// The seed lies outside the volume.
    #[error("the fill seed ({z}, {y}, {x}) lies outside the volume")]
    SeedOutside {
        /// Slice.
        z: usize,
        /// Row.
        y: usize,
        /// Column.
        x: usize,
    },
    /// The image does not match the labels.
    #[error("the image is {image} but the labels are {labels}")]
    ShapeMismatch {
        /// Image shape.
        image: String,
        /// Label shape.
        labels: String,
    },
    /// The seed's ID is locked.
    #[error("segment {0} is locked")]
    Locked(String),
}

/// Fills with `value` from the seed `(z, y, x)` through face-connected voxels (4-connected in
/// one slice when `three_d` is false, 6-connected otherwise) that `bound` admits and that are
/// not locked.
pub fn flood_fill<T: Voxel + std::hash::Hash + Eq, I: Voxel>(
    volume: &mut Volume<T>,
    seed: (usize, usize, usize),
    three_d: bool,
    bound: FillBound<'_, I>,
    value: T,
    locked: &Locked<T>,
) -> Result<Edit<T>, FillError> {
    let s = volume.shape();
    let (z, y, x) = seed;
    if z >= s.z || y >= s.y || x >= s.x {
        return Err(FillError::SeedOutside { z, y, x });
    }
    if let FillBound::Intensity { image, .. } = bound {
        if image.shape() != s {
            return Err(FillError::ShapeMismatch {
                image: image.shape().to_string(),
                labels: s.to_string(),
            });
        }
    }
    let seed_label = volume.get(z, y, x, 0);
    if locked.contains(&seed_label) {
        return Err(FillError::Locked(format!("{seed_label:?}")));
    }
    let admits = |vol: &Volume<T>, zz: usize, yy: usize, xx: usize| -> bool {
        let label = vol.get(zz, yy, xx, 0);
        !locked.contains(&label)
            && match bound {
                FillBound::SameLabel => label == seed_label,
                FillBound::Intensity { image, tolerance } => {
                    let channels = image.channels();
                    let at = |c| image.get(zz, yy, xx, c).to_f64();
                    let seed_at = |c| image.get(z, y, x, c).to_f64();
                    (0..channels).all(|c| (at(c) - seed_at(c)).abs() <= tolerance)
                }
            }
    };
    let mut recorder = EditRecorder::new(format!(
        "fill {}{value:?}",
        if three_d { "3D " } else { "" }
    ));
    let (zlo, zhi) = if three_d { (0, s.z) } else { (z, z + 1) };
    let index = |zz: usize, yy: usize, xx: usize| ((zz - zlo) * s.y + yy) * s.x + xx;
    let mut seen = vec![false; (zhi - zlo) * s.y * s.x];
    let mut queue = VecDeque::from([(z, y, x)]);
    seen[index(z, y, x)] = true;
    while let Some((cz, cy, cx)) = queue.pop_front() {
        if !admits(volume, cz, cy, cx) {
            continue;
        }
        let neighbours = [
            (cy > 0).then(|| (cz, cy.wrapping_sub(1), cx)),
            (cy + 1 < s.y).then_some((cz, cy + 1, cx)),
            (cx > 0).then(|| (cz, cy, cx.wrapping_sub(1))),
            (cx + 1 < s.x).then_some((cz, cy, cx + 1)),
            (cz > zlo).then(|| (cz.wrapping_sub(1), cy, cx)),
            (cz + 1 < zhi).then_some((cz + 1, cy, cx)),
        ];
        for (nz, ny, nx) in neighbours.into_iter().flatten() {
            let i = index(nz, ny, nx);
            if !seen[i] {
                seen[i] = true;
                queue.push_back((nz, ny, nx));
            }
        }
        // Set after the neighbours are queued: `admits` reads the old labels of those.
        recorder.set(volume, cz, cy, cx, value);
    }
    Ok(recorder.finish())
}

/// Merges segments: every voxel whose ID is in `from` becomes `into`, in every slice. Locked
/// IDs in `from` are left alone.
pub fn merge<T: Voxel + std::hash::Hash + Eq>(
    volume: &mut Volume<T>,
    from: &[T],
    into: T,
    locked: &Locked<T>,
) -> Edit<T> {
    // A user merges a handful of IDs at a time: a linear scan of a short list beats hashing.
    let mut ids: Vec<T> = from
        .iter()
        .copied()
        .filter(|id| *id != into && !locked.contains(id))
        .collect();
    ids.dedup();
    let mut recorder = EditRecorder::new(format!("merge {from:?} into {into:?}"));
    if !ids.is_empty() {
        recorder.relabel_where(volume, |v| ids.contains(&v), into);
    }
    recorder.finish()
}

/// Deletes a segment: its voxels become 0 (background). Nothing happens to a locked ID.
pub fn delete_segment<T: Voxel + std::hash::Hash + Eq>(
    volume: &mut Volume<T>,
    id: T,
    locked: &Locked<T>,
) -> Edit<T> {
    let mut recorder = EditRecorder::new(format!("delete {id:?}"));
    if !locked.contains(&id) && id != T::default() {
        recorder.relabel_where(volume, |v| v == id, T::default());
    }
    recorder.finish()
}

/// Paints `value` into every voxel of `mask` (a box whose first voxel is `origin`,
/// `[z, y, x]`; the part outside the volume is clipped) whose ID is not locked; the edit is
/// called `label`.
pub fn paint_mask<T: Voxel + std::hash::Hash + Eq>(
    volume: &mut Volume<T>,
    origin: [usize; 3],
    mask: ndarray::ArrayView3<'_, bool>,
    value: T,
    locked: &Locked<T>,
    label: String,
) -> Edit<T> {
    let mut recorder = EditRecorder::new(label);
    let s = volume.shape();
    for ((dz, dy, dx), &inside) in mask.indexed_iter() {
        let (z, y, x) = (origin[0] + dz, origin[1] + dy, origin[2] + dx);
        if inside && z < s.z && y < s.y && x < s.x && !locked.contains(&volume.get(z, y, x, 0)) {
            recorder.set(volume, z, y, x, value);
        }
    }
    recorder.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::Journal;
    use crate::volume::Shape;

    fn labels() -> Volume<u16> {
        // Three slices of 12×12: ID 1 on the left half, 2 on the right, a background hole.
        let mut v = Volume::<u16>::with_chunk_shape(Shape::new(3, 12, 12), 1, Shape::new(1, 8, 8))
            .expect("volume");
        for z in 0..3 {
            for y in 0..12 {
                for x in 0..12 {
                    let id = if (4..7).contains(&y) && (2..4).contains(&x) {
                        0
                    } else if x < 6 {
                        1
                    } else {
                        2
                    };
                    v.set(z, y, x, 0, id);
                }
            }
        }
        v
    }

    fn count(v: &Volume<u16>, id: u16) -> usize {
        v.to_array()
            .expect("array")
            .iter()
            .filter(|&&l| l == id)
            .count()
    }

    #[test]
    fn a_stroke_paints_a_band_of_its_width_and_respects_locks() {
        let mut v = labels();
        let none = Locked::new();
        let edit = brush_stroke(&mut v, 1, &[(6.0, 0.5), (6.0, 11.5)], 1.5, 9, &none);
        // Radius 1.5 around row 6.0: pixel centres 4.5..7.5 minus the disc ends → rows 5 and 6
        // everywhere, plus rows 4 and 7 where the discs cover them.
        for x in 0..12 {
            assert_eq!(v.get(1, 5, x, 0), 9, "x {x}");
            assert_eq!(v.get(1, 6, x, 0), 9, "x {x}");
            assert_ne!(v.get(1, 2, x, 0), 9);
        }
        assert_eq!(count(&v, 9), edit.voxels());
        assert!(
            v.get(0, 5, 5, 0) != 9 && v.get(2, 5, 5, 0) != 9,
            "one slice only"
        );
        // Erase with 0, but ID 2 is locked: only the left half is erased.
        let locked: Locked<u16> = [2].into();
        let mut v = labels();
        brush_stroke(&mut v, 0, &[(0.5, 0.5), (0.5, 11.5)], 1.0, 0, &locked);
        assert_eq!(v.get(0, 0, 1, 0), 0);
        assert_eq!(v.get(0, 0, 10, 0), 2);
        // Outside the slice and on a missing slice: nothing.
        assert!(brush_stroke(&mut v, 0, &[(-20.0, -20.0)], 2.0, 9, &none).is_empty());
        // Pressure: the band widens from radius 1 to radius 4 along the stroke.
        let mut w = Volume::<u16>::new(Shape::new(1, 12, 40), 1).expect("volume");
        brush_stroke_varying(&mut w, 0, &[(6.0, 2.0), (6.0, 38.0)], &[1.0, 4.0], 5, &none);
        let column = |x: usize| (0..12).filter(|&y| w.get(0, y, x, 0) == 5).count();
        assert!(
            column(3) <= 2 && column(36) >= 7,
            "{} then {}",
            column(3),
            column(36)
        );
        assert!(brush_stroke(&mut v, 7, &[(5.0, 5.0)], 2.0, 9, &none).is_empty());
    }

    #[test]
    fn fills_stay_inside_their_label_or_tolerance_and_undo() {
        let none = Locked::new();
        let mut v = labels();
        // 2D fill of the hole on slice 1: 3 × 2 voxels.
        let edit = flood_fill::<u16, u8>(&mut v, (1, 5, 2), false, FillBound::SameLabel, 5, &none)
            .expect("fill");
        assert_eq!(edit.voxels(), 6);
        assert_eq!(v.get(0, 5, 2, 0), 0, "other slices untouched");
        // 3D fill of ID 2 everywhere.
        let edit = flood_fill::<u16, u8>(&mut v, (0, 0, 11), true, FillBound::SameLabel, 7, &none)
            .expect("fill");
        assert_eq!(edit.voxels(), 3 * 12 * 6);
        let mut journal = Journal::new(1 << 20);
        journal.record(edit);
        journal.undo(&mut v).expect("undo");
        assert_eq!(count(&v, 2), 3 * 12 * 6);

        // Intensity-bounded: a bright square in the image.
        let mut image = Volume::<u8>::new(Shape::new(3, 12, 12), 1).expect("image");
        for y in 2..5 {
            for x in 7..10 {
                image.set(0, y, x, 0, 200);
            }
        }
        let bound = FillBound::Intensity {
            image: &image,
            tolerance: 20.0,
        };
        let edit = flood_fill(&mut v, (0, 3, 8), false, bound, 4, &none).expect("fill");
        assert_eq!(edit.voxels(), 9);

        // Bad seeds and shapes are refused with a message.
        let err = flood_fill::<u16, u8>(&mut v, (3, 0, 0), true, FillBound::SameLabel, 1, &none)
            .expect_err("outside");
        assert!(err.to_string().contains("outside"), "{err}");
        let small = Volume::<u8>::new(Shape::new(1, 4, 4), 1).expect("small");
        let err = flood_fill(
            &mut v,
            (0, 0, 0),
            false,
            FillBound::Intensity {
                image: &small,
                tolerance: 1.0,
            },
            1,
            &none,
        )
        .expect_err("shape");
        assert!(matches!(err, FillError::ShapeMismatch { .. }));
        let locked: Locked<u16> = [1].into();
        assert_eq!(
            flood_fill::<u16, u8>(&mut v, (0, 0, 0), false, FillBound::SameLabel, 3, &locked)
                .expect_err("locked"),
            FillError::Locked("1".into())
        );
    }

    #[test]
    fn merge_and_delete_skip_locked_ids() {
        let mut v = labels();
        let locked: Locked<u16> = [2].into();
        assert!(merge(&mut v, &[2], 1, &locked).is_empty());
        let edit = merge(&mut v, &[0, 2], 1, &Locked::new());
        assert_eq!(edit.voxels(), 3 * (12 * 6 + 6));
        assert_eq!(count(&v, 1), 3 * 144);
        assert!(delete_segment(&mut v, 1, &[1].into()).is_empty());
        assert_eq!(delete_segment(&mut v, 1, &Locked::new()).voxels(), 3 * 144);
    }

    #[test]
    fn a_mask_is_painted_as_one_undoable_edit_around_locked_ids() {
        let mut v = labels();
        let before = v.clone();
        let mut mask = ndarray::Array3::from_elem((2, 4, 8), false);
        mask.slice_mut(ndarray::s![.., 1..3, ..]).fill(true);
        // Box from (1, 2, 2): x 2..10 crosses IDs 1 (x < 6) and 2; ID 2 is locked.
        let locked: Locked<u16> = [2].into_iter().collect();
        let edit = paint_mask(
            &mut v,
            [1, 2, 2],
            mask.view(),
            9,
            &locked,
            "FFN fill 9".into(),
        );
        assert_eq!(edit.label, "FFN fill 9");
        // Rows 3..5, x 2..6, slices 1..3; (4, 2..4) was background (the hole) and is painted.
        assert_eq!(edit.voxels(), 2 * 2 * 4);
        assert_eq!(v.get(1, 3, 2, 0), 9);
        assert_eq!(v.get(2, 4, 5, 0), 9);
        assert_eq!(v.get(1, 3, 6, 0), 2, "a locked ID keeps its voxels");
        assert_eq!(v.get(0, 3, 2, 0), 1, "outside the box");
        // Past the volume's end: clipped, not a panic.
        let big = ndarray::Array3::from_elem((4, 20, 20), true);
        let clipped = paint_mask(
            &mut v,
            [2, 10, 10],
            big.view(),
            3,
            &Locked::new(),
            "x".into(),
        );
        assert_eq!(clipped.voxels(), 2 * 2);
        let mut journal = Journal::new(1 << 20);
        journal.record(edit);
        journal.record(clipped);
        journal.undo(&mut v).expect("undo");
        journal.undo(&mut v).expect("undo");
        assert_eq!(v, before);
    }
}
