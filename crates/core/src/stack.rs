//! Reading and writing image stacks: PNG / TIFF slice series and multi-page TIFF.
//!
//! Input is names and bytes, output is a [`crate::AnyVolume`] (and the reverse for export);
//! there is no file-system access here, so the same code runs in the browser worker, the
//! companion server and the CLI.
//!
//! - The format is detected from the magic number, never from the extension.
//! - Sizes are checked against [`Limits`] from the headers, before any pixel buffer is
//!   allocated, so a crafted file cannot make the reader allocate gigabytes.
//! - [`StackBuilder`] allocates the volume once, when the first file arrives, from the
//!   announced file count, so memory stays at about one copy of the stack.
//! - Every error names the offending file and says plainly what is wrong.
//!
//! Pixel rules: gray 8/16-bit → `U8`/`U16`; 32-bit unsigned TIFF → `U32`; 32-bit float TIFF →
//! `F32`; RGB 8/16-bit → 3 channels. Palette PNGs become gray (all-gray palette) or RGB,
//! 1/2/4-bit gray PNGs become 8-bit, alpha channels are dropped.
//!
//! ```
//! use emstudio_core::stack::{export, read_stack, BitDepth, ExportFormat, ExportOptions, Limits};
//! use emstudio_core::{AnyVolume, Shape, Volume};
//!
//! let mut labels = Volume::<u16>::new(Shape::new(3, 4, 5), 1).unwrap();
//! labels.set(2, 1, 1, 0, 1000);
//! let labels = AnyVolume::U16(labels);
//!
//! let options = ExportOptions {
//!     format: ExportFormat::PngSeries,
//!     depth: BitDepth::Native,
//!     rescale: false,
//!     base_name: "seg".into(),
//! };
//! let files = export(&labels, &options).unwrap();
//! assert_eq!(files[2].0, "seg_0002.png");
//!
//! let back = read_stack(files, &Limits::default()).unwrap();
//! assert_eq!(back, labels);
//! ```

mod decode;
mod encode;
mod error;
mod natural;
mod tiff_scan;

pub use error::{LimitExceeded, StackError};
pub use natural::{natural_cmp, sort_natural};

use crate::volume::{AnyVolume, DType, Shape, Volume, VolumeError, Voxel};
use decode::{PageInfo, PageSink};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Per-read safety limits, checked from headers before any pixel buffer is allocated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Largest width or height of a slice, in pixels (default 32768).
    pub max_side: usize,
    /// Largest size of the decoded voxel data of a whole stack, in bytes (default 3 GiB).
    pub max_total_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_side: 32768,
            max_total_bytes: 3 * 1024 * 1024 * 1024,
        }
    }
}

/// A container format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FileFormat {
    /// Portable Network Graphics.
    Png,
    /// Tagged Image File Format (classic or BigTIFF).
    Tiff,
}

impl fmt::Display for FileFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileFormat::Png => "PNG",
            FileFormat::Tiff => "TIFF",
        })
    }
}

/// What a file header says (no pixel decoding).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageHeader {
    /// Slice width in pixels.
    pub width: usize,
    /// Slice height in pixels.
    pub height: usize,
    /// Channels after decoding (1 gray, 3 RGB; alpha is dropped).
    pub channels: usize,
    /// Element type after decoding.
    pub dtype: DType,
    /// Number of slices in the file (1 for PNG; IFD count for TIFF).
    pub pages: usize,
    /// The format, from the magic number.
    pub format: FileFormat,
}

/// Decoded samples of one slice, row-major, channels interleaved.
#[derive(Clone, Debug, PartialEq)]
pub enum PixelData {
    /// 8-bit samples.
    U8(Vec<u8>),
    /// 16-bit samples (native endianness).
    U16(Vec<u16>),
    /// 32-bit unsigned samples.
    U32(Vec<u32>),
    /// 32-bit float samples.
    F32(Vec<f32>),
}

