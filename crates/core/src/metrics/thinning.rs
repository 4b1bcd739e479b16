//! 2D binary thinning (Guo & Hall 1989, "Parallel thinning with two-subiteration algorithms",
//! Comm. ACM 32(3), algorithm A1), used by the ISBI protocol to thin boundaries to 8-connected,
//! one-pixel-wide curves without changing topology.
//!
//! The deletion rules are derived from the paper's conditions G1–G3 (tables built at compile
//! time, not copied); pixels outside the image count as background, or (for the ISBI protocol)
//! as a fixed object frame. Each sub-iteration decides
//! all deletions on the image as it was before the sub-iteration (parallel thinning); the loop
//! ends when a full iteration deletes nothing. Only pixels whose 8-neighbourhood changed are
//! re-examined, so the cost grows with the removed area, not with iterations × image size.
//! Output matches `skimage.morphology.thin` exactly, and the framed variant matches skimage's
//! tables and loop run on a padded image with a protected frame (golden tests in
//! `tests/golden_metrics.rs`).

use ndarray::{Array2, ArrayView2};

/// Neighbour bit order (x1..x8 of the paper): E, NE, N, NW, W, SW, S, SE → bits 0..7.
const fn bit(n: usize, k: usize) -> bool {
    (n >> (k % 8)) & 1 == 1
}

/// Whether the centre pixel with neighbourhood code `n` is deleted in the first (`first`) or
/// second sub-iteration.
const fn removable(n: usize, first: bool) -> bool {
    // G1: exactly one 4-neighbour gap that is followed by an object pixel.
    let mut xh = 0;
    let mut i = 0;
    while i < 8 {
        if !bit(n, i) && (bit(n, i + 1) || bit(n, i + 2)) {
            xh += 1;
        }
        i += 2;
    }
    // G2: 2 ≤ min(n1, n2) ≤ 3.
    let mut n1 = 0;
    let mut n2 = 0;
    let mut k = 1;
    while k < 8 {
        if bit(n, k) || bit(n, k - 1) {
            n1 += 1;
        }
        if bit(n, k) || bit(n, k + 1) {
            n2 += 1;
        }
        k += 2;
    }
    let m = if n1 < n2 { n1 } else { n2 };
    // G3 (first sub-iteration) / G3' (second).
    let g3 = if first {
        !((bit(n, 1) || bit(n, 2) || !bit(n, 7)) && bit(n, 0))
    } else {
        !((bit(n, 5) || bit(n, 6) || !bit(n, 3)) && bit(n, 4))
    };
    xh == 1 && m >= 2 && m <= 3 && g3
}

const fn table(first: bool) -> [bool; 256] {
    let mut t = [false; 256];
    let mut n = 0;
    while n < 256 {
        t[n] = removable(n, first);
        n += 1;
    }
    t
}

const FIRST: [bool; 256] = table(true);
const FRAME: u8 = 4;
const SECOND: [bool; 256] = table(false);

/// Scratch buffers for repeated thinning of same-sized images.
#[derive(Default)]
pub(crate) struct Thinner {
    img: Vec<u8>,
    dirty: [Vec<u32>; 2],
    flag: Vec<u8>,
    delete: Vec<u32>,
}

