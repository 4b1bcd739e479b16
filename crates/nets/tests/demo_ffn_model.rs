//! The flood-filling network shipped with the FlyEM demo (`demo/flyem-medulla/models/`, made
//! by `scripts/demo_ffn_model.sh` from slices 0–179 of the 250³ cube in ../shared/data): on
//! slices 190–249, which its training never read, its masks from balanced centres must score
//! far above the same network untrained (whose masks stay at the seed), and the fills the Edit
//! panel runs from clicks inside large neurons must keep most of what they fill inside those
//! neurons. The intensity flood fill (the classic baseline, `threshold_fill_counts`, and the
//! Edit panel's fill by EM intensity from the same clicks) is printed beside it
//! (BENCHMARKS.md).

use emstudio_core::stack::{read_stack, Limits};
use emstudio_nets::ffn::file::FfnModelFile;
use emstudio_nets::ffn::infer::{Canvas, FfnInferOptions, NetPredictor};
use emstudio_nets::ffn::train::{
    balanced_centres, evaluate_masks, threshold_fill_counts, FfnTrainConfig, FfnVolume,
};
use emstudio_nets::Device;
use ndarray::s;
use std::path::{Path, PathBuf};

fn shared_data() -> PathBuf {
    let dir = std::env::var_os("EMSTUDIO_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
                .join("../../../shared/data")
        })
        .join("flyem-medulla-fib");
    assert!(
        dir.join("image").is_dir(),
        "{}: the FlyEM cube is needed (set EMSTUDIO_SHARED_DATA)",
        dir.display()
    );
    dir
}

fn layer(dir: &Path) -> emstudio_core::AnyVolume {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            (n, std::fs::read(e.path()).expect("read"))
        })
        .filter(|(n, _)| n.ends_with(".png") || n.ends_with(".tif") || n.ends_with(".tiff"))
        .collect();
    files.sort();
    read_stack(files, &Limits::default()).expect("decode")
}

#[test]
fn the_shipped_ffn_scores_far_above_the_untrained_network_on_slices_it_never_saw() {
    let demo =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join("../../demo/flyem-medulla");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(demo.join("dataset.json")).expect("dataset.json"))
            .expect("json");
    let path = manifest["models"]
        .as_array()
        .and_then(|m| {
            m.iter()
                .find_map(|p| p.as_str().filter(|p| p.ends_with(".ffn")))
        })
        .expect("dataset.json lists the FFN model");
    let file = FfnModelFile::from_bytes(&std::fs::read(demo.join(path)).expect("model"))
        .expect("a valid FFN model");
    let training = file.header.provenance.training.as_ref().expect("settings");
    assert!(training["steps"].as_u64().is_some_and(|s| s >= 1000));

    let data = shared_data();
    let image = layer(&data.join("image"))
        .to_unit_f32_array()
        .expect("gray");
    let labels = layer(&data.join("label")).to_label_array().expect("labels");
    let held_out = FfnVolume::new(
        "flyem-medulla-fib, slices 190–249",
        image.slice(s![190..250, .., ..]).to_owned(),
        labels.slice(s![190..250, .., ..]).to_owned(),
    )
    .expect("volume");
    let config = FfnTrainConfig {
        network: file.header.network.clone(),
        ..FfnTrainConfig::default()
    };
    let centres = balanced_centres(&held_out, &config, 32, 1).expect("centres");
    let device = Device::flex();
    let score = |net: &emstudio_nets::ffn::net::ConvStack3d| {
        evaluate_masks(
            net,
            &file.header,
            &held_out,
            &centres,
            config.move_threshold,
            8,
            &device,
        )
        .expect("evaluate")
    };
    let trained = score(&file.load_net(&device).expect("weights"));
    let untrained = score(&emstudio_nets::train::seeded_init(&device, 1, || {
        file.header.network.build(&device)
    }));
    let baseline = threshold_fill_counts(&held_out, &centres, config.canvas_zyx());
    eprintln!(
        "held-out mask F1: shipped {:.3} (precision {:.3}, recall {:.3}), untrained {:.3}, \
         intensity flood fill {:.3}",
        trained.f1(),
        trained.precision(),
        trained.recall(),
        untrained.f1(),
        baseline.f1()
    );
    // `>` fails on NaN.
    assert!(
        trained.f1() > untrained.f1() + 0.3,
        "shipped {} vs untrained {}",
        trained.f1(),
        untrained.f1()
    );

    // The Edit panel's fill from clicks at the deepest points of the five largest neurons of
    // the held-out block's middle slice, in the browser test's box (±12 slices, ±24 pixels),
    // beside the intensity flood fill (the Edit panel's "Fill by EM intensity" at the Otsu
    // threshold) from the same clicks in the same boxes.
    let z = 30;
    let mid = labels.slice(s![190 + z, .., ..]).to_owned();
    let mut sizes = std::collections::HashMap::new();
    for &l in mid.iter().filter(|&&l| l != 0) {
        *sizes.entry(l).or_insert(0usize) += 1;
    }
    let mut largest: Vec<(u32, usize)> = sizes.into_iter().collect();
    largest.sort_by_key(|&(id, n)| (std::cmp::Reverse(n), id));
    let net = file.load_net(&device).expect("weights");
    let otsu = emstudio_core::filters::intensity::otsu_threshold(
        held_out.image.as_slice().expect("standard layout"),
        256,
    );
    let (mut ffn, mut flood) = (Counts::default(), Counts::default());
    for &(id, _) in largest.iter().take(5) {
        let inside = mid.mapv(|l| l == id);
        let depth = emstudio_core::distance::edt_2d(inside.view(), [1.0, 1.0]).expect("edt");
        let ((y, x), _) = depth
            .indexed_iter()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .expect("a deepest point");
        let lo = [z - 12, y.saturating_sub(24), x.saturating_sub(24)];
        let hi = [z + 13, (y + 25).min(250), (x + 25).min(250)];
        let sel = s![lo[0]..hi[0], lo[1]..hi[1], lo[2]..hi[2]];
        let (image, truth) = (held_out.image.slice(sel), held_out.labels.slice(sel));
        let click = [z - lo[0], y - lo[1], x - lo[2]];
        let mut canvas = Canvas::new(
            NetPredictor {
                net: &net,
                device: device.clone(),
            },
            &file.header.network,
            file.header.normalization,
            image,
            // The Edit panel's default move threshold.
            FfnInferOptions {
                move_threshold: 0.5,
                ..FfnInferOptions::default()
            },
        )
        .expect("canvas");
        let fill = canvas.fill_at(click, 4000).expect("fill");
        let kept = canvas.seed_kept(click).1;
        let mask = canvas.object_mask().mapv(|m| m && kept);
        let side = image[click] > otsu;
        let by_intensity = flood_fill(&image.mapv(|v| (v > otsu) == side), click);
        let (a, b) = (
            ffn.add(&mask, truth, id),
            flood.add(&by_intensity, truth, id),
        );
        eprintln!(
            "click (z {}, y {y}, x {x}) in neuron {id}: FFN {} steps, {} voxels, precision \
             {:.2} recall {:.2}; intensity fill {} voxels, precision {:.2} recall {:.2}",
            190 + z,
            fill.steps,
            a.tp + a.fp,
            a.precision(),
            a.recall(),
            b.tp + b.fp,
            b.precision(),
            b.recall()
        );
    }
    eprintln!(
        "five clicks: FFN precision {:.3} recall {:.3} F1 {:.3}; intensity fill precision {:.3} \
         recall {:.3} F1 {:.3}",
        ffn.precision(),
        ffn.recall(),
        ffn.f1(),
        flood.precision(),
        flood.recall(),
        flood.f1()
    );
    assert!(
        ffn.tp + ffn.fp >= 1000,
        "the fills kept {} voxels",
        ffn.tp + ffn.fp
    );
    assert!(
        ffn.precision() > 0.7,
        "FFN fill precision {}",
        ffn.precision()
    );
}

