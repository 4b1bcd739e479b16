//! Pixel and voxel neighbourhoods shared by labelling, watershed and morphology.
//!
//! Names follow the usual counts: in 3D, 6 (faces), 18 (faces and edges), 26 (all); in 2D,
//! 4 (edges) and 8 (edges and corners). In scikit-image terms, `connectivity=1` is 6/4,
//! `connectivity=2` is 18/8 and `connectivity=3` is 26.

use serde::{Deserialize, Serialize};

/// 3D voxel connectivity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Connectivity3 {
    /// Face neighbours (6).
    C6,
    /// Face and edge neighbours (18).
    C18,
    /// All neighbours (26).
    C26,
}

/// 2D pixel connectivity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Connectivity2 {
    /// Edge neighbours (4).
    C4,
    /// Edge and corner neighbours (8).
    C8,
}

impl Connectivity3 {
    /// Neighbour offsets (dz, dy, dx), excluding the centre.
    pub fn offsets(self) -> Vec<(isize, isize, isize)> {
        let mut out = Vec::new();
        for dz in -1..=1isize {
            for dy in -1..=1isize {
                for dx in -1..=1isize {
                    let nonzero = (dz != 0) as u8 + (dy != 0) as u8 + (dx != 0) as u8;
                    let keep = match self {
                        Connectivity3::C6 => nonzero == 1,
                        Connectivity3::C18 => nonzero == 1 || nonzero == 2,
                        Connectivity3::C26 => nonzero >= 1,
                    };
                    if keep {
                        out.push((dz, dy, dx));
                    }
                }
            }
        }
        out
    }
}

impl Connectivity2 {
    /// Neighbour offsets (dy, dx), excluding the centre.
    pub fn offsets(self) -> Vec<(isize, isize)> {
        let mut out = Vec::new();
        for dy in -1..=1isize {
            for dx in -1..=1isize {
                let nonzero = (dy != 0) as u8 + (dx != 0) as u8;
                let keep = match self {
                    Connectivity2::C4 => nonzero == 1,
                    Connectivity2::C8 => nonzero >= 1,
                };
                if keep {
                    out.push((dy, dx));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbour_counts() {
        assert_eq!(Connectivity3::C6.offsets().len(), 6);
        assert_eq!(Connectivity3::C18.offsets().len(), 18);
        assert_eq!(Connectivity3::C26.offsets().len(), 26);
        assert_eq!(Connectivity2::C4.offsets().len(), 4);
        assert_eq!(Connectivity2::C8.offsets().len(), 8);
    }
}
