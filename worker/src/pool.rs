//! The platform-free half of the worker pool: what a helper does with a job, and how pixels
//! travel as bytes between workers.
//!
//! Pool or threads: the browser gives a stable-Rust wasm module no threads, only more workers.
//! Each helper is another instance of this crate's module (it starts as a helper when its worker
//! name is [`emstudio_protocol::pool::HELPER_NAME`]); the data worker sends it whole jobs (one
//! file to decode, one slab of slices to filter) with their data attached and transferred, and
//! assembles the results. ARCHITECTURE.md says why this beat nightly wasm threads.

use crate::compute::{filter_kept, parse_pipeline, ComputeError, Slab};
use emstudio_core::progress::Progress;
use emstudio_core::stack::{
    decode_file, detect_format, DecodedSlice, FileFormat, Limits, PixelData,
};
use emstudio_core::DType;

use emstudio_protocol::nets::{f32_bytes, plane_f32, plane_u32, u32_bytes, Plane};
use emstudio_protocol::pool::PageShape;
use ndarray::Array3;

/// "1 helper worker", "2 helper workers": how a summary names the helpers that did a job.
pub fn helpers_phrase(helpers: usize) -> String {
    match helpers {
        1 => "1 helper worker".to_string(),
        n => format!("{n} helper workers"),
    }
}

/// Decodes one file as a helper does: its format and every page.
pub fn decode_job(
    name: &str,
    bytes: &[u8],
    limits: &Limits,
) -> Result<(FileFormat, Vec<DecodedSlice>), String> {
    let format = detect_format(name, bytes).map_err(|e| e.to_string())?;
    let pages = decode_file(name, bytes, limits).map_err(|e| e.to_string())?;
    Ok((format, pages))
}

/// A page's shape, to travel beside its samples.
pub fn page_shape(page: &DecodedSlice) -> PageShape {
    PageShape {
        width: page.width,
        height: page.height,
        channels: page.channels,
        dtype: page.pixels.dtype(),
    }
}

/// A page's samples as little-endian bytes (32-bit samples as the network worker's planes).
pub fn page_bytes(pixels: &PixelData) -> Vec<u8> {
    match pixels {
        PixelData::U8(v) => v.clone(),
        PixelData::U16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        PixelData::U32(v) => u32_bytes(v),
        PixelData::F32(v) => f32_bytes(v),
    }
}

/// A page back from its shape and bytes; the byte count must match the shape exactly.
pub fn page_from_bytes(name: &str, shape: PageShape, bytes: &[u8]) -> Result<DecodedSlice, String> {
    let samples = shape
        .width
        .checked_mul(shape.height)
        .and_then(|n| n.checked_mul(shape.channels))
        .ok_or_else(|| format!("{name}: a helper sent an impossible page size"))?;
    let size = match shape.dtype {
        DType::U8 => 1,
        DType::U16 => 2,
        DType::U32 | DType::F32 => 4,
    };
    if samples.checked_mul(size) != Some(bytes.len()) {
        return Err(format!(
            "{name}: a helper sent {} bytes for a {}×{}×{} {:?} page",
            bytes.len(),
            shape.width,
            shape.height,
            shape.channels,
            shape.dtype
        ));
    }
    let pixels = match shape.dtype {
        DType::U8 => PixelData::U8(bytes.to_vec()),
        DType::U16 => PixelData::U16(
            bytes
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect(),
        ),
        DType::U32 => {
            PixelData::U32(plane_u32(name, plane(samples), bytes).map_err(|e| e.to_string())?)
        }
        DType::F32 => {
            PixelData::F32(plane_f32(name, plane(samples), bytes).map_err(|e| e.to_string())?)
        }
    };
    Ok(DecodedSlice {
        width: shape.width,
        height: shape.height,
        channels: shape.channels,
        pixels,
    })
}

/// A `depth × height × width` slab from little-endian `f32` bytes; the size must match.
pub fn slab_from_bytes(
    bytes: &[u8],
    depth: usize,
    height: usize,
    width: usize,
) -> Result<Array3<f32>, String> {
    let n = depth
        .checked_mul(height)
        .and_then(|n| n.checked_mul(width))
        .filter(|n| n.checked_mul(4) == Some(bytes.len()))
        .ok_or_else(|| {
            format!(
                "a slab of {} bytes is not {depth}×{height}×{width} f32 values",
                bytes.len()
            )
        })?;
    let values = plane_f32("slab", plane(n), bytes).map_err(|e| e.to_string())?;
    Array3::from_shape_vec((depth, height, width), values).map_err(|e| e.to_string())
}

/// `n` samples as one flat plane (the size checks of [`plane_f32`] and [`plane_u32`]).
fn plane(n: usize) -> Plane {
    Plane::single(1, n)
}

