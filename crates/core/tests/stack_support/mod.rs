//! Helpers shared by the `stack_*` integration tests.
#![allow(dead_code)]

use emstudio_core::stack::{BitDepth, ExportFormat, ExportOptions};
use emstudio_core::volume::Voxel;
use emstudio_core::{AnyVolume, Volume};

/// A volume whose values are `f(z, i)` for flat index `i` within slice `z`.
pub fn volume<T: Voxel>(
    z: usize,
    y: usize,
    x: usize,
    c: usize,
    f: impl Fn(usize, usize) -> T,
) -> Volume<T> {
    let slices: Vec<Vec<T>> = (0..z)
        .map(|k| (0..y * x * c).map(|i| f(k, i)).collect())
        .collect();
    Volume::from_slices(y, x, c, &slices).expect("test volume")
}

/// Deterministic pseudo-random numbers (xorshift), so images do not compress away.
pub fn noise(seed: u64, n: usize) -> Vec<u64> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        })
        .collect()
}

/// Export options.
pub fn options(format: ExportFormat, depth: BitDepth, rescale: bool) -> ExportOptions {
    ExportOptions {
        format,
        depth,
        rescale,
        base_name: "t".to_string(),
    }
}

/// Whether two volumes hold the same type, shape, channels and bit patterns (NaN-safe).
pub fn assert_same(a: &AnyVolume, b: &AnyVolume) {
    assert_eq!(a.dtype(), b.dtype(), "dtype");
    assert_eq!(a.shape(), b.shape(), "shape");
    assert_eq!(a.channels(), b.channels(), "channels");
    for z in 0..a.shape().z {
        match (a, b) {
            (AnyVolume::F32(x), AnyVolume::F32(y)) => {
                let xb: Vec<u32> = x.slice(z).iter().map(|v| v.to_bits()).collect();
                let yb: Vec<u32> = y.slice(z).iter().map(|v| v.to_bits()).collect();
                assert_eq!(xb, yb, "slice {z} bits");
            }
            _ => assert_eq!(a.slice_f64(z), b.slice_f64(z), "slice {z}"),
        }
    }
}

/// CRC-32 (IEEE, as used by PNG), bitwise.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

/// A PNG chunk with length and CRC.
pub fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc_input = kind.to_vec();
    crc_input.extend_from_slice(data);
    out.extend_from_slice(&crc32(&crc_input).to_be_bytes());
    out
}

/// A PNG made of just a signature, an IHDR claiming `width × height` (8-bit gray) and IEND.
pub fn png_header_only(width: u32, height: u32) -> Vec<u8> {
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]); // depth 8, gray, deflate, filter 0, no interlace
    let mut out = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
    out.extend(png_chunk(b"IHDR", &ihdr));
    out.extend(png_chunk(b"IEND", &[]));
    out
}

/// A little-endian TIFF whose single IFD claims `width × height` 8-bit gray pixels in one
/// (absent) strip.
pub fn tiff_header_only(width: u32, height: u32) -> Vec<u8> {
    // (tag, type, value); type 3 = SHORT, 4 = LONG
    let entries: [(u16, u16, u32); 9] = [
        (256, 4, width),
        (257, 4, height),
        (258, 3, 8),
        (259, 3, 1),
        (262, 3, 1),
        (273, 4, 0),
        (277, 3, 1),
        (278, 4, height),
        (279, 4, width.wrapping_mul(height)),
    ];
    let mut out = b"II*\0".to_vec();
    out.extend_from_slice(&8u32.to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    for (tag, typ, value) in entries {
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&typ.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
        if typ == 3 {
            out.extend_from_slice(&(value as u16).to_le_bytes());
            out.extend_from_slice(&[0, 0]);
        } else {
            out.extend_from_slice(&value.to_le_bytes());
        }
    }
    out.extend_from_slice(&0u32.to_le_bytes());
    out
}

/// Encodes raw samples with the png crate directly (for inputs `export` never writes).
pub fn raw_png(
    width: u32,
    height: u32,
    color: png::ColorType,
    depth: png::BitDepth,
    data: &[u8],
    palette: Option<&[u8]>,
    trns: Option<&[u8]>,
) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut info = png::Info::with_size(width, height);
        info.color_type = color;
        info.bit_depth = depth;
        let mut enc = png::Encoder::with_info(&mut out, info).expect("encoder");
        if let Some(p) = palette {
            enc.set_palette(p.to_vec());
        }
        if let Some(t) = trns {
            enc.set_trns(t.to_vec());
        }
        let mut w = enc.write_header().expect("header");
        w.write_image_data(data).expect("data");
        w.finish().expect("finish");
    }
    out
}
