//! Converting a volume to a target bit depth and encoding it as PNG or TIFF.

use super::error::StackError;
use super::{BitDepth, ExportFormat, ExportOptions, FileFormat, PixelData};
use crate::volume::{AnyVolume, DType, Volume, Voxel};
use std::io::Cursor;
use tiff::encoder::{colortype, TiffEncoder, TiffKind, TiffKindBig, TiffKindStandard};

/// How source values become target values.
#[derive(Clone, Copy, Debug)]
enum Map {
    /// Same type, values copied.
    Copy,
    /// Values known to fit; floats are rounded to the nearest integer.
    Cast,
    /// `round((v - lo) * scale)`, saturating at the target range.
    Linear { lo: f64, scale: f64 },
}

/// The conversion of one volume, computed once per export.
#[derive(Clone, Copy, Debug)]
pub(super) struct Plan {
    target: DType,
    map: Map,
}

fn target_max(d: DType) -> Option<f64> {
    match d {
        DType::U8 => Some(f64::from(u8::MAX)),
        DType::U16 => Some(f64::from(u16::MAX)),
        DType::U32 => Some(f64::from(u32::MAX)),
        DType::F32 => None,
    }
}

/// Minimum and maximum over all values, skipping NaN and (when `finite_only`) infinities.
fn value_range(volume: &AnyVolume, finite_only: bool) -> Option<(f64, f64)> {
    fn range<T: Voxel>(v: &Volume<T>, finite_only: bool) -> Option<(f64, f64)> {
        let g = v.chunk_grid();
        let mut out: Option<(f64, f64)> = None;
        for gz in 0..g.z {
            for gy in 0..g.y {
                for gx in 0..g.x {
                    for x in v.chunk_data(gz, gy, gx).iter().map(|x| x.to_f64()) {
                        if x.is_nan() || (finite_only && x.is_infinite()) {
                            continue;
                        }
                        out = Some(match out {
                            None => (x, x),
                            Some((lo, hi)) => (lo.min(x), hi.max(x)),
                        });
                    }
                }
            }
        }
        out
    }
    match volume {
        AnyVolume::F32(v) => range(v, finite_only),
        other => Some(other.min_max_f64()),
    }
}

/// Output file name of slice `z` in a series.
pub(super) fn series_name(options: &ExportOptions, z: usize, format: FileFormat) -> String {
    format!("{}_{z:04}.{}", base_name(options), extension(format))
}

/// Output file name of a multi-page TIFF.
pub(super) fn multipage_name(options: &ExportOptions) -> String {
    format!("{}.tif", base_name(options))
}

fn base_name(options: &ExportOptions) -> &str {
    if options.base_name.is_empty() {
        "stack"
    } else {
        &options.base_name
    }
}

fn extension(format: FileFormat) -> &'static str {
    match format {
        FileFormat::Png => "png",
        FileFormat::Tiff => "tif",
    }
}

/// Works out (and validates) the conversion of `volume` for `format` and `options`.
/// `file` is the first output name, used in error messages.
pub(super) fn plan(
    volume: &AnyVolume,
    format: FileFormat,
    options: &ExportOptions,
    file: &str,
) -> Result<Plan, StackError> {
    let source = volume.dtype();
    let target = match options.depth {
        BitDepth::Native => source,
        BitDepth::U8 => DType::U8,
        BitDepth::U16 => DType::U16,
    };
    if format == FileFormat::Png && matches!(target, DType::U32 | DType::F32) {
        return Err(StackError::FormatCannotStore {
            file: file.to_string(),
            format,
            dtype: target,
        });
    }
    if !matches!(volume.channels(), 1 | 3) {
        return Err(StackError::Encode {
            file: file.to_string(),
            detail: format!(
                "{} channels per voxel; only 1 (gray) or 3 (RGB) can be written",
                volume.channels()
            ),
        });
    }
    let map = match (options.rescale, target_max(target)) {
        (true, Some(tmax)) => {
            let (lo, hi) = value_range(volume, true).unwrap_or((0.0, 0.0));
            let scale = if hi > lo { tmax / (hi - lo) } else { 0.0 };
            Map::Linear { lo, scale }
        }
        _ if source == target => Map::Copy,
        (_, Some(tmax)) => {
            if let Some((lo, hi)) = value_range(volume, false) {
                if hi.round() > tmax {
                    return Err(StackError::DoesNotFit {
                        max: hi,
                        depth: target,
                    });
                }
                if lo.round() < 0.0 {
                    return Err(StackError::DoesNotFit {
                        max: lo,
                        depth: target,
                    });
                }
            }
            Map::Cast
        }
        (_, None) => Map::Cast,
    };
    Ok(Plan { target, map })
}

