//! The error type of [`crate::stack`].

use super::FileFormat;
use crate::volume::DType;
use std::fmt;

/// Everything that can go wrong reading or writing a stack.
///
/// Every variant that concerns a file carries its name in `file`, and the `Display` text starts
/// with that name followed by a plain description of the problem, so it can be shown to a user
/// as is.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StackError {
    /// No PNG or TIFF file was given (or no slice was pushed into a [`super::StackBuilder`]).
    #[error("no PNG or TIFF files found")]
    Empty,

    /// The file starts neither with the PNG signature nor with a TIFF header.
    #[error("{file}: not a PNG or TIFF file (wrong magic number)")]
    WrongMagic {
        /// The offending file.
        file: String,
    },

    /// The file is truncated or damaged: CRC mismatch, bad zlib stream, broken IFD chain, ...
    #[error("{file}: truncated or corrupt {format} data ({detail})")]
    Corrupt {
        /// The offending file.
        file: String,
        /// The format its magic number announced.
        format: FileFormat,
        /// The decoder's description of the problem.
        detail: String,
    },

    /// The header asks for more memory than [`super::Limits`] allow.
    #[error("{file}: {limit}")]
    TooLarge {
        /// The file whose header triggered the limit.
        file: String,
        /// Which limit, and by how much.
        limit: LimitExceeded,
    },

    /// A slice differs in width or height from the first slice of the stack.
    #[error(
        "{file}: slice is {width}×{height} pixels but the first slice is \
         {expected_width}×{expected_height} (first slice {first})"
    )]
    SizeMismatch {
        /// The offending file.
        file: String,
        /// Its width.
        width: usize,
        /// Its height.
        height: usize,
        /// Width of the first slice.
        expected_width: usize,
        /// Height of the first slice.
        expected_height: usize,
        /// The file that supplied the first slice.
        first: String,
    },

    /// A slice has another element type (bit depth) than the first slice.
    #[error("{file}: {found} slice in {} {expected} stack (first slice {first})", article(&expected.to_string()))]
    DTypeMismatch {
        /// The offending file.
        file: String,
        /// Its element type.
        found: DType,
        /// The element type of the first slice.
        expected: DType,
        /// The file that supplied the first slice.
        first: String,
    },

    /// A slice has another channel count (gray vs RGB) than the first slice.
    #[error(
        "{file}: {} slice in {} {} stack (first slice {first})",
        channel_word(*found),
        article(&channel_word(*expected)),
        channel_word(*expected)
    )]
    ChannelMismatch {
        /// The offending file.
        file: String,
        /// Its channel count.
        found: usize,
        /// The channel count of the first slice.
        expected: usize,
        /// The file that supplied the first slice.
        first: String,
    },

    /// A valid file of a kind this reader does not handle (CMYK TIFF, signed samples, ...).
    #[error("{file}: unsupported {format} image: {what}")]
    Unsupported {
        /// The offending file.
        file: String,
        /// Its format.
        format: FileFormat,
        /// What is not supported, in words.
        what: String,
    },

    /// Export without rescaling: a value of the volume does not fit into the target bit depth.
    #[error(
        "value {max} does not fit in {depth} ({}); turn on rescaling or choose a larger bit depth",
        range_text(*depth)
    )]
    DoesNotFit {
        /// The volume's out-of-range extreme: its maximum, or its minimum when that is negative.
        max: f64,
        /// The target element type.
        depth: DType,
    },

    /// Export: the chosen file format cannot hold the chosen element type (PNG and 32-bit data).
    #[error(
        "{file}: {format} cannot store {dtype} data; export as TIFF or choose 8-bit or 16-bit depth"
    )]
    FormatCannotStore {
        /// The output file that was to be written.
        file: String,
        /// The chosen format.
        format: FileFormat,
        /// The element type that does not fit.
        dtype: DType,
    },

    /// Export: the encoder failed.
    #[error("{file}: could not encode ({detail})")]
    Encode {
        /// The output file that was to be written.
        file: String,
        /// The encoder's description of the problem.
        detail: String,
    },
}

/// Which of the [`super::Limits`] a file exceeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitExceeded {
    /// Width or height above [`super::Limits::max_side`].
    Side {
        /// Width the header claims.
        width: u64,
        /// Height the header claims.
        height: u64,
        /// The limit per side.
        max_side: usize,
    },
    /// The voxel data would exceed [`super::Limits::max_total_bytes`].
    TotalBytes {
        /// Slices the stack (or file) would have.
        slices: usize,
        /// Slice width.
        width: usize,
        /// Slice height.
        height: usize,
        /// Channels per pixel.
        channels: usize,
        /// Element type.
        dtype: DType,
        /// Bytes needed (saturating).
        bytes: u64,
        /// The limit in bytes.
        max_total_bytes: usize,
    },
}

impl fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LimitExceeded::Side {
                width,
                height,
                max_side,
            } => write!(
                f,
                "header claims {width}×{height} pixels; the limit is {max_side} per side"
            ),
            LimitExceeded::TotalBytes {
                slices,
                width,
                height,
                channels,
                dtype,
                bytes,
                max_total_bytes,
            } => write!(
                f,
                "the stack would need {} ({slices} slice(s) of {width}×{height} {} {dtype}), \
                 more than the limit of {}",
                human_bytes(*bytes),
                channel_word(*channels),
                human_bytes(*max_total_bytes as u64)
            ),
        }
    }
}

/// "grayscale" / "RGB" / "4-channel".
pub(super) fn channel_word(channels: usize) -> String {
    match channels {
        1 => "grayscale".to_string(),
        3 => "RGB".to_string(),
        n => format!("{n}-channel"),
    }
}

/// The indefinite article for a word as it is spoken ("an 8-bit", "a 16-bit", "an RGB").
fn article(word: &str) -> &'static str {
    let spoken_vowel = word.starts_with('8')
        || word.starts_with("RGB")
        || word.starts_with("11")
        || word.starts_with("18")
        || word
            .chars()
            .next()
            .is_some_and(|c| "aeiouAEIOU".contains(c));
    if spoken_vowel {
        "an"
    } else {
        "a"
    }
}

fn range_text(depth: DType) -> &'static str {
    match depth {
        DType::U8 => "0 to 255",
        DType::U16 => "0 to 65535",
        DType::U32 => "0 to 4294967295",
        DType::F32 => "32-bit float range",
    }
}

/// Bytes as "512 B", "3.0 MiB", "4.2 GiB".
fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = UNITS[0];
    for u in UNITS.iter().skip(1) {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = u;
    }
    format!("{value:.1} {unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn articles_follow_pronunciation() {
        assert_eq!(article("8-bit"), "an");
        assert_eq!(article("16-bit"), "a");
        assert_eq!(article("32-bit float"), "a");
        assert_eq!(article("RGB"), "an");
        assert_eq!(article("grayscale"), "a");
    }

    #[test]
    fn human_bytes_uses_binary_units() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
        assert_eq!(human_bytes(1536), "1.5 KiB");
    }

    #[test]
    fn dtype_mismatch_message_reads_naturally() {
        let e = StackError::DTypeMismatch {
            file: "x.png".into(),
            found: DType::U16,
            expected: DType::U8,
            first: "0000.png".into(),
        };
        assert_eq!(
            e.to_string(),
            "x.png: 16-bit slice in an 8-bit stack (first slice 0000.png)"
        );
    }
}
