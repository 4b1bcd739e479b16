//! PNG and TIFF decoding with limits checked from the headers before pixels are allocated.

use super::error::{LimitExceeded, StackError};
use super::tiff_scan::{self, ScanError};
use super::{DecodedSlice, FileFormat, ImageHeader, Limits, PixelData};
use crate::volume::DType;
use std::io::Cursor;

/// The 8-byte PNG signature.
const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];

/// Memory the PNG decoder may use for metadata chunks and row buffers (not the image itself).
const PNG_DECODER_SCRATCH: usize = 64 * 1024 * 1024;

/// What one page's header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct PageInfo {
    pub width: usize,
    pub height: usize,
    pub channels: usize,
    pub dtype: DType,
}

/// Receives the pages of a file as they are decoded.
pub(super) trait PageSink {
    /// Called before page `index` (of `pages`) is decoded; an error stops decoding.
    fn header(&mut self, index: usize, pages: usize, info: &PageInfo) -> Result<(), StackError>;
    /// Called with the decoded pixels of page `index`.
    fn pixels(&mut self, index: usize, slice: DecodedSlice) -> Result<(), StackError>;
}

/// Detects the format from the magic number.
pub(super) fn detect(name: &str, bytes: &[u8]) -> Result<FileFormat, StackError> {
    if bytes.starts_with(&PNG_SIGNATURE) {
        Ok(FileFormat::Png)
    } else if [b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"]
        .iter()
        .any(|m| bytes.starts_with(*m))
    {
        Ok(FileFormat::Tiff)
    } else {
        Err(StackError::WrongMagic {
            file: name.to_string(),
        })
    }
}

fn corrupt(name: &str, format: FileFormat, detail: impl ToString) -> StackError {
    StackError::Corrupt {
        file: name.to_string(),
        format,
        detail: detail.to_string(),
    }
}

fn unsupported(name: &str, format: FileFormat, what: impl ToString) -> StackError {
    StackError::Unsupported {
        file: name.to_string(),
        format,
        what: what.to_string(),
    }
}

/// Rejects sides above `limits.max_side`.
pub(super) fn check_side(
    name: &str,
    width: u64,
    height: u64,
    limits: &Limits,
) -> Result<(), StackError> {
    let max = limits.max_side as u64;
    if width > max || height > max {
        return Err(StackError::TooLarge {
            file: name.to_string(),
            limit: LimitExceeded::Side {
                width,
                height,
                max_side: limits.max_side,
            },
        });
    }
    Ok(())
}

/// Rejects `slices` slices of `info` when they would exceed `limits.max_total_bytes`.
pub(super) fn check_total(
    name: &str,
    slices: usize,
    info: &PageInfo,
    limits: &Limits,
) -> Result<(), StackError> {
    let bytes = (slices as u128)
        * (info.width as u128)
        * (info.height as u128)
        * (info.channels as u128)
        * (info.dtype.size() as u128);
    if bytes > limits.max_total_bytes as u128 {
        return Err(StackError::TooLarge {
            file: name.to_string(),
            limit: LimitExceeded::TotalBytes {
                slices,
                width: info.width,
                height: info.height,
                channels: info.channels,
                dtype: info.dtype,
                bytes: u64::try_from(bytes).unwrap_or(u64::MAX),
                max_total_bytes: limits.max_total_bytes,
            },
        });
    }
    Ok(())
}

/// Reads the header of a file: size, channels, element type, page count.
pub(super) fn probe(name: &str, bytes: &[u8], limits: &Limits) -> Result<ImageHeader, StackError> {
    let format = detect(name, bytes)?;
    let (pages, info) = match format {
        FileFormat::Png => (1, png_probe(name, bytes, limits)?),
        FileFormat::Tiff => {
            let (scan, mut decoder) = tiff_open(name, bytes, limits)?;
            (scan.pages, tiff_page_info(name, &mut decoder, limits)?.0)
        }
    };
    check_total(name, pages, &info, limits)?;
    Ok(ImageHeader {
        width: info.width,
        height: info.height,
        channels: info.channels,
        dtype: info.dtype,
        pages,
        format,
    })
}

/// Decodes all pages of a file into `sink`.
pub(super) fn decode_into(
    name: &str,
    bytes: &[u8],
    limits: &Limits,
    sink: &mut dyn PageSink,
) -> Result<(), StackError> {
    match detect(name, bytes)? {
        FileFormat::Png => png_decode(name, bytes, limits, sink),
        FileFormat::Tiff => tiff_decode(name, bytes, limits, sink),
    }
}

/// Collects pages into a vector, checking the whole file against the byte limit first.
pub(super) struct VecSink<'a> {
    pub name: &'a str,
    pub limits: &'a Limits,
    pub slices: Vec<DecodedSlice>,
}