/// Voxels of a fill against the clicked neuron in its box.
#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    tp: u64,
    fp: u64,
    fn_: u64,
}

impl Counts {
    fn add(
        &mut self,
        mask: &ndarray::Array3<bool>,
        truth: ndarray::ArrayView3<'_, u32>,
        id: u32,
    ) -> Counts {
        let mut c = Counts::default();
        for (&m, &t) in mask.iter().zip(truth.iter()) {
            match (m, t == id) {
                (true, true) => c.tp += 1,
                (true, false) => c.fp += 1,
                (false, true) => c.fn_ += 1,
                _ => {}
            }
        }
        (self.tp, self.fp, self.fn_) = (self.tp + c.tp, self.fp + c.fp, self.fn_ + c.fn_);
        c
    }
    fn precision(&self) -> f64 {
        self.tp as f64 / (self.tp + self.fp).max(1) as f64
    }
    fn recall(&self) -> f64 {
        self.tp as f64 / (self.tp + self.fn_).max(1) as f64
    }
    fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r > 0.0 {
            2.0 * p * r / (p + r)
        } else {
            0.0
        }
    }
}

/// The voxels of `inside` 6-connected to `seed`.
fn flood_fill(inside: &ndarray::Array3<bool>, seed: [usize; 3]) -> ndarray::Array3<bool> {
    let dim = inside.dim();
    let dims = [dim.0, dim.1, dim.2];
    let mut out = ndarray::Array3::from_elem(dim, false);
    let mut queue = std::collections::VecDeque::from([seed]);
    out[seed] = true;
    while let Some(p) = queue.pop_front() {
        for a in 0..3 {
            for up in [false, true] {
                let mut q = p;
                match up {
                    true if p[a] + 1 < dims[a] => q[a] += 1,
                    false if p[a] > 0 => q[a] -= 1,
                    _ => continue,
                }
                if inside[q] && !out[q] {
                    out[q] = true;
                    queue.push_back(q);
                }
            }
        }
    }
    out
}