impl PixelData {
    /// The element type.
    pub fn dtype(&self) -> DType {
        match self {
            PixelData::U8(_) => DType::U8,
            PixelData::U16(_) => DType::U16,
            PixelData::U32(_) => DType::U32,
            PixelData::F32(_) => DType::F32,
        }
    }
    /// Number of samples (`width * height * channels`).
    pub fn len(&self) -> usize {
        match self {
            PixelData::U8(v) => v.len(),
            PixelData::U16(v) => v.len(),
            PixelData::U32(v) => v.len(),
            PixelData::F32(v) => v.len(),
        }
    }
    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One decoded slice (page) of a file.
#[derive(Clone, Debug, PartialEq)]
pub struct DecodedSlice {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Channels per pixel (1 or 3).
    pub channels: usize,
    /// `width * height * channels` samples.
    pub pixels: PixelData,
}

/// Reads a file's header: size, channels, element type and page count, without decoding
/// pixels. Fails with [`StackError::TooLarge`] when the file alone exceeds `limits`.
pub fn probe(name: &str, bytes: &[u8], limits: &Limits) -> Result<ImageHeader, StackError> {
    decode::probe(name, bytes, limits)
}

/// Decodes all pages of one file (1 for PNG, n for multi-page TIFF).
pub fn decode_file(
    name: &str,
    bytes: &[u8],
    limits: &Limits,
) -> Result<Vec<DecodedSlice>, StackError> {
    let mut sink = decode::VecSink {
        name,
        limits,
        slices: Vec::new(),
    };
    decode::decode_into(name, bytes, limits, &mut sink)?;
    Ok(sink.slices)
}

/// The file's format from its magic number; [`StackError::WrongMagic`] names the file when it
/// is neither PNG nor TIFF.
pub fn detect_format(name: &str, bytes: &[u8]) -> Result<FileFormat, StackError> {
    decode::detect(name, bytes)
}

/// Whether a name looks like a slice file: `.png`, `.tif` or `.tiff` (any case), not hidden.
///
/// Only the part after the last `/` or `\` counts, so paths work too. Hidden files such as
/// `.DS_Store` or macOS resource forks like `._0001.png` are rejected.
///
/// ```
/// use emstudio_core::stack::is_stack_file_name;
/// assert!(is_stack_file_name("data/0001.TIF"));
/// assert!(!is_stack_file_name("._0001.png"));
/// assert!(!is_stack_file_name("README.md"));
/// ```
pub fn is_stack_file_name(name: &str) -> bool {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    if base.starts_with('.') {
        return false;
    }
    match base.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => {
            ["png", "tif", "tiff"].contains(&ext.to_ascii_lowercase().as_str())
        }
        _ => false,
    }
}

/// The stack being filled.
struct Partial {
    first_file: String,
    format: FileFormat,
    info: PageInfo,
    /// Allocated with room for the expected number of slices.
    volume: AnyVolume,
    /// Slices written so far.
    filled: usize,
}

/// Incremental stack assembly, so the caller can report progress per file and stay
/// responsive.
///
/// The volume is allocated once, when the first file arrives, for `file_count` files of that
/// file's page count; the size limit is checked then, before allocating. Slices are written
/// straight into the volume, so peak memory is about one stack plus one slice.
///
/// ```
/// use emstudio_core::stack::{export, BitDepth, ExportFormat, ExportOptions, Limits, StackBuilder};
/// use emstudio_core::{AnyVolume, Shape, Volume};
///
/// let v = AnyVolume::U8(Volume::<u8>::new(Shape::new(2, 8, 8), 1).unwrap());
/// let options = ExportOptions {
///     format: ExportFormat::TiffSeries,
///     depth: BitDepth::Native,
///     rescale: false,
///     base_name: "em".into(),
/// };
/// let files = export(&v, &options).unwrap();
/// let mut builder = StackBuilder::new(files.len(), Limits::default());
/// for (name, bytes) in &files {
///     builder.push(name, bytes).unwrap();
/// }
/// assert_eq!(builder.slices(), 2);
/// assert_eq!(builder.finish().unwrap(), v);
/// ```
pub struct StackBuilder {
    file_count: usize,
    limits: Limits,
    files_pushed: usize,
    stack: Option<Partial>,
}

impl fmt::Debug for StackBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StackBuilder")
            .field("file_count", &self.file_count)
            .field("files_pushed", &self.files_pushed)
            .field("slices", &self.slices())
            .finish()
    }
}

impl StackBuilder {
    /// A builder expecting `file_count` files (used for the upfront size check and the single
    /// allocation; pushing more or fewer files still works, at the cost of one copy).
    pub fn new(file_count: usize, limits: Limits) -> Self {
        Self {
            file_count,
            limits,
            files_pushed: 0,
            stack: None,
        }
    }