impl PageSink for VecSink<'_> {
    fn header(&mut self, index: usize, pages: usize, info: &PageInfo) -> Result<(), StackError> {
        // Pages may differ in size: check each against `pages` copies of itself.
        check_total(self.name, pages, info, self.limits)?;
        if index == 0 {
            self.slices.reserve_exact(pages);
        }
        Ok(())
    }
    fn pixels(&mut self, _index: usize, slice: DecodedSlice) -> Result<(), StackError> {
        self.slices.push(slice);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// PNG

/// How decoded PNG samples map onto the output.
struct PngLayout {
    /// Samples per pixel in the decoder output (after `EXPAND`).
    samples_in: usize,
}

type PngReader<'a> = png::Reader<Cursor<&'a [u8]>>;

fn png_err(name: &str) -> impl Fn(png::DecodingError) -> StackError + '_ {
    move |e| match e {
        png::DecodingError::LimitsExceeded => corrupt(
            name,
            FileFormat::Png,
            "a chunk needs more memory than the decoder allows",
        ),
        e => corrupt(name, FileFormat::Png, tidy_png_message(&e.to_string())),
    }
}

/// Shortens the `Debug` form of chunk types in png's messages:
/// `ChunkType { type: IDAT, critical: true, .. }` → `IDAT`.
fn tidy_png_message(msg: &str) -> String {
    const START: &str = "ChunkType { type: ";
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg;
    while let Some(i) = rest.find(START) {
        let (before, after) = rest.split_at(i);
        out.push_str(before);
        let after = &after[START.len()..];
        let Some(end) = after.find('}') else {
            out.push_str(START);
            rest = after;
            continue;
        };
        let inner = &after[..end];
        out.push_str(inner.split(',').next().unwrap_or(inner).trim());
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Reads the PNG header (limits checked right after IHDR) and metadata up to the image data.
fn png_open<'a>(
    name: &str,
    bytes: &'a [u8],
    limits: &Limits,
) -> Result<(PngReader<'a>, PageInfo, PngLayout), StackError> {
    let mut decoder = png::Decoder::new_with_limits(
        Cursor::new(bytes),
        png::Limits {
            bytes: PNG_DECODER_SCRATCH,
        },
    );
    // Palette -> RGB, 1/2/4-bit gray -> 8-bit, tRNS -> alpha; 16-bit stays 16-bit.
    decoder.set_transformations(png::Transformations::EXPAND);
    decoder.set_ignore_text_chunk(true);
    let (width, height) = {
        let info = decoder.read_header_info().map_err(png_err(name))?;
        (info.width, info.height)
    };
    check_side(name, u64::from(width), u64::from(height), limits)?;
    let reader = decoder.read_info().map_err(png_err(name))?;
    let info = reader.info();
    let gray_palette = info.color_type == png::ColorType::Indexed
        && info.palette.as_ref().is_some_and(|p| {
            p.chunks_exact(3)
                .all(|rgb| rgb.iter().all(|&c| Some(&c) == rgb.first()))
        });
    let channels = match info.color_type {
        png::ColorType::Grayscale | png::ColorType::GrayscaleAlpha => 1,
        png::ColorType::Indexed if gray_palette => 1,
        png::ColorType::Rgb | png::ColorType::Rgba | png::ColorType::Indexed => 3,
    };
    let (out_color, out_depth) = reader.output_color_type();
    let dtype = match out_depth {
        png::BitDepth::Sixteen => DType::U16,
        png::BitDepth::Eight => DType::U8,
        other => {
            return Err(unsupported(
                name,
                FileFormat::Png,
                format!("{}-bit samples after expansion", other as u8),
            ))
        }
    };
    let page = PageInfo {
        width: width as usize,
        height: height as usize,
        channels,
        dtype,
    };
    let layout = PngLayout {
        samples_in: out_color.samples(),
    };
    Ok((reader, page, layout))
}

/// PNG header only: IHDR, plus the metadata up to the image data for palette images (to see
/// whether the palette is gray).
fn png_probe(name: &str, bytes: &[u8], limits: &Limits) -> Result<PageInfo, StackError> {
    let mut decoder = png::Decoder::new_with_limits(
        Cursor::new(bytes),
        png::Limits {
            bytes: PNG_DECODER_SCRATCH,
        },
    );
    let info = decoder.read_header_info().map_err(png_err(name))?;
    check_side(name, u64::from(info.width), u64::from(info.height), limits)?;
    if info.color_type == png::ColorType::Indexed {
        return Ok(png_open(name, bytes, limits)?.1);
    }
    Ok(PageInfo {
        width: info.width as usize,
        height: info.height as usize,
        channels: match info.color_type {
            png::ColorType::Grayscale | png::ColorType::GrayscaleAlpha => 1,
            _ => 3,
        },
        dtype: if info.bit_depth == png::BitDepth::Sixteen {
            DType::U16
        } else {
            DType::U8
        },
    })
}

fn png_decode(
    name: &str,
    bytes: &[u8],
    limits: &Limits,
    sink: &mut dyn PageSink,
) -> Result<(), StackError> {
    let (mut reader, info, layout) = png_open(name, bytes, limits)?;
    check_total(name, 1, &info, limits)?;
    sink.header(0, 1, &info)?;
    let mut buf = vec![0u8; reader.output_buffer_size()];
    reader.next_frame(&mut buf).map_err(png_err(name))?;
    let expected = info
        .width
        .checked_mul(info.height)
        .and_then(|n| n.checked_mul(layout.samples_in))
        .and_then(|n| n.checked_mul(info.dtype.size()));
    if expected != Some(buf.len()) {
        return Err(corrupt(
            name,
            FileFormat::Png,
            "decoded image has an unexpected size",
        ));
    }
    let keep = info.channels;
    let data = match info.dtype {
        DType::U16 => PixelData::U16(
            buf.chunks_exact(layout.samples_in * 2)
                .flat_map(|px| {
                    px.chunks_exact(2)
                        .take(keep)
                        .map(|s| u16::from_be_bytes([s[0], s[1]]))
                })
                .collect(),
        ),
        _ if layout.samples_in == keep => PixelData::U8(buf),
        _ => PixelData::U8(
            buf.chunks_exact(layout.samples_in)
                .flat_map(|px| px.iter().take(keep).copied())
                .collect(),
        ),
    };
    sink.pixels(
        0,
        DecodedSlice {
            width: info.width,
            height: info.height,
            channels: info.channels,
            pixels: data,
        },
    )
}

// ---------------------------------------------------------------------------------------------
// TIFF

type TiffDecoder<'a> = tiff::decoder::Decoder<Cursor<&'a [u8]>>;

fn tiff_err(name: &str) -> impl Fn(tiff::TiffError) -> StackError + '_ {
    move |e| match e {
        tiff::TiffError::UnsupportedError(u) => unsupported(name, FileFormat::Tiff, u),
        tiff::TiffError::LimitsExceeded => corrupt(
            name,
            FileFormat::Tiff,
            "a directory or strip needs more memory than the decoder allows",
        ),
        e => corrupt(name, FileFormat::Tiff, e),
    }
}

