//! Turning slices into RGBA pixels for display: gray/RGB windowing and label overlays.
//!
//! Label colours are a pure function of the ID ([`label_color`]), so an object keeps its colour
//! across slices, sessions and machines. ID 0 (background) is transparent.
//!
//! ```
//! use emstudio_core::render::{label_color, render_labels};
//! assert_eq!(label_color(7), label_color(7));
//! assert_ne!(label_color(7), label_color(8));
//! let rgba = render_labels(&[0, 7], 2, 1, false);
//! assert_eq!(rgba[3], 0);   // background transparent
//! assert_eq!(rgba[7], 255); // object opaque (opacity is applied when compositing)
//! ```

use crate::volume::Voxel;

/// A 32-bit integer hash (the "lowbias32" finalizer) that spreads consecutive IDs apart.
fn hash32(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^= x >> 16;
    x
}

/// The display colour of label `id` (stable, saturated, never near-black).
pub fn label_color(id: u32) -> [u8; 3] {
    if id == 0 {
        return [0, 0, 0];
    }
    let h = hash32(id);
    let hue = (h & 0xffff) as f32 / 65536.0;
    let sat = 0.55 + 0.45 * ((h >> 16) & 0xff) as f32 / 255.0;
    let val = 0.75 + 0.25 * ((h >> 24) & 0xff) as f32 / 255.0;
    hsv_to_rgb(hue, sat, val)
}

fn hsv_to_rgb(h: f32, s: f32, v: f32) -> [u8; 3] {
    let i = (h * 6.0).floor();
    let f = h * 6.0 - i;
    let (p, q, t) = (v * (1.0 - s), v * (1.0 - f * s), v * (1.0 - (1.0 - f) * s));
    let (r, g, b) = match (i as i32).rem_euclid(6) {
        0 => (v, t, p),
        1 => (q, v, p),
        2 => (p, v, t),
        3 => (p, q, v),
        4 => (t, p, v),
        _ => (v, p, q),
    };
    [(r * 255.0) as u8, (g * 255.0) as u8, (b * 255.0) as u8]
}

/// Maps `values` (`width * height * channels`, channels 1 or 3) to RGBA, stretching
/// `[lo, hi]` to `[0, 255]`.
pub fn render_intensity<T: Voxel>(values: &[T], channels: usize, lo: f64, hi: f64) -> Vec<u8> {
    let n = values.len() / channels.max(1);
    let mut out = vec![255u8; n * 4];
    let scale = if hi > lo { 255.0 / (hi - lo) } else { 0.0 };
    let map_f64 = |v: f64| ((v - lo) * scale).clamp(0.0, 255.0) as u8;
    // u8/u16: one table lookup per value instead of float arithmetic per pixel.
    let table: Option<Vec<u8>> = values.first().and_then(|v| v.table_index()).map(|_| {
        let size = if T::DTYPE == crate::volume::DType::U8 {
            256
        } else {
            65536
        };
        (0..size).map(|i| map_f64(i as f64)).collect()
    });
    let map = |v: T| match (&table, v.table_index()) {
        (Some(t), Some(i)) => t[i],
        _ => map_f64(v.to_f64()),
    };
    if channels >= 3 {
        for (px, v) in out.chunks_exact_mut(4).zip(values.chunks_exact(channels)) {
            px[0] = map(v[0]);
            px[1] = map(v[1]);
            px[2] = map(v[2]);
        }
    } else {
        for (px, &v) in out.chunks_exact_mut(4).zip(values) {
            let g = map(v);
            px[0] = g;
            px[1] = g;
            px[2] = g;
        }
    }
    out
}

/// Label IDs to RGBA: each ID in its [`label_color`], background transparent. With `outline`,
/// only pixels on a 4-neighbour boundary between different IDs are drawn.
pub fn render_labels(ids: &[u32], width: usize, height: usize, outline: bool) -> Vec<u8> {
    render_ids(ids, width, height, outline, label_color)
}