    /// Decodes one file and appends its page(s) as z slices.
    ///
    /// Every slice must match the first one in width, height, channels and element type;
    /// otherwise the error names this file, the expected and the found value. After an error
    /// the builder is unchanged and further files may be pushed.
    pub fn push(&mut self, name: &str, bytes: &[u8]) -> Result<(), StackError> {
        let limits = self.limits;
        let format = decode::detect(name, bytes)?;
        let mut sink = BuilderSink {
            builder: self,
            name,
            format,
            written: 0,
        };
        let result = decode::decode_into(name, bytes, &limits, &mut sink);
        let written = sink.written;
        self.settle(result, written)
    }

    /// Appends the pages of one file decoded elsewhere (a helper worker ran [`decode_file`] on
    /// it), with the same checks as [`StackBuilder::push`]: every page must match the first
    /// slice of the stack, and the whole stack must stay within the limits. `format` names the
    /// file's format in errors ([`detect_format`]).
    ///
    /// ```
    /// use emstudio_core::stack::{decode_file, detect_format, export, ExportOptions, Limits, StackBuilder};
    /// use emstudio_core::{AnyVolume, Shape, Volume};
    ///
    /// let v = AnyVolume::U16(Volume::<u16>::new(Shape::new(3, 4, 5), 1).unwrap());
    /// let files = export(&v, &ExportOptions::default()).unwrap();
    /// let mut builder = StackBuilder::new(files.len(), Limits::default());
    /// for (name, bytes) in &files {
    ///     let format = detect_format(name, bytes).unwrap();
    ///     let pages = decode_file(name, bytes, &Limits::default()).unwrap();
    ///     builder.push_decoded(name, format, pages).unwrap();
    /// }
    /// assert_eq!(builder.finish().unwrap(), v);
    /// ```
    pub fn push_decoded(
        &mut self,
        name: &str,
        format: FileFormat,
        pages: Vec<DecodedSlice>,
    ) -> Result<(), StackError> {
        let count = pages.len();
        let mut sink = BuilderSink {
            builder: self,
            name,
            format,
            written: 0,
        };
        let mut result = Ok(());
        for (index, page) in pages.into_iter().enumerate() {
            let expected = page.width * page.height * page.channels;
            if page.pixels.len() != expected {
                result = Err(StackError::Corrupt {
                    file: name.to_string(),
                    format,
                    detail: format!(
                        "page {index} has {} samples, {}×{}×{} expected",
                        page.pixels.len(),
                        page.width,
                        page.height,
                        page.channels
                    ),
                });
                break;
            }
            let info = PageInfo {
                width: page.width,
                height: page.height,
                channels: page.channels,
                dtype: page.pixels.dtype(),
            };
            if let Err(e) = sink
                .header(index, count, &info)
                .and_then(|()| sink.pixels(index, page))
            {
                result = Err(e);
                break;
            }
        }
        let written = sink.written;
        self.settle(result, written)
    }

    /// Counts a pushed file, or undoes the start of a stack whose first file failed.
    fn settle(&mut self, result: Result<(), StackError>, written: usize) -> Result<(), StackError> {
        match result {
            Ok(()) => {
                if let Some(p) = self.stack.as_mut() {
                    p.filled += written;
                }
                self.files_pushed += 1;
                Ok(())
            }
            Err(e) => {
                if self.stack.as_ref().is_some_and(|p| p.filled == 0) {
                    // The first file failed: the next good file becomes the first.
                    self.stack = None;
                }
                Err(e)
            }
        }
    }

    /// Slices assembled so far.
    pub fn slices(&self) -> usize {
        self.stack.as_ref().map_or(0, |p| p.filled)
    }

    /// The assembled volume; [`StackError::Empty`] if no slice was pushed.
    pub fn finish(self) -> Result<AnyVolume, StackError> {
        let p = match self.stack {
            Some(p) if p.filled > 0 => p,
            _ => return Err(StackError::Empty),
        };
        if p.volume.shape().z == p.filled {
            return Ok(p.volume);
        }
        resized(&p.volume, p.filled, p.filled).map_err(|e| volume_error(&p.first_file, p.format, e))
    }
}

struct BuilderSink<'a> {
    builder: &'a mut StackBuilder,
    name: &'a str,
    format: FileFormat,
    /// Pages of this file written into the volume.
    written: usize,
}