/// Walks the IFDs (page count, sizes checked against the side limit), then opens the decoder.
fn tiff_open<'a>(
    name: &str,
    bytes: &'a [u8],
    limits: &Limits,
) -> Result<(tiff_scan::TiffScan, TiffDecoder<'a>), StackError> {
    let scan = tiff_scan::scan(bytes).map_err(|e| match e {
        ScanError::NotTiff => StackError::WrongMagic {
            file: name.to_string(),
        },
        ScanError::Corrupt(d) => corrupt(name, FileFormat::Tiff, d),
    })?;
    check_side(name, scan.max_side.0, scan.max_side.1, limits)?;
    let mut tiff_limits = tiff::decoder::Limits::default();
    // A decoded page never needs more than the whole-stack limit; a compressed strip never
    // exceeds the file itself.
    tiff_limits.decoding_buffer_size = limits.max_total_bytes;
    tiff_limits.intermediate_buffer_size = bytes.len().min(limits.max_total_bytes);
    let decoder = tiff::decoder::Decoder::new(Cursor::new(bytes))
        .map_err(tiff_err(name))?
        .with_limits(tiff_limits);
    Ok((scan, decoder))
}

/// Layout of the current TIFF page: output info and samples per pixel in the file.
fn tiff_page_info(
    name: &str,
    decoder: &mut TiffDecoder<'_>,
    limits: &Limits,
) -> Result<(PageInfo, usize), StackError> {
    use tiff::tags::Tag;
    use tiff::ColorType as C;
    let err = tiff_err(name);
    let (width, height) = decoder.dimensions().map_err(&err)?;
    check_side(name, u64::from(width), u64::from(height), limits)?;
    let color = decoder.colortype().map_err(&err)?;
    let (channels, samples_in, bits) = match color {
        C::Gray(b) => (1, 1, b),
        C::RGB(b) => (3, 3, b),
        C::RGBA(b) => (3, 4, b),
        C::GrayA(_) => {
            return Err(unsupported(name, FileFormat::Tiff, "gray with alpha"));
        }
        C::Palette(_) => {
            return Err(unsupported(name, FileFormat::Tiff, "palette colour"));
        }
        C::CMYK(_) => return Err(unsupported(name, FileFormat::Tiff, "CMYK colour")),
        C::YCbCr(_) => return Err(unsupported(name, FileFormat::Tiff, "YCbCr colour")),
    };
    let sample_format = decoder
        .find_tag_unsigned_vec::<u16>(Tag::SampleFormat)
        .map_err(&err)?
        .and_then(|v| v.first().copied())
        .unwrap_or(1);
    let dtype = match (sample_format, bits) {
        (1, 8) => DType::U8,
        (1, 16) => DType::U16,
        (1, 32) => DType::U32,
        (3, 32) => DType::F32,
        (1, b) => {
            return Err(unsupported(
                name,
                FileFormat::Tiff,
                format!("{b}-bit unsigned samples"),
            ))
        }
        (2, b) => {
            return Err(unsupported(
                name,
                FileFormat::Tiff,
                format!("signed {b}-bit integer samples"),
            ))
        }
        (3, b) => {
            return Err(unsupported(
                name,
                FileFormat::Tiff,
                format!("{b}-bit float samples"),
            ))
        }
        (f, _) => {
            return Err(unsupported(
                name,
                FileFormat::Tiff,
                format!("sample format {f}"),
            ))
        }
    };
    let planar = decoder
        .find_tag_unsigned::<u16>(Tag::PlanarConfiguration)
        .map_err(&err)?
        .unwrap_or(1);
    if planar == 2 && samples_in > 1 {
        return Err(unsupported(
            name,
            FileFormat::Tiff,
            "separate colour planes (PlanarConfiguration 2)",
        ));
    }
    let compression = decoder
        .find_tag_unsigned::<u16>(Tag::Compression)
        .map_err(&err)?
        .unwrap_or(1);
    if compression == 6 || compression == 7 {
        return Err(unsupported(name, FileFormat::Tiff, "JPEG compression"));
    }
    Ok((
        PageInfo {
            width: width as usize,
            height: height as usize,
            channels,
            dtype,
        },
        samples_in,
    ))
}