impl Thinner {
    /// Thins `mask` (true = object) in place. With `object_frame`, the pixels just outside the
    /// image count as object pixels that are never deleted (so curves that reach the image edge
    /// keep reaching it); otherwise they are background, as in `skimage.morphology.thin`.
    pub(crate) fn thin(
        &mut self,
        mask: &mut [bool],
        height: usize,
        width: usize,
        object_frame: bool,
    ) {
        if height == 0 || width == 0 {
            return;
        }
        let pw = width + 2;
        let len = (height + 2) * pw;
        self.img.clear();
        self.img.resize(len, u8::from(object_frame));
        self.flag.clear();
        // Bit 2 marks frame pixels: never queued, never deleted.
        self.flag.resize(len, FRAME);
        for y in 0..height {
            self.flag[(y + 1) * pw + 1..(y + 1) * pw + 1 + width].fill(0);
        }
        for y in 0..height {
            let src = &mask[y * width..(y + 1) * width];
            let dst = &mut self.img[(y + 1) * pw + 1..(y + 1) * pw + 1 + width];
            for (d, &s) in dst.iter_mut().zip(src) {
                *d = u8::from(s);
            }
        }
        let offsets: [isize; 8] = [
            1,
            1 - pw as isize,
            -(pw as isize),
            -(pw as isize) - 1,
            -1,
            pw as isize - 1,
            pw as isize,
            pw as isize + 1,
        ];
        let img = &mut self.img;
        let flag = &mut self.flag;
        for d in &mut self.dirty {
            d.clear();
        }
        // Only pixels with a background 4-neighbour can satisfy G1.
        for p in pw..len - pw {
            if flag[p] & FRAME == 0
                && img[p] == 1
                && (img[p - 1] == 0 || img[p + 1] == 0 || img[p - pw] == 0 || img[p + pw] == 0)
            {
                flag[p] = 3;
                self.dirty[0].push(p as u32);
                self.dirty[1].push(p as u32);
            }
        }
        loop {
            let mut deleted_any = false;
            for (pass, lut) in [(0usize, &FIRST), (1, &SECOND)] {
                let bit = 1u8 << pass;
                let list = std::mem::take(&mut self.dirty[pass]);
                self.delete.clear();
                for &p in &list {
                    let p = p as usize;
                    flag[p] &= !bit;
                    if img[p] == 0 {
                        continue;
                    }
                    let mut code = 0usize;
                    for (b, &o) in offsets.iter().enumerate() {
                        code |= usize::from(img[(p as isize + o) as usize]) << b;
                    }
                    if lut[code] {
                        self.delete.push(p as u32);
                    }
                }
                self.dirty[pass] = list;
                self.dirty[pass].clear();
                for &p in &self.delete {
                    img[p as usize] = 0;
                }
                deleted_any |= !self.delete.is_empty();
                for &p in &self.delete {
                    for &o in &offsets {
                        let q = (p as isize + o) as usize;
                        if img[q] == 1 && flag[q] & FRAME == 0 {
                            for (k, d) in self.dirty.iter_mut().enumerate() {
                                if flag[q] & (1 << k) == 0 {
                                    flag[q] |= 1 << k;
                                    d.push(q as u32);
                                }
                            }
                        }
                    }
                }
            }
            if !deleted_any {
                break;
            }
        }
        for y in 0..height {
            let src = &img[(y + 1) * pw + 1..(y + 1) * pw + 1 + width];
            for (d, &s) in mask[y * width..(y + 1) * width].iter_mut().zip(src) {
                *d = s == 1;
            }
        }
    }
}

/// Thins a binary image (true = object) to one-pixel-wide 8-connected curves, preserving
/// topology. With `object_frame == false` pixels outside the image are background and the
/// result equals `skimage.morphology.thin(mask)`; with `true` they are object pixels that are
/// never deleted, so a curve that touches the image edge still touches it afterwards (what the
/// ISBI protocol uses for boundaries).
pub fn thin_2d(mask: ArrayView2<'_, bool>, object_frame: bool) -> Array2<bool> {
    let (h, w) = mask.dim();
    let mut data: Vec<bool> = mask.iter().copied().collect();
    Thinner::default().thin(&mut data, h, w, object_frame);
    Array2::from_shape_vec((h, w), data).expect("h × w elements were copied from an h × w view")
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn bar_thins_to_a_line() {
        let mut m = Array2::from_elem((5, 9), false);
        for y in 1..4 {
            for x in 1..8 {
                m[[y, x]] = true;
            }
        }
        let t = thin_2d(m.view(), false);
        // Every column of the bar keeps exactly one pixel in the middle row or fewer, and the
        // result is non-empty and inside the original.
        assert!(t.iter().any(|&v| v));
        assert!(t.iter().zip(m.iter()).all(|(&a, &b)| !a || b));
        assert!((0..9).all(|x| (0..5).filter(|&y| t[[y, x]]).count() <= 1));
    }

    #[test]
    fn degenerate_shapes() {
        assert_eq!(
            thin_2d(Array2::from_elem((0, 3), true).view(), false).dim(),
            (0, 3)
        );
        let one = thin_2d(Array2::from_elem((1, 1), true).view(), false);
        assert!(one[[0, 0]]);
        let full = thin_2d(Array2::from_elem((4, 4), true).view(), false);
        assert!(full.iter().filter(|&&v| v).count() >= 1);
        // Attached to a fixed frame, a full image has no deletable pixel.
        let framed = thin_2d(Array2::from_elem((4, 4), true).view(), true);
        assert!(framed.iter().all(|&v| v));
    }
}