impl PageSink for BuilderSink<'_> {
    fn header(&mut self, index: usize, pages: usize, info: &PageInfo) -> Result<(), StackError> {
        let name = self.name;
        let b = &mut *self.builder;
        let limits = b.limits;
        let later_files = b.file_count.saturating_sub(b.files_pushed + 1);
        let Some(p) = b.stack.as_mut() else {
            // First slice of the stack: check the whole expected stack, then allocate once.
            let capacity = pages.saturating_add(later_files.saturating_mul(pages));
            decode::check_total(name, capacity, info, &limits)?;
            let volume =
                allocate(info, capacity).map_err(|e| volume_error(name, self.format, e))?;
            b.stack = Some(Partial {
                first_file: name.to_string(),
                format: self.format,
                info: *info,
                volume,
                filled: 0,
            });
            return Ok(());
        };
        check_same(name, &p.info, info, &p.first_file)?;
        if index == 0 {
            let needed = p.filled.saturating_add(pages);
            if needed > p.volume.shape().z {
                let capacity = needed.saturating_add(later_files.saturating_mul(pages));
                decode::check_total(name, capacity, info, &limits)?;
                p.volume = resized(&p.volume, p.filled, capacity)
                    .map_err(|e| volume_error(name, self.format, e))?;
            }
        }
        Ok(())
    }

    fn pixels(&mut self, index: usize, slice: DecodedSlice) -> Result<(), StackError> {
        let name = self.name;
        let p = self.builder.stack.as_mut().ok_or(StackError::Empty)?;
        let z = p.filled + index;
        let result = match (&mut p.volume, slice.pixels) {
            (AnyVolume::U8(v), PixelData::U8(d)) => v.set_slice(z, &d),
            (AnyVolume::U16(v), PixelData::U16(d)) => v.set_slice(z, &d),
            (AnyVolume::U32(v), PixelData::U32(d)) => v.set_slice(z, &d),
            (AnyVolume::F32(v), PixelData::F32(d)) => v.set_slice(z, &d),
            (v, d) => {
                return Err(StackError::DTypeMismatch {
                    file: name.to_string(),
                    found: d.dtype(),
                    expected: v.dtype(),
                    first: p.first_file.clone(),
                })
            }
        };
        result.map_err(|e| volume_error(name, self.format, e))?;
        self.written = self.written.max(index + 1);
        Ok(())
    }
}

fn check_same(
    name: &str,
    expected: &PageInfo,
    found: &PageInfo,
    first: &str,
) -> Result<(), StackError> {
    if (found.width, found.height) != (expected.width, expected.height) {
        return Err(StackError::SizeMismatch {
            file: name.to_string(),
            width: found.width,
            height: found.height,
            expected_width: expected.width,
            expected_height: expected.height,
            first: first.to_string(),
        });
    }
    if found.dtype != expected.dtype {
        return Err(StackError::DTypeMismatch {
            file: name.to_string(),
            found: found.dtype,
            expected: expected.dtype,
            first: first.to_string(),
        });
    }
    if found.channels != expected.channels {
        return Err(StackError::ChannelMismatch {
            file: name.to_string(),
            found: found.channels,
            expected: expected.channels,
            first: first.to_string(),
        });
    }
    Ok(())
}

fn volume_error(name: &str, format: FileFormat, e: VolumeError) -> StackError {
    StackError::Corrupt {
        file: name.to_string(),
        format,
        detail: e.to_string(),
    }
}

fn allocate(info: &PageInfo, z: usize) -> Result<AnyVolume, VolumeError> {
    let shape = Shape::new(z, info.height, info.width);
    let c = info.channels;
    Ok(match info.dtype {
        DType::U8 => AnyVolume::U8(Volume::new(shape, c)?),
        DType::U16 => AnyVolume::U16(Volume::new(shape, c)?),
        DType::U32 => AnyVolume::U32(Volume::new(shape, c)?),
        DType::F32 => AnyVolume::F32(Volume::new(shape, c)?),
    })
}

/// A copy of the first `keep` slices of `volume` in a volume of `z` slices.
fn resized(volume: &AnyVolume, keep: usize, z: usize) -> Result<AnyVolume, VolumeError> {
    fn typed<T: Voxel>(v: &Volume<T>, keep: usize, z: usize) -> Result<Volume<T>, VolumeError> {
        let s = v.shape();
        let mut out = Volume::<T>::new(Shape::new(z, s.y, s.x), v.channels())?;
        out.set_voxel_size(v.voxel_size());
        let mut buf = vec![T::default(); s.slice_len() * v.channels()];
        for k in 0..keep.min(z).min(s.z) {
            v.read_slice_into(k, &mut buf);
            out.set_slice(k, &buf)?;
        }
        Ok(out)
    }
    Ok(match volume {
        AnyVolume::U8(v) => AnyVolume::U8(typed(v, keep, z)?),
        AnyVolume::U16(v) => AnyVolume::U16(typed(v, keep, z)?),
        AnyVolume::U32(v) => AnyVolume::U32(typed(v, keep, z)?),
        AnyVolume::F32(v) => AnyVolume::F32(typed(v, keep, z)?),
    })
}