fn drop_alpha<T: Copy>(v: Vec<T>, samples_in: usize, keep: usize) -> Vec<T> {
    if samples_in == keep {
        v
    } else {
        v.chunks_exact(samples_in)
            .flat_map(|px| px.iter().take(keep).copied())
            .collect()
    }
}

fn tiff_decode(
    name: &str,
    bytes: &[u8],
    limits: &Limits,
    sink: &mut dyn PageSink,
) -> Result<(), StackError> {
    let (scan, mut decoder) = tiff_open(name, bytes, limits)?;
    let err = tiff_err(name);
    for index in 0..scan.pages {
        if index > 0 {
            if !decoder.more_images() {
                return Err(corrupt(
                    name,
                    FileFormat::Tiff,
                    format!("page {} is missing", index + 1),
                ));
            }
            decoder.next_image().map_err(&err)?;
        }
        let (info, samples_in) = tiff_page_info(name, &mut decoder, limits)?;
        check_total(name, 1, &info, limits)?;
        sink.header(index, scan.pages, &info)?;
        let expected = info
            .width
            .checked_mul(info.height)
            .and_then(|n| n.checked_mul(samples_in));
        let result = decoder.read_image().map_err(&err)?;
        use tiff::decoder::DecodingResult as R;
        let len = match &result {
            R::U8(v) => v.len(),
            R::U16(v) => v.len(),
            R::U32(v) => v.len(),
            R::F32(v) => v.len(),
            _ => 0,
        };
        if expected != Some(len) {
            return Err(corrupt(
                name,
                FileFormat::Tiff,
                format!("page {} decoded to an unexpected size", index + 1),
            ));
        }
        let keep = info.channels;
        let pixels = match (result, info.dtype) {
            (R::U8(v), DType::U8) => PixelData::U8(drop_alpha(v, samples_in, keep)),
            (R::U16(v), DType::U16) => PixelData::U16(drop_alpha(v, samples_in, keep)),
            (R::U32(v), DType::U32) => PixelData::U32(drop_alpha(v, samples_in, keep)),
            (R::F32(v), DType::F32) => PixelData::F32(drop_alpha(v, samples_in, keep)),
            _ => {
                return Err(corrupt(
                    name,
                    FileFormat::Tiff,
                    format!("page {} decoded to an unexpected sample type", index + 1),
                ))
            }
        };
        sink.pixels(
            index,
            DecodedSlice {
                width: info.width,
                height: info.height,
                channels: info.channels,
                pixels,
            },
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_chunk_types_are_shortened() {
        assert_eq!(
            tidy_png_message(
                "CRC error: expected 0x1 have 0x2 while decoding ChunkType { type: IDAT, \
                 critical: true, private: false } chunk."
            ),
            "CRC error: expected 0x1 have 0x2 while decoding IDAT chunk."
        );
        assert_eq!(tidy_png_message("plain"), "plain");
        assert_eq!(
            tidy_png_message("ChunkType { type: x"),
            "ChunkType { type: x"
        );
    }

    #[test]
    fn magic_numbers() {
        assert_eq!(detect("a", b"II*\0rest").ok(), Some(FileFormat::Tiff));
        assert_eq!(detect("a", b"MM\0*").ok(), Some(FileFormat::Tiff));
        assert_eq!(detect("a", b"II+\0").ok(), Some(FileFormat::Tiff));
        assert_eq!(detect("a", &PNG_SIGNATURE).ok(), Some(FileFormat::Png));
        assert!(detect("a", b"\x89PNG").is_err());
        assert!(detect("a", b"").is_err());
    }
}
