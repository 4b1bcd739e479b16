//! Helpers shared by the companion's integration tests.

use emstudio_core::stack::{export, BitDepth, ExportFormat, ExportOptions};
use emstudio_core::AnyVolume;
use std::path::Path;

/// Writes a volume as a PNG series into `dir`.
pub fn write_png_series(volume: &AnyVolume, dir: &Path) {
    std::fs::create_dir_all(dir).expect("mkdir");
    let files = export(
        volume,
        &ExportOptions {
            format: ExportFormat::PngSeries,
            depth: BitDepth::Native,
            rescale: false,
            base_name: "s".into(),
        },
    )
    .expect("export");
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes).expect("write");
    }
}
