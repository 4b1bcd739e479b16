//! Latency of the Edit panel's FFN fill, natively: the FlyEM demo's shipped flood-filling
//! network (`demo/flyem-medulla/models/flyem-ffn-light.ffn`) grows the neuron at a click
//! (slice 25, x 209, y 103, the click of the browser test) in the Edit panel's default box
//! (±12 slices, ±24 pixels, as the browser test) and a larger one (±20, ±40), as the network
//! worker does (`Canvas`, one field of view at a time). Prints one JSON line per box: milliseconds, steps, voxels kept. The
//! browser's number (CPU wasm) comes from the end-to-end test's printout; BENCHMARKS.md puts
//! them side by side.
//!
//! Usage: bench_ffn_fill [repeats]   (device: the CPU, or `EMSTUDIO_BENCH_DEVICE`)

use anyhow::{Context, Result};
use emstudio_core::stack::{read_stack, Limits};
use emstudio_nets::ffn::file::FfnModelFile;
use emstudio_nets::ffn::infer::{Canvas, FfnInferOptions, NetPredictor};
use emstudio_nets::native_device::{pick_device, DeviceChoice};
use ndarray::s;
use std::path::Path;
use std::time::Instant;

fn main() -> Result<()> {
    let repeats: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(3);
    let choice: DeviceChoice = std::env::var("EMSTUDIO_BENCH_DEVICE")
        .unwrap_or_else(|_| "cpu".into())
        .parse()?;
    let (device, described) = pick_device(choice)?;
    let demo =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join("../../demo/flyem-medulla");
    let model = demo.join("models/flyem-ffn-light.ffn");
    let file = FfnModelFile::from_bytes(
        &std::fs::read(&model).with_context(|| model.display().to_string())?,
    )?;
    let image_path = demo.join("image/flyem-medulla-image.tif");
    let image = read_stack(
        vec![(
            "image.tif".into(),
            std::fs::read(&image_path).with_context(|| image_path.display().to_string())?,
        )],
        &Limits::default(),
    )?
    .to_unit_f32_array()?;
    let net = file.load_net(&device)?;
    let seed = [25usize, 103, 209];
    let (nz, ny, nx) = image.dim();
    for radius in [[12usize, 24, 24], [20, 40, 40]] {
        let lo = [0, 1, 2].map(|a| seed[a].saturating_sub(radius[a]));
        let hi = [
            (seed[0] + radius[0] + 1).min(nz),
            (seed[1] + radius[1] + 1).min(ny),
            (seed[2] + radius[2] + 1).min(nx),
        ];
        let cut = image.slice(s![lo[0]..hi[0], lo[1]..hi[1], lo[2]..hi[2]]);
        let at = [0, 1, 2].map(|a| seed[a] - lo[a]);
        let mut times = Vec::new();
        let (mut steps, mut voxels) = (0, 0);
        for _ in 0..repeats {
            let t0 = Instant::now();
            let mut canvas = Canvas::new(
                NetPredictor {
                    net: &net,
                    device: device.clone(),
                },
                &file.header.network,
                file.header.normalization,
                cut,
                // The Edit panel's default move threshold.
                FfnInferOptions {
                    move_threshold: 0.5,
                    ..FfnInferOptions::default()
                },
            )?;
            let fill = canvas.fill_at(at, 4000)?;
            voxels = canvas.object_mask().iter().filter(|&&m| m).count();
            steps = fill.steps;
            times.push(t0.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        println!(
            "{}",
            serde_json::json!({
                "box": [hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]],
                "median_ms": times[times.len() / 2],
                "steps": steps,
                "voxels": voxels,
                "device": described,
            })
        );
    }
    Ok(())
}
