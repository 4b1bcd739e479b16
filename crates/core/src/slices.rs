//! Slice lists as users type them: `"0-4, 7, 10-12"` → sorted, de-duplicated indices.
//! Shared by the CLI (`--slices`) and the browser panels (training and inference slices).

/// A slice list that cannot be used; the message quotes the part at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SliceListError(String);

/// Parses a comma-separated list of slices and inclusive ranges, each below `depth`.
///
/// ```
/// use emstudio_core::slices::parse_slice_list;
/// assert_eq!(parse_slice_list("0-2, 5,4", 10).unwrap(), vec![0, 1, 2, 4, 5]);
/// assert!(parse_slice_list("12", 10).unwrap_err().to_string().contains("10 slices"));
/// ```
pub fn parse_slice_list(text: &str, depth: usize) -> Result<Vec<usize>, SliceListError> {
    let number = |s: &str| {
        s.trim()
            .parse::<usize>()
            .map_err(|_| SliceListError(format!("slice {:?} is not a number", s.trim())))
    };
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (number(a)?, number(b)?),
            None => (number(part)?, number(part)?),
        };
        if a > b {
            return Err(SliceListError(format!(
                "slice range {part}: start after end"
            )));
        }
        if b >= depth {
            return Err(SliceListError(format!(
                "slice {b} requested, the stack has {depth} slices (0–{})",
                depth.saturating_sub(1)
            )));
        }
        out.extend(a..=b);
    }
    out.sort_unstable();
    out.dedup();
    if out.is_empty() {
        return Err(SliceListError("no slices selected".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_ranges_and_errors() {
        assert_eq!(parse_slice_list(" 3 ", 4).unwrap(), vec![3]);
        assert_eq!(parse_slice_list("1-3,2", 4).unwrap(), vec![1, 2, 3]);
        assert!(parse_slice_list("3-1", 10).is_err());
        assert!(parse_slice_list("a", 10)
            .unwrap_err()
            .to_string()
            .contains("\"a\""));
        assert!(parse_slice_list(" , ", 10).is_err());
        assert!(parse_slice_list("0-10", 10).is_err());
    }
}