/// Filters a slab as a helper does and keeps its slices `keep_from .. keep_from + keep`
/// (the data worker reports progress per slab; `progress` only says when to stop).
pub fn filter_job(
    pipeline_json: &str,
    slab: Array3<f32>,
    keep_from: usize,
    keep: usize,
    progress: &mut dyn Progress,
) -> Result<Array3<f32>, String> {
    let pipeline = parse_pipeline(pipeline_json)?;
    let slab = Slab {
        keep: keep_from..keep_from + keep,
        first: keep_from,
        input: slab,
    };
    filter_kept(&pipeline, &slab, progress).map_err(|e| match e {
        ComputeError::Cancelled => "cancelled".to_string(),
        ComputeError::Failed(e) => e,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compute::filter_slab;
    use emstudio_core::progress::NoProgress;
    use emstudio_core::stack::{export, BitDepth, ExportFormat, ExportOptions, StackBuilder};
    use emstudio_core::{AnyVolume, Shape, Volume};

    #[test]
    fn decoded_pages_survive_the_trip_as_bytes() {
        let mut v = Volume::<u16>::new(Shape::new(3, 5, 7), 1).unwrap_or_else(|e| panic!("{e}"));
        for z in 0..3 {
            let s: Vec<u16> = (0..35).map(|i| (i * 1000 + z * 7) as u16).collect();
            v.set_slice(z, &s).unwrap_or_else(|e| panic!("{e}"));
        }
        let v = AnyVolume::U16(v);
        for format in [
            ExportFormat::PngSeries,
            ExportFormat::TiffSeries,
            ExportFormat::MultiPageTiff,
        ] {
            let options = ExportOptions {
                format,
                depth: BitDepth::Native,
                rescale: false,
                base_name: "em".into(),
            };
            let files = export(&v, &options).unwrap_or_else(|e| panic!("{e}"));
            let mut builder = StackBuilder::new(files.len(), Limits::default());
            for (name, bytes) in &files {
                let (format, pages) =
                    decode_job(name, bytes, &Limits::default()).unwrap_or_else(|e| panic!("{e}"));
                let pages = pages
                    .iter()
                    .map(|p| page_from_bytes(name, page_shape(p), &page_bytes(&p.pixels)))
                    .collect::<Result<Vec<_>, _>>()
                    .unwrap_or_else(|e| panic!("{e}"));
                builder
                    .push_decoded(name, format, pages)
                    .unwrap_or_else(|e| panic!("{e}"));
            }
            assert_eq!(
                builder.finish().unwrap_or_else(|e| panic!("{e}")),
                v,
                "{format:?}"
            );
        }
    }

    #[test]
    fn bad_bytes_name_the_file() {
        let e = decode_job("0007.png", b"\x89PNG\r\n\x1a\nshort", &Limits::default())
            .map(|_| "decoded".to_string())
            .unwrap_or_else(|e| e);
        assert!(e.contains("0007.png"), "{e}");
        let shape = PageShape {
            width: 4,
            height: 4,
            channels: 1,
            dtype: DType::U16,
        };
        let e = page_from_bytes("a.tif", shape, &[0; 31])
            .map(|_| "accepted".to_string())
            .unwrap_or_else(|e| e);
        assert!(e.contains("a.tif") && e.contains("31 bytes"), "{e}");
        assert!(slab_from_bytes(&[0; 12], 1, 2, 2).is_err());
        assert!(slab_from_bytes(&[0; 16], usize::MAX, 2, 2).is_err());
    }

    #[test]
    fn a_slab_filtered_by_a_helper_matches_the_whole_stack() {
        let slab =
            Array3::from_shape_fn((2, 9, 11), |(z, y, x)| ((z * 31 + y * 7 + x) % 13) as f32);
        let json = r#"[{"filter":"gaussian","sigma":[1,1]}]"#;
        let bytes = f32_bytes(slab.as_slice().unwrap_or_default());
        let back = slab_from_bytes(&bytes, 2, 9, 11).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, slab);
        let by_helper =
            filter_job(json, back, 0, 2, &mut NoProgress).unwrap_or_else(|e| panic!("{e}"));
        let pipeline = parse_pipeline(json).unwrap_or_else(|e| panic!("{e}"));
        let direct = filter_slab(&pipeline, slab.view(), &mut NoProgress)
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(by_helper, direct);
        let e = filter_job("{not json", slab.clone(), 0, 2, &mut NoProgress)
            .map(|_| ())
            .unwrap_err();
        assert!(!e.is_empty());
        // Slices to keep beyond the slab are refused, not read out of bounds.
        let e = filter_job(json, slab, 1, 2, &mut NoProgress).unwrap_err();
        assert!(e.contains("cannot keep"), "{e}");
    }
}