/// Names and bytes in any order → naturally sorted → [`StackBuilder`].
///
/// Names that are not slice files ([`is_stack_file_name`]: `README`, `.DS_Store`, ...) are
/// skipped; if none remain the result is [`StackError::Empty`]. Each file's bytes are freed
/// as soon as it has been decoded.
pub fn read_stack(files: Vec<(String, Vec<u8>)>, limits: &Limits) -> Result<AnyVolume, StackError> {
    let mut files: Vec<(String, Vec<u8>)> = files
        .into_iter()
        .filter(|(name, _)| is_stack_file_name(name))
        .collect();
    if files.is_empty() {
        return Err(StackError::Empty);
    }
    files.sort_by(|a, b| natural_cmp(&a.0, &b.0));
    let mut builder = StackBuilder::new(files.len(), *limits);
    for (name, bytes) in files {
        builder.push(&name, &bytes)?;
    }
    builder.finish()
}

/// How an export is laid out on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExportFormat {
    /// One PNG per slice: `{base_name}_{z:04}.png`.
    PngSeries,
    /// One TIFF per slice: `{base_name}_{z:04}.tif`.
    TiffSeries,
    /// All slices as pages of one `{base_name}.tif`.
    MultiPageTiff,
}

/// Element type of exported files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BitDepth {
    /// Keep the volume's element type. `U32` and `F32` can only be written as TIFF (32-bit
    /// integer / 32-bit float); PNG with them is a [`StackError::FormatCannotStore`] error.
    Native,
    /// 8-bit.
    U8,
    /// 16-bit.
    U16,
}

/// Options for [`export`] and [`encode_slice`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportOptions {
    /// File layout.
    pub format: ExportFormat,
    /// Target element type.
    pub depth: BitDepth,
    /// Map the volume's `[min, max]` linearly onto the full target range (`0..=255`,
    /// `0..=65535`, `0..=u32::MAX`; a constant volume maps to 0). Without it, values are
    /// copied (floats rounded) and a value outside the target range is a
    /// [`StackError::DoesNotFit`] error. Has no effect when the target is 32-bit float.
    pub rescale: bool,
    /// Output name stem (`"stack"` when empty).
    pub base_name: String,
}

impl Default for ExportOptions {
    fn default() -> Self {
        Self {
            format: ExportFormat::TiffSeries,
            depth: BitDepth::Native,
            rescale: false,
            base_name: "stack".to_string(),
        }
    }
}

/// Encodes a volume to files: a series gives `"{base_name}_{z:04}.png|.tif"`, one per slice;
/// a multi-page TIFF gives `"{base_name}.tif"`.
///
/// Converting to another depth: with `rescale == false`, values that do not fit are a
/// [`StackError::DoesNotFit`] error; with `rescale == true`, `[min, max]` of the whole volume
/// is mapped linearly onto the target range (the same mapping for every slice). A multi-page
/// TIFF whose data would pass 4 GiB is written as BigTIFF.
pub fn export(
    volume: &AnyVolume,
    options: &ExportOptions,
) -> Result<Vec<(String, Vec<u8>)>, StackError> {
    encode::export(volume, options)
}

/// Encodes slice `z` of `volume` as one PNG or single-page TIFF, converted according to
/// `options.depth` and `options.rescale` (`options.format` is ignored; rescaling uses the
/// whole volume's range, as [`export`] does).
pub fn encode_slice(
    volume: &AnyVolume,
    z: usize,
    format: FileFormat,
    options: &ExportOptions,
) -> Result<Vec<u8>, StackError> {
    let file = encode::series_name(options, z, format);
    let plan = encode::plan(volume, format, options, &file)?;
    encode::encode_planned(volume, z, format, &plan, &file)
}

/// True when a folder name denotes a label layer (`label`, `label_mito`, `seg`, `mask`, `gt`,
/// `groundtruth`, `annotation`, case-insensitive). One rule for the app and the companion.
pub fn is_label_folder_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "label",
        "seg",
        "mask",
        "gt",
        "groundtruth",
        "ground_truth",
        "annotation",
    ]
    .iter()
    .any(|k| n.contains(k))
}

