//! Benchmarks of the distance transform and watershed kernels on flyem-medulla-fib (250³).
//!
//! Run: `cargo run --release -p emstudio-core --example bench_watershed -- /work/shared/data
//! [--runs N] [--only KERNEL] [--dump DIR]`. Prints one JSON line per kernel,
//! `{"kernel":..,"impl":"emstudio","ms":<median wall>,"cpu_ms":<median CPU time>}`; `scripts/golden/bench_watershed.py` times
//! the references (scipy, edt, scikit-image) on the same inputs with the same kernel names.
//! `--dump DIR` also writes the outputs as `.npy` for a voxel-by-voxel comparison.
//!
//! Inputs (mirrored in the Python script):
//! - `fg`: labelled voxels that are not on a label boundary (the label differs from the +x,
//!   +y or +z neighbour) — "distance to the nearest membrane".
//! - `edt_3d`: binary EDT of `fg`, voxel size 10×10×10 nm; `edt_3d_aniso`: the same with
//!   40×10×10 nm; `edt_labels_3d`: per-label EDT of the ground-truth labels, 10 nm.
//! - `watershed_3d`: elevation `255 - image` (membranes are dark), markers = ground-truth
//!   label where the EDT of `fg` (in voxels) is ≥ 5, 6-connectivity, no mask.
//! - `peak_local_max_3d`: peaks of the 10 nm EDT of `fg`, `min_distance` 5, `labels = fg`.
//! - `distance_watershed_3d`: the whole pipeline on `fg`, 10 nm, `min_distance` 5, C6.

use emstudio_core::distance::{edt_3d, edt_labels_3d};
use emstudio_core::labels::watershed::{distance_watershed, peak_local_max_3d, watershed_3d};
use emstudio_core::neighborhood::Connectivity3;
use emstudio_core::progress::NoProgress;
use emstudio_core::stack::{read_stack, Limits};
use emstudio_core::AnyVolume;
use ndarray::Array3;
use std::path::{Path, PathBuf};
use std::time::Instant;

fn load(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "png"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p
                .file_name()
                .expect("file name")
                .to_string_lossy()
                .to_string();
            (name, std::fs::read(&p).expect("read png"))
        })
        .collect()
}

fn to_u32(v: AnyVolume) -> Array3<u32> {
    match v {
        AnyVolume::U8(v) => v.to_array().expect("gray").mapv(u32::from),
        AnyVolume::U16(v) => v.to_array().expect("gray").mapv(u32::from),
        AnyVolume::U32(v) => v.to_array().expect("gray"),
        AnyVolume::F32(_) => panic!("float labels"),
    }
}

/// Result of one kernel.
enum Out {
    F(Array3<f32>),
    L(Array3<u32>),
    P(Vec<[usize; 3]>),
}

impl Out {
    fn f(self) -> Array3<f32> {
        match self {
            Out::F(a) => a,
            _ => panic!("not a float volume"),
        }
    }
    fn l(self) -> Array3<u32> {
        match self {
            Out::L(a) => a,
            _ => panic!("not a label volume"),
        }
    }
    fn p(self) -> Vec<[usize; 3]> {
        match self {
            Out::P(a) => a,
            _ => panic!("not a peak list"),
        }
    }
}

