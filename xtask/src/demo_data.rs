//! `cargo xtask demo-data`: writes the FlyEM demo (`demo/flyem-medulla/`) from the shared data,
//! slices 0–49 of flyem-medulla-fib, as one Deflate-compressed multi-page TIFF per layer.
//!
//! One file per layer, not 50 PNGs: a first visit opens the demo with two requests instead of a
//! hundred, which on a fresh browser profile cost about 400 ms before anything could be decoded
//! (BENCHMARKS.md, cold start); one file also decodes in the data worker without starting the
//! helper workers. `crates/core/tests/stack_real_data.rs` checks the pixels against the shared
//! slices.

use anyhow::{Context, Result};
use emstudio_core::stack::{is_stack_file_name, read_stack, sort_natural, Limits};
use emstudio_core::AnyVolume;
use std::path::Path;
use tiff::encoder::compression::{Deflate, DeflateLevel};
use tiff::encoder::{colortype, TiffEncoder};

/// Slices of flyem-medulla-fib in the demo.
const SLICES: usize = 50;

/// Rewrites `demo/flyem-medulla/{image,label}` from `shared` (the shared data folder).
pub fn write(shared: &Path) -> Result<()> {
    for layer in ["image", "label"] {
        let from = shared.join("flyem-medulla-fib").join(layer);
        let mut names: Vec<String> = std::fs::read_dir(&from)
            .with_context(|| format!("{}", from.display()))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| is_stack_file_name(n))
            .collect();
        sort_natural(&mut names);
        names.truncate(SLICES);
        let files = names
            .iter()
            .map(|n| Ok((n.clone(), std::fs::read(from.join(n))?)))
            .collect::<Result<Vec<_>>>()?;
        let volume = read_stack(files, &Limits::default())?;
        let to = Path::new("demo/flyem-medulla").join(layer);
        std::fs::create_dir_all(&to)?;
        for entry in std::fs::read_dir(&to)? {
            let path = entry?.path();
            if is_stack_file_name(&path.file_name().unwrap_or_default().to_string_lossy()) {
                std::fs::remove_file(&path)?;
            }
        }
        let file = to.join(format!("flyem-medulla-{layer}.tif"));
        std::fs::write(&file, tiff_bytes(&volume)?)?;
        eprintln!(
            "{}: {} slices, {} KiB",
            file.display(),
            volume.shape().z,
            std::fs::metadata(&file)?.len() / 1024
        );
    }
    Ok(())
}

/// A gray 8- or 16-bit volume as a Deflate-compressed multi-page TIFF.
fn tiff_bytes(volume: &AnyVolume) -> Result<Vec<u8>> {
    let shape = volume.shape();
    let (w, h) = (shape.x as u32, shape.y as u32);
    let mut out = std::io::Cursor::new(Vec::new());
    let deflate = || Deflate::with_level(DeflateLevel::Best);
    {
        let mut encoder = TiffEncoder::new(&mut out)?;
        match volume {
            AnyVolume::U8(v) => {
                for page in v.to_array()?.outer_iter() {
                    let data: Vec<u8> = page.iter().copied().collect();
                    encoder.write_image_with_compression::<colortype::Gray8, _>(
                        w,
                        h,
                        deflate(),
                        &data,
                    )?;
                }
            }
            AnyVolume::U16(v) => {
                for page in v.to_array()?.outer_iter() {
                    let data: Vec<u16> = page.iter().copied().collect();
                    encoder.write_image_with_compression::<colortype::Gray16, _>(
                        w,
                        h,
                        deflate(),
                        &data,
                    )?;
                }
            }
            other => anyhow::bail!(
                "the demo holds 8- and 16-bit gray layers, not {:?}",
                other.dtype()
            ),
        }
    }
    Ok(out.into_inner())
}