/// Rings the selected segments of a rendered label slice: their boundary pixels (4-neighbour
/// with a different ID) become opaque white in `rgba` (from [`render_labels`]).
pub fn highlight_labels(
    rgba: &mut [u8],
    ids: &[u32],
    width: usize,
    height: usize,
    selected: &[u32],
) {
    if selected.is_empty() {
        return;
    }
    for y in 0..height {
        for x in 0..width {
            let i = y * width + x;
            let id = ids[i];
            if id == 0 || !selected.contains(&id) {
                continue;
            }
            let differs = |j: usize| ids[j] != id;
            let edge = x == 0
                || y == 0
                || x + 1 == width
                || y + 1 == height
                || differs(i - 1)
                || differs(i + 1)
                || differs(i - width)
                || differs(i + width);
            if edge {
                rgba[i * 4..i * 4 + 4].copy_from_slice(&[255, 255, 255, 255]);
            }
        }
    }
}

/// The colour of a pending proposal (an FFN fill not yet accepted): a bright yellow no
/// label colour is meant to be confused with.
pub const PROPOSAL_COLOR: [u8; 3] = [255, 221, 0];

/// Draws a pending proposal over a rendered label slice: `inside` (one flag per pixel, row
/// major) becomes a translucent [`PROPOSAL_COLOR`] blended over what is there, and its border
/// (4-neighbour) opaque, so the user sees the proposal's shape and the labels under it.
pub fn overlay_proposal(rgba: &mut [u8], inside: &[bool], width: usize, height: usize) {
    let [r, g, b] = PROPOSAL_COLOR;
    for y in 0..height {
        for x in 0..width {
            let i = y * width + x;
            if !inside[i] {
                continue;
            }
            let outside = |j: usize| !inside[j];
            let edge = x == 0
                || y == 0
                || x + 1 == width
                || y + 1 == height
                || outside(i - 1)
                || outside(i + 1)
                || outside(i - width)
                || outside(i + width);
            let px = &mut rgba[i * 4..i * 4 + 4];
            if edge {
                px.copy_from_slice(&[r, g, b, 255]);
            } else {
                // 55 % proposal over the label colour (or over nothing).
                let blend = |under: u8, over: u8| {
                    ((u16::from(under) * 45 + u16::from(over) * 55) / 100) as u8
                };
                let under_alpha = px[3];
                px[0] = if under_alpha == 0 { r } else { blend(px[0], r) };
                px[1] = if under_alpha == 0 { g } else { blend(px[1], g) };
                px[2] = if under_alpha == 0 { b } else { blend(px[2], b) };
                px[3] = px[3].max(150);
            }
        }
    }
}

/// Colour of an error-map value: 1 merge (red), 2 split (blue), 3 both (magenta).
pub fn error_color(value: u32) -> [u8; 3] {
    match value {
        1 => [235, 64, 52],
        2 => [40, 140, 255],
        _ => [225, 70, 225],
    }
}

/// Renders an evaluation error map (see [`error_color`]); 0 is transparent.
pub fn render_error_map(ids: &[u32], width: usize, height: usize, outline: bool) -> Vec<u8> {
    render_ids(ids, width, height, outline, error_color)
}