/// Slice `z` converted according to `plan`.
pub(super) fn convert_slice(volume: &AnyVolume, z: usize, plan: &Plan) -> PixelData {
    fn mapped<T: Voxel, U>(v: &Volume<T>, z: usize, f: impl Fn(f64) -> U) -> Vec<U> {
        v.slice(z).into_iter().map(|x| f(x.to_f64())).collect()
    }
    if let Map::Copy = plan.map {
        match volume {
            AnyVolume::U8(v) => return PixelData::U8(v.slice(z)),
            AnyVolume::U16(v) => return PixelData::U16(v.slice(z)),
            AnyVolume::U32(v) => return PixelData::U32(v.slice(z)),
            AnyVolume::F32(v) => return PixelData::F32(v.slice(z)),
        }
    }
    let map = plan.map;
    // `as` from f64 saturates at the integer range and turns NaN into 0.
    let apply = move |x: f64| -> f64 {
        match map {
            Map::Linear { lo, scale } => ((x - lo) * scale).round(),
            Map::Cast | Map::Copy => x.round(),
        }
    };
    match plan.target {
        DType::U8 => {
            PixelData::U8(crate::with_volume!(volume, v => mapped(v, z, |x| apply(x) as u8)))
        }
        DType::U16 => {
            PixelData::U16(crate::with_volume!(volume, v => mapped(v, z, |x| apply(x) as u16)))
        }
        DType::U32 => {
            PixelData::U32(crate::with_volume!(volume, v => mapped(v, z, |x| apply(x) as u32)))
        }
        DType::F32 => PixelData::F32(crate::with_volume!(volume, v => mapped(v, z, |x| x as f32))),
    }
}

fn encode_err(file: &str) -> impl Fn(&dyn std::fmt::Display) -> StackError + '_ {
    move |e| StackError::Encode {
        file: file.to_string(),
        detail: e.to_string(),
    }
}

fn dims_u32(file: &str, width: usize, height: usize) -> Result<(u32, u32), StackError> {
    match (u32::try_from(width), u32::try_from(height)) {
        (Ok(w), Ok(h)) => Ok((w, h)),
        _ => Err(StackError::Encode {
            file: file.to_string(),
            detail: format!("{width}×{height} pixels is too large for the format"),
        }),
    }
}

/// One PNG (8/16-bit gray or RGB).
pub(super) fn encode_png(
    file: &str,
    width: usize,
    height: usize,
    channels: usize,
    data: &PixelData,
) -> Result<Vec<u8>, StackError> {
    let err = encode_err(file);
    let (w, h) = dims_u32(file, width, height)?;
    let color = match channels {
        1 => png::ColorType::Grayscale,
        _ => png::ColorType::Rgb,
    };
    let big_endian: Vec<u8>;
    let (depth, bytes): (png::BitDepth, &[u8]) = match data {
        PixelData::U8(v) => (png::BitDepth::Eight, v),
        PixelData::U16(v) => {
            big_endian = v.iter().flat_map(|x| x.to_be_bytes()).collect();
            (png::BitDepth::Sixteen, &big_endian)
        }
        other => {
            return Err(StackError::FormatCannotStore {
                file: file.to_string(),
                format: FileFormat::Png,
                dtype: other.dtype(),
            })
        }
    };
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, w, h);
        encoder.set_color(color);
        encoder.set_depth(depth);
        encoder.set_compression(png::Compression::Fast);
        let mut writer = encoder.write_header().map_err(|e| err(&e))?;
        writer.write_image_data(bytes).map_err(|e| err(&e))?;
        writer.finish().map_err(|e| err(&e))?;
    }
    Ok(out)
}

/// A TIFF with `pages` pages produced by `page(z)`; BigTIFF when the data would not fit the
/// 4 GiB offsets of a classic TIFF.
pub(super) fn encode_tiff(
    file: &str,
    width: usize,
    height: usize,
    channels: usize,
    target: DType,
    pages: usize,
    page: &mut dyn FnMut(usize) -> Result<PixelData, StackError>,
) -> Result<Vec<u8>, StackError> {
    let data_bytes = (pages as u128)
        * (width as u128)
        * (height as u128)
        * (channels as u128)
        * (target.size() as u128);
    // Room for directories and strip tables.
    let overhead = (pages as u128) * 4096 + (height as u128) * (pages as u128) * 8;
    if data_bytes + overhead < u128::from(u32::MAX) {
        write_tiff::<TiffKindStandard>(file, width, height, channels, pages, page)
    } else {
        write_tiff::<TiffKindBig>(file, width, height, channels, pages, page)
    }
}

