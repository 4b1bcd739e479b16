//! Helpers shared by the integration tests that read the real EM data sets.

use std::path::{Path, PathBuf};

/// The places searched for the shared EM data, in order: `$EMSTUDIO_SHARED_DATA`,
/// `../shared/data` next to the repository, `/work/shared/data` (as `cargo xtask` does). Cargo
/// runs integration tests in the crate's folder, so the relative one is resolved from the
/// manifest folder (the repository is two levels up from `crates/core`).
fn candidates() -> Vec<PathBuf> {
    let repo =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join("../..");
    let mut out: Vec<PathBuf> = std::env::var_os("EMSTUDIO_SHARED_DATA")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .into_iter()
        .collect();
    out.push(repo.join("../shared/data"));
    out.push(PathBuf::from("/work/shared/data"));
    out
}

/// The shared EM data folder: the first candidate that holds `isbi2012/`.
pub fn shared_data() -> Option<PathBuf> {
    candidates()
        .into_iter()
        .find(|p| p.join("isbi2012").is_dir())
}

/// Whether this runs under CI (`CI` set and not empty), where missing data is an error.
fn under_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// The folder `sub` of the shared EM data (e.g. `isbi2012/image`). When it is missing this
/// panics under CI, and otherwise prints why the test is skipped and returns `None`.
pub fn shared_dir(sub: &str) -> Option<PathBuf> {
    let message = match shared_data() {
        Some(root) if root.join(sub).is_dir() => return Some(root.join(sub)),
        Some(root) => format!("{} not found", root.join(sub).display()),
        None => {
            let looked: Vec<String> = candidates()
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            format!(
                "shared data not found (no isbi2012/ in {}; set EMSTUDIO_SHARED_DATA)",
                looked.join(", ")
            )
        }
    };
    if under_ci() {
        panic!("CI is set and the test needs real data: {message}");
    }
    eprintln!("skipped: {message}");
    None
}
