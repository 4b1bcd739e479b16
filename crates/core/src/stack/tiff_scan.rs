//! A minimal, allocation-free walk over a TIFF's IFD chain: counts pages and reads each page's
//! width and height so that limits are checked before the `tiff` crate parses anything.

use std::collections::HashSet;

const TAG_IMAGE_WIDTH: u16 = 256;
const TAG_IMAGE_LENGTH: u16 = 257;
const TYPE_SHORT: u16 = 3;
const TYPE_LONG: u16 = 4;
const TYPE_LONG8: u16 = 16;

/// What the walk found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct TiffScan {
    /// Number of IFDs (pages).
    pub pages: usize,
    /// Width and height of the first page.
    pub first: (u64, u64),
    /// Largest width and height over all pages.
    pub max_side: (u64, u64),
}

/// Why the walk failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ScanError {
    /// Not a TIFF header.
    NotTiff,
    /// Structural damage, in words.
    Corrupt(String),
}

#[derive(Clone, Copy)]
struct Reader<'a> {
    bytes: &'a [u8],
    little: bool,
}

impl Reader<'_> {
    fn get<const N: usize>(&self, at: u64) -> Result<[u8; N], ScanError> {
        let start = usize::try_from(at).map_err(|_| truncated())?;
        let end = start.checked_add(N).ok_or_else(truncated)?;
        let slice = self.bytes.get(start..end).ok_or_else(truncated)?;
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        if !self.little {
            out.reverse();
        }
        Ok(out)
    }
    fn u16(&self, at: u64) -> Result<u16, ScanError> {
        self.get::<2>(at).map(u16::from_le_bytes)
    }
    fn u32(&self, at: u64) -> Result<u32, ScanError> {
        self.get::<4>(at).map(u32::from_le_bytes)
    }
    fn u64(&self, at: u64) -> Result<u64, ScanError> {
        self.get::<8>(at).map(u64::from_le_bytes)
    }
}

fn truncated() -> ScanError {
    ScanError::Corrupt("file ends inside the header or an image directory".to_string())
}

/// Walks all IFDs of a classic or Big TIFF.
pub(super) fn scan(bytes: &[u8]) -> Result<TiffScan, ScanError> {
    let little = match bytes.get(0..2) {
        Some(b"II") => true,
        Some(b"MM") => false,
        _ => return Err(ScanError::NotTiff),
    };
    let r = Reader { bytes, little };
    let big = match r.u16(2).map_err(|_| ScanError::NotTiff)? {
        42 => false,
        43 => {
            if r.u16(4)? != 8 || r.u16(6)? != 0 {
                return Err(ScanError::Corrupt("invalid BigTIFF header".to_string()));
            }
            true
        }
        _ => return Err(ScanError::NotTiff),
    };
    let (count_size, entry_size, offset_size): (u64, u64, u64) =
        if big { (8, 20, 8) } else { (2, 12, 4) };
    let mut next = if big { r.u64(8)? } else { u64::from(r.u32(4)?) };
    if next == 0 {
        return Err(ScanError::Corrupt(
            "the file has no image directory".to_string(),
        ));
    }
    let mut seen = HashSet::new();
    let mut pages = 0usize;
    let mut first = (0, 0);
    let mut max_side = (0, 0);
    let len = bytes.len() as u64;
    while next != 0 {
        if !seen.insert(next) {
            return Err(ScanError::Corrupt(
                "image directories form a cycle".to_string(),
            ));
        }
        let count = if big {
            r.u64(next)?
        } else {
            u64::from(r.u16(next)?)
        };
        let entries_start = next.checked_add(count_size).ok_or_else(truncated)?;
        let next_at = count
            .checked_mul(entry_size)
            .and_then(|n| n.checked_add(entries_start))
            .ok_or_else(truncated)?;
        if next_at.checked_add(offset_size).is_none_or(|end| end > len) {
            return Err(truncated());
        }
        let (mut width, mut height) = (None, None);
        for i in 0..count {
            let e = entries_start + i * entry_size;
            let tag = r.u16(e)?;
            if tag != TAG_IMAGE_WIDTH && tag != TAG_IMAGE_LENGTH {
                continue;
            }
            let typ = r.u16(e + 2)?;
            let value_at = e + if big { 12 } else { 8 };
            let value = match typ {
                TYPE_SHORT => u64::from(r.u16(value_at)?),
                TYPE_LONG => u64::from(r.u32(value_at)?),
                TYPE_LONG8 if big => r.u64(value_at)?,
                _ => {
                    return Err(ScanError::Corrupt(format!(
                        "image size tag {tag} has unexpected type {typ}"
                    )))
                }
            };
            if tag == TAG_IMAGE_WIDTH {
                width = Some(value);
            } else {
                height = Some(value);
            }
        }
        let (Some(w), Some(h)) = (width, height) else {
            return Err(ScanError::Corrupt(format!(
                "page {} has no image width or height",
                pages + 1
            )));
        };
        if w == 0 || h == 0 {
            return Err(ScanError::Corrupt(format!(
                "page {} is {w}×{h} pixels",
                pages + 1
            )));
        }
        if pages == 0 {
            first = (w, h);
        }
        max_side = (max_side.0.max(w), max_side.1.max(h));
        pages += 1;
        next = if big {
            r.u64(next_at)?
        } else {
            u64::from(r.u32(next_at)?)
        };
    }
    Ok(TiffScan {
        pages,
        first,
        max_side,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(tag: u16, typ: u16, value: u32) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&tag.to_le_bytes());
        v.extend_from_slice(&typ.to_le_bytes());
        v.extend_from_slice(&1u32.to_le_bytes());
        v.extend_from_slice(&value.to_le_bytes());
        v
    }

    #[test]
    fn counts_pages_and_reads_sizes() {
        // header, then two IFDs of two entries each.
        let mut b = b"II*\0".to_vec();
        b.extend_from_slice(&8u32.to_le_bytes());
        let ifd2 = 8 + 2 + 24 + 4;
        b.extend_from_slice(&2u16.to_le_bytes());
        b.extend(entry(256, TYPE_LONG, 7));
        b.extend(entry(257, TYPE_SHORT, 5));
        b.extend_from_slice(&(ifd2 as u32).to_le_bytes());
        b.extend_from_slice(&2u16.to_le_bytes());
        b.extend(entry(256, TYPE_LONG, 9));
        b.extend(entry(257, TYPE_LONG, 3));
        b.extend_from_slice(&0u32.to_le_bytes());
        let s = scan(&b).expect("scan");
        assert_eq!(
            s,
            TiffScan {
                pages: 2,
                first: (7, 5),
                max_side: (9, 5)
            }
        );
    }

    #[test]
    fn detects_cycles_and_truncation() {
        let mut b = b"II*\0".to_vec();
        b.extend_from_slice(&8u32.to_le_bytes());
        b.extend_from_slice(&2u16.to_le_bytes());
        b.extend(entry(256, TYPE_LONG, 7));
        b.extend(entry(257, TYPE_LONG, 5));
        b.extend_from_slice(&8u32.to_le_bytes()); // points back to itself
        assert!(matches!(scan(&b), Err(ScanError::Corrupt(m)) if m.contains("cycle")));
        assert!(matches!(scan(&b[..20]), Err(ScanError::Corrupt(_))));
        assert_eq!(scan(b"hello"), Err(ScanError::NotTiff));
    }
}