fn write_tiff<K: TiffKind>(
    file: &str,
    width: usize,
    height: usize,
    channels: usize,
    pages: usize,
    page: &mut dyn FnMut(usize) -> Result<PixelData, StackError>,
) -> Result<Vec<u8>, StackError> {
    let err = encode_err(file);
    let (w, h) = dims_u32(file, width, height)?;
    let mut cursor = Cursor::new(Vec::new());
    {
        let mut encoder = TiffEncoder::<_, K>::new_generic(&mut cursor).map_err(|e| err(&e))?;
        for z in 0..pages {
            let data = page(z)?;
            let written = match (channels, &data) {
                (1, PixelData::U8(v)) => encoder.write_image::<colortype::Gray8>(w, h, v),
                (1, PixelData::U16(v)) => encoder.write_image::<colortype::Gray16>(w, h, v),
                (1, PixelData::U32(v)) => encoder.write_image::<colortype::Gray32>(w, h, v),
                (1, PixelData::F32(v)) => encoder.write_image::<colortype::Gray32Float>(w, h, v),
                (3, PixelData::U8(v)) => encoder.write_image::<colortype::RGB8>(w, h, v),
                (3, PixelData::U16(v)) => encoder.write_image::<colortype::RGB16>(w, h, v),
                (3, PixelData::U32(v)) => encoder.write_image::<colortype::RGB32>(w, h, v),
                (3, PixelData::F32(v)) => encoder.write_image::<colortype::RGB32Float>(w, h, v),
                (c, _) => {
                    return Err(StackError::Encode {
                        file: file.to_string(),
                        detail: format!(
                            "{c} channels per voxel; only 1 (gray) or 3 (RGB) can be written"
                        ),
                    })
                }
            };
            written.map_err(|e| err(&e))?;
        }
    }
    Ok(cursor.into_inner())
}

/// Encodes slice `z` with a precomputed plan.
pub(super) fn encode_planned(
    volume: &AnyVolume,
    z: usize,
    format: FileFormat,
    plan: &Plan,
    file: &str,
) -> Result<Vec<u8>, StackError> {
    let shape = volume.shape();
    let channels = volume.channels();
    if z >= shape.z {
        return Err(StackError::Encode {
            file: file.to_string(),
            detail: format!(
                "slice {z} does not exist; the volume has {} slices",
                shape.z
            ),
        });
    }
    match format {
        FileFormat::Png => {
            let data = convert_slice(volume, z, plan);
            encode_png(file, shape.x, shape.y, channels, &data)
        }
        FileFormat::Tiff => encode_tiff(
            file,
            shape.x,
            shape.y,
            channels,
            plan.target,
            1,
            &mut |_| Ok(convert_slice(volume, z, plan)),
        ),
    }
}

/// All files of an export.
pub(super) fn export(
    volume: &AnyVolume,
    options: &ExportOptions,
) -> Result<Vec<(String, Vec<u8>)>, StackError> {
    let shape = volume.shape();
    match options.format {
        ExportFormat::PngSeries | ExportFormat::TiffSeries => {
            let format = if options.format == ExportFormat::PngSeries {
                FileFormat::Png
            } else {
                FileFormat::Tiff
            };
            let plan = plan(volume, format, options, &series_name(options, 0, format))?;
            (0..shape.z)
                .map(|z| {
                    let name = series_name(options, z, format);
                    let bytes = encode_planned(volume, z, format, &plan, &name)?;
                    Ok((name, bytes))
                })
                .collect()
        }
        ExportFormat::MultiPageTiff => {
            let name = multipage_name(options);
            let plan = plan(volume, FileFormat::Tiff, options, &name)?;
            let bytes = encode_tiff(
                &name,
                shape.x,
                shape.y,
                volume.channels(),
                plan.target,
                shape.z,
                &mut |z| Ok(convert_slice(volume, z, &plan)),
            )?;
            Ok(vec![(name, bytes)])
        }
    }
}