/// CPU time of this (single-threaded) process in ms, from `/proc/self/schedstat` (Linux);
/// the machine is shared, so CPU time is a steadier comparison than wall time.
fn cpu_ms() -> f64 {
    std::fs::read_to_string("/proc/self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(f64::NAN, |ns| ns / 1e6)
}

/// Median wall time and median CPU time (ms) over `runs` runs, and the last result.
fn median_ms<T>(runs: usize, mut f: impl FnMut() -> T) -> ((f64, f64), T) {
    let mut wall = Vec::new();
    let mut cpu = Vec::new();
    let mut out = None;
    for _ in 0..runs {
        let c = cpu_ms();
        let t = Instant::now();
        let r = f();
        wall.push(t.elapsed().as_secs_f64() * 1e3);
        cpu.push(cpu_ms() - c);
        out = Some(r);
    }
    wall.sort_by(|a, b| a.total_cmp(b));
    cpu.sort_by(|a, b| a.total_cmp(b));
    (
        (wall[wall.len() / 2], cpu[cpu.len() / 2]),
        out.expect("runs >= 1"),
    )
}

fn report(kernel: &str, (ms, cpu): (f64, f64)) {
    println!(
        "{{\"kernel\":\"{kernel}\",\"impl\":\"emstudio\",\"ms\":{ms:.1},\"cpu_ms\":{cpu:.1}}}"
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let data = PathBuf::from(args.first().map_or("/work/shared/data", |s| s.as_str()));
    let mut runs = 5;
    let mut dump: Option<PathBuf> = None;
    let mut only: Option<String> = None;
    let mut i = 1;
    while i < args.len() {
        match args[i].as_str() {
            "--runs" => {
                runs = args[i + 1].parse().expect("--runs N");
                i += 1;
            }
            "--only" => {
                only = Some(args[i + 1].clone());
                i += 1;
            }
            "--dump" => {
                dump = Some(PathBuf::from(&args[i + 1]));
                i += 1;
            }
            other => panic!("unknown argument {other}"),
        }
        i += 1;
    }
    let fly = data.join("flyem-medulla-fib");
    let labels = to_u32(read_stack(load(&fly.join("label")), &Limits::default()).expect("labels"));
    let image = to_u32(read_stack(load(&fly.join("image")), &Limits::default()).expect("image"));
    let (nz, ny, nx) = labels.dim();

    // Foreground: labelled and not on a boundary with the +x/+y/+z neighbour.
    let mut fg = labels.mapv(|l| u8::from(l != 0));
    for z in 0..nz {
        for y in 0..ny {
            for x in 0..nx {
                let l = labels[[z, y, x]];
                let b = (x + 1 < nx && labels[[z, y, x + 1]] != l)
                    || (y + 1 < ny && labels[[z, y + 1, x]] != l)
                    || (z + 1 < nz && labels[[z + 1, y, x]] != l);
                if b {
                    fg[[z, y, x]] = 0;
                }
            }
        }
    }

    let want = |k: &str| only.as_deref().is_none_or(|o| o == k);
    // Runs `f` `runs` times and reports it when selected, else once untimed (its result may
    // be an input of a later kernel).
    let timed = |kernel: &str, f: &mut dyn FnMut() -> Out| -> Out {
        if want(kernel) {
            let (t, out) = median_ms(runs, &mut *f);
            report(kernel, t);
            out
        } else {
            f()
        }
    };

    let dist = timed("edt_3d", &mut || {
        Out::F(edt_3d(fg.view(), [10.0; 3], &mut NoProgress).expect("edt"))
    })
    .f();
    if want("edt_3d_aniso") {
        timed("edt_3d_aniso", &mut || {
            Out::F(edt_3d(fg.view(), [40.0, 10.0, 10.0], &mut NoProgress).expect("edt"))
        });
    }
    let dist_labels = if want("edt_labels_3d") {
        Some(
            timed("edt_labels_3d", &mut || {
                Out::F(edt_labels_3d(labels.view(), [10.0; 3], &mut NoProgress).expect("edt"))
            })
            .f(),
        )
    } else {
        None
    };

    let vox = edt_3d(fg.view(), [1.0; 3], &mut NoProgress).expect("edt");
    let markers = ndarray::Zip::from(&labels)
        .and(&vox)
        .map_collect(|&l, &d| if d >= 5.0 { l } else { 0 });
    let elevation = image.mapv(|v| 255.0 - v as f32);
    let ws = want("watershed_3d").then(|| {
        timed("watershed_3d", &mut || {
            Out::L(
                watershed_3d(
                    elevation.view(),
                    markers.view(),
                    None,
                    Connectivity3::C6,
                    &mut NoProgress,
                )
                .expect("watershed"),
            )
        })
        .l()
    });

    let fg_labels = fg.mapv(u32::from);
    let peaks = want("peak_local_max_3d").then(|| {
        timed("peak_local_max_3d", &mut || {
            Out::P(
                peak_local_max_3d(dist.view(), 5, Some(fg_labels.view()), &mut NoProgress)
                    .expect("peaks"),
            )
        })
        .p()
    });

    let dws = want("distance_watershed_3d").then(|| {
        timed("distance_watershed_3d", &mut || {
            Out::L(
                distance_watershed(fg.view(), [10.0; 3], 5, Connectivity3::C6, &mut NoProgress)
                    .expect("pipeline"),
            )
        })
        .l()
    });

    if let Some(dir) = dump {
        std::fs::create_dir_all(&dir).expect("dump dir");
        let w = |name: &str, a: &Array3<f32>| {
            ndarray_npy::write_npy(dir.join(name), a).expect("write npy");
        };
        let wl = |name: &str, a: &Array3<u32>| {
            ndarray_npy::write_npy(dir.join(name), a).expect("write npy");
        };
        w("edt_3d.npy", &dist);
        if let Some(d) = &dist_labels {
            w("edt_labels_3d.npy", d);
        }
        if let Some(a) = &ws {
            wl("watershed_3d.npy", a);
        }
        if let Some(a) = &dws {
            wl("distance_watershed_3d.npy", a);
        }
        if let Some(peaks) = &peaks {
            let p: Vec<u64> = peaks.iter().flat_map(|p| p.map(|v| v as u64)).collect();
            let p = ndarray::Array2::from_shape_vec((peaks.len(), 3), p).expect("n x 3");
            ndarray_npy::write_npy(dir.join("peak_local_max_3d.npy"), &p).expect("write npy");
        }
        eprintln!("wrote outputs to {}", dir.display());
    }
}