#[cfg(test)]
mod tests {
    #[test]
    fn label_folder_names() {
        for n in ["label", "label_mito", "GT", "seg_v2", "Masks"] {
            assert!(super::is_label_folder_name(n), "{n}");
        }
        for n in ["image", "raw", "em"] {
            assert!(!super::is_label_folder_name(n), "{n}");
        }
    }

    use super::*;

    #[test]
    fn stack_file_names() {
        for ok in ["0001.png", "a.PNG", "x.tif", "dir/y.TIFF", "C:\\d\\z.Tif"] {
            assert!(is_stack_file_name(ok), "{ok}");
        }
        for bad in [
            "README",
            "README.md",
            ".DS_Store",
            "._0001.png",
            ".png",
            "dir/.hidden.tif",
            "x.jpg",
            "x.png.bak",
            "",
        ] {
            assert!(!is_stack_file_name(bad), "{bad}");
        }
    }

    #[test]
    fn decoded_pages_are_checked_like_pushed_files() {
        let slice = |w: usize, h: usize, pixels: PixelData| DecodedSlice {
            width: w,
            height: h,
            channels: 1,
            pixels,
        };
        let mut b = StackBuilder::new(3, Limits::default());
        b.push_decoded(
            "a.png",
            FileFormat::Png,
            vec![slice(2, 2, PixelData::U8(vec![1; 4]))],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let wrong_size = b
            .push_decoded(
                "b.png",
                FileFormat::Png,
                vec![slice(3, 2, PixelData::U8(vec![1; 6]))],
            )
            .map(|()| "accepted".to_string())
            .unwrap_or_else(|e| e.to_string());
        assert!(
            wrong_size.contains("b.png") && wrong_size.contains("a.png"),
            "{wrong_size}"
        );
        let wrong_type = b
            .push_decoded(
                "c.tif",
                FileFormat::Tiff,
                vec![slice(2, 2, PixelData::U16(vec![1; 4]))],
            )
            .map(|()| "accepted".to_string())
            .unwrap_or_else(|e| e.to_string());
        assert!(wrong_type.contains("c.tif"), "{wrong_type}");
        let short = b
            .push_decoded(
                "d.png",
                FileFormat::Png,
                vec![slice(2, 2, PixelData::U8(vec![1; 3]))],
            )
            .map(|()| "accepted".to_string())
            .unwrap_or_else(|e| e.to_string());
        assert!(
            short.contains("d.png") && short.contains("3 samples"),
            "{short}"
        );
        b.push_decoded(
            "e.png",
            FileFormat::Png,
            vec![slice(2, 2, PixelData::U8(vec![7; 4]))],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(b.slices(), 2);
    }

    #[test]
    fn default_limits() {
        let l = Limits::default();
        assert_eq!(l.max_side, 32768);
        assert_eq!(l.max_total_bytes, 3 << 30);
    }

    #[test]
    fn builder_grows_and_shrinks_when_the_file_count_is_wrong() {
        let v = AnyVolume::U8(
            Volume::<u8>::from_slices(
                2,
                2,
                1,
                &[vec![1, 2, 3, 4], vec![5, 6, 7, 8], vec![9, 9, 9, 9]],
            )
            .unwrap_or_else(|e| panic!("{e}")),
        );
        let opts = ExportOptions::default();
        let files = export(&v, &opts).unwrap_or_else(|e| panic!("{e}"));
        for announced in [1, 3, 10] {
            let mut b = StackBuilder::new(announced, Limits::default());
            for (n, bytes) in &files {
                b.push(n, bytes).unwrap_or_else(|e| panic!("{e}"));
            }
            assert_eq!(
                b.finish().unwrap_or_else(|e| panic!("{e}")),
                v,
                "announced {announced}"
            );
        }
    }

    #[test]
    fn failed_first_file_does_not_become_the_reference() {
        let v = AnyVolume::U8(
            Volume::<u8>::new(Shape::new(1, 3, 3), 1).unwrap_or_else(|e| panic!("{e}")),
        );
        let files = export(&v, &ExportOptions::default()).unwrap_or_else(|e| panic!("{e}"));
        let mut b = StackBuilder::new(2, Limits::default());
        assert!(b.push("bad.png", b"nonsense").is_err());
        assert_eq!(b.slices(), 0);
        b.push(&files[0].0, &files[0].1)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(b.finish().unwrap_or_else(|e| panic!("{e}")), v);
    }
}