fn render_ids(
    ids: &[u32],
    width: usize,
    height: usize,
    outline: bool,
    color: fn(u32) -> [u8; 3],
) -> Vec<u8> {
    assert_eq!(ids.len(), width * height);
    let mut out = vec![0u8; ids.len() * 4];
    let mut last = (0u32, [0u8; 3]);
    for y in 0..height {
        for x in 0..width {
            let i = y * width + x;
            let id = ids[i];
            if id == 0 {
                continue;
            }
            if outline {
                let differs = |j: usize| ids[j] != id;
                let edge = (x > 0 && differs(i - 1))
                    || (x + 1 < width && differs(i + 1))
                    || (y > 0 && differs(i - width))
                    || (y + 1 < height && differs(i + width));
                if !edge {
                    continue;
                }
            }
            if last.0 != id {
                last = (id, color(id));
            }
            out[i * 4..i * 4 + 3].copy_from_slice(&last.1);
            out[i * 4 + 3] = 255;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbouring_ids_get_distinct_colours() {
        for id in 1..2000u32 {
            let (a, b) = (label_color(id), label_color(id + 1));
            let dist: i32 = a
                .iter()
                .zip(b.iter())
                .map(|(p, q)| (*p as i32 - *q as i32).abs())
                .sum();
            assert!(dist > 0, "ids {id} and {} share a colour", id + 1);
            assert!(
                a.iter().map(|&c| c as u32).sum::<u32>() > 120,
                "id {id} too dark"
            );
        }
    }

    #[test]
    fn highlight_rings_only_the_selected_segment() {
        let mut ids = vec![0u32; 36];
        for y in 1..5 {
            for x in 1..5 {
                ids[y * 6 + x] = if x < 3 { 5 } else { 6 };
            }
        }
        let mut rgba = render_labels(&ids, 6, 6, false);
        let plain = rgba.clone();
        highlight_labels(&mut rgba, &ids, 6, 6, &[5]);
        let px =
            |rgba: &[u8], x: usize, y: usize| rgba[(y * 6 + x) * 4..(y * 6 + x) * 4 + 4].to_vec();
        assert_eq!(px(&rgba, 1, 1), vec![255, 255, 255, 255], "edge of 5");
        assert_eq!(px(&rgba, 2, 2), vec![255, 255, 255, 255], "5 next to 6");
        assert_eq!(px(&rgba, 4, 2), px(&plain, 4, 2), "6 is not selected");
        assert_eq!(px(&rgba, 0, 0), vec![0, 0, 0, 0]);
    }

    #[test]
    fn outline_keeps_only_boundaries() {
        // 4x4 block of id 5 in a 6x6 field: interior 2x2 must be transparent.
        let mut ids = vec![0u32; 36];
        for y in 1..5 {
            for x in 1..5 {
                ids[y * 6 + x] = 5;
            }
        }
        let rgba = render_labels(&ids, 6, 6, true);
        let alpha = |x: usize, y: usize| rgba[(y * 6 + x) * 4 + 3];
        assert_eq!(alpha(1, 1), 255);
        assert_eq!(alpha(2, 2), 0);
        assert_eq!(alpha(0, 0), 0);
        let filled = render_labels(&ids, 6, 6, false);
        assert_eq!(filled[(2 * 6 + 2) * 4 + 3], 255);
    }

    #[test]
    fn table_and_float_paths_agree() {
        let bytes: Vec<u8> = (0..=255).collect();
        let words: Vec<u16> = (0..=255).map(|v| v * 257).collect();
        let floats: Vec<f32> = (0..=255).map(|v| v as f32).collect();
        let a = render_intensity(&bytes, 1, 10.0, 200.0);
        assert_eq!(a, render_intensity(&floats, 1, 10.0, 200.0));
        assert_eq!(a, render_intensity(&words, 1, 10.0 * 257.0, 200.0 * 257.0));
        let rgb: Vec<u8> = (0..12).collect();
        let px = render_intensity(&rgb, 3, 0.0, 11.0);
        assert_eq!(&px[4..8], &[69, 92, 115, 255]);
    }

    #[test]
    fn intensity_window_stretches() {
        let rgba = render_intensity(&[0.0f32, 500.0, 1000.0], 1, 0.0, 1000.0);
        assert_eq!(&rgba[0..4], &[0, 0, 0, 255]);
        assert_eq!(rgba[4], 127);
        assert_eq!(rgba[8], 255);
    }

    #[test]
    fn a_proposal_is_drawn_with_an_opaque_border_over_translucent_inside() {
        // A 3×3 proposal in a 5×5 slice over label 4 on the left half.
        let ids: Vec<u32> = (0..25).map(|i| if i % 5 < 2 { 4 } else { 0 }).collect();
        let mut rgba = render_labels(&ids, 5, 5, false);
        let inside: Vec<bool> = (0..25)
            .map(|i| (1..4).contains(&(i / 5)) && (1..4).contains(&(i % 5)))
            .collect();
        overlay_proposal(&mut rgba, &inside, 5, 5);
        let px = |x: usize, y: usize| rgba[(y * 5 + x) * 4..(y * 5 + x) * 4 + 4].to_vec();
        let [r, g, b] = PROPOSAL_COLOR;
        assert_eq!(px(1, 1), vec![r, g, b, 255], "border");
        assert_eq!(px(2, 2), vec![r, g, b, 150], "inside over nothing");
        assert_eq!(px(0, 0)[3], 255, "label outside the proposal untouched");
        assert_eq!(px(4, 4), vec![0, 0, 0, 0], "background outside untouched");
    }
}
