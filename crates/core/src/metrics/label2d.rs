//! Small 2D 4-connected component labeller for the ISBI protocol (kept inside the metrics module
//! so that it does not depend on the general labelling code).
//!
//! Two raster passes with union–find (path halving); components are numbered 1, 2, … in the
//! order of their first pixel in raster order, background is 0. Output equals
//! `skimage.measure.label(mask, connectivity=1)` (golden tests in `tests/golden_metrics.rs`).

use ndarray::{Array2, ArrayView2};

/// Scratch buffers for repeated labelling.
#[derive(Default)]
pub(crate) struct Labeller {
    parent: Vec<u32>,
    remap: Vec<u32>,
}

impl Labeller {
    fn find(parent: &mut [u32], mut a: u32) -> u32 {
        while parent[a as usize] != a {
            let grand = parent[parent[a as usize] as usize];
            parent[a as usize] = grand;
            a = grand;
        }
        a
    }

    /// Labels `mask` (row-major, `height × width`) into `out`; returns the component count.
    pub(crate) fn label(&mut self, mask: &[bool], width: usize, out: &mut Vec<u32>) -> u32 {
        out.clear();
        out.resize(mask.len(), 0);
        if width == 0 {
            return 0;
        }
        self.parent.clear();
        self.parent.push(0);
        for (i, &m) in mask.iter().enumerate() {
            if !m {
                continue;
            }
            let x = i % width;
            let left = if x > 0 { out[i - 1] } else { 0 };
            let up = if i >= width { out[i - width] } else { 0 };
            out[i] = match (left, up) {
                (0, 0) => {
                    let l = self.parent.len() as u32;
                    self.parent.push(l);
                    l
                }
                (l, 0) | (0, l) => l,
                (l, u) => {
                    let a = Self::find(&mut self.parent, l);
                    let b = Self::find(&mut self.parent, u);
                    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
                    self.parent[hi as usize] = lo;
                    lo
                }
            };
        }
        self.remap.clear();
        self.remap.resize(self.parent.len(), 0);
        let mut next = 0u32;
        for v in out.iter_mut() {
            if *v == 0 {
                continue;
            }
            let root = Self::find(&mut self.parent, *v) as usize;
            if self.remap[root] == 0 {
                next += 1;
                self.remap[root] = next;
            }
            *v = self.remap[root];
        }
        next
    }
}

/// 4-connected components of a 2D mask (true = object), numbered from 1 in raster order of
/// their first pixel; returns the labels and the component count.
pub fn label_4connected(mask: ArrayView2<'_, bool>) -> (Array2<u32>, u32) {
    let (h, w) = mask.dim();
    let data: Vec<bool> = mask.iter().copied().collect();
    let mut out = Vec::new();
    let n = Labeller::default().label(&data, w, &mut out);
    let labels =
        Array2::from_shape_vec((h, w), out).expect("the labeller writes one label per pixel");
    (labels, n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn u_shape_and_diagonals() {
        let m = array![
            [true, false, true, false],
            [true, false, true, true],
            [true, true, true, false],
            [false, false, false, true],
        ];
        let (l, n) = label_4connected(m.view());
        assert_eq!(n, 2);
        assert_eq!(
            l,
            array![[1, 0, 1, 0], [1, 0, 1, 1], [1, 1, 1, 0], [0, 0, 0, 2]]
        );
        let (e, n) = label_4connected(Array2::from_elem((0, 0), true).view());
        assert_eq!((e.len(), n), (0, 0));
    }
}
