//! Benchmarks of the label edits and their undo (issue 6 targets: merging two large bodies of
//! flyem-medulla-fib under 100 ms, undo of a 3D fill under 100 ms, a brush stroke on a 1024²
//! slice well under a 16 ms frame).
//!
//! `cargo run --release -p emstudio-core --example bench_edit -- /work/shared/data`
//!
//! Prints one JSON line per measurement with the median wall time of several runs, each on a
//! fresh copy of the labels: `{"op":"<name>","ms":<median>,"voxels":<changed>}`.

use emstudio_core::edit_ops::{brush_stroke, flood_fill, merge, FillBound, Locked};
use emstudio_core::journal::Edit;
use emstudio_core::stack::{is_stack_file_name, read_stack, Limits};
use emstudio_core::volume::{Shape, Volume};
use emstudio_core::AnyVolume;
use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

const REPEATS: usize = 5;

fn load(dir: &Path) -> Volume<u16> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("data folder") {
        let entry = entry.expect("dir entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_stack_file_name(&name) {
            files.push((name, std::fs::read(entry.path()).expect("read slice")));
        }
    }
    match read_stack(files, &Limits::default()).expect("decode stack") {
        AnyVolume::U16(v) => v,
        other => panic!("expected 16-bit labels, got {:?}", other.dtype()),
    }
}

/// Median ms of `op` and of undoing its edit, each run on a fresh copy of `volume`.
fn time_with_undo<T: emstudio_core::volume::Voxel>(
    volume: &Volume<T>,
    mut op: impl FnMut(&mut Volume<T>) -> Edit<T>,
) -> (f64, f64, usize) {
    let (mut forward, mut backward, mut voxels) = (Vec::new(), Vec::new(), 0);
    for _ in 0..REPEATS {
        let mut v = volume.clone();
        let t = Instant::now();
        let edit = op(&mut v);
        forward.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        edit.apply(&mut v, false).expect("undo");
        backward.push(t.elapsed().as_secs_f64() * 1e3);
        voxels = edit.voxels();
    }
    forward.sort_by(f64::total_cmp);
    backward.sort_by(f64::total_cmp);
    (forward[REPEATS / 2], backward[REPEATS / 2], voxels)
}

fn report(op: &str, ms: f64, voxels: usize) {
    println!("{{\"op\":\"{op}\",\"ms\":{ms:.3},\"voxels\":{voxels}}}");
}

fn main() {
    let data = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "../shared/data".into());
    let labels = load(&Path::new(&data).join("flyem-medulla-fib/label"));
    let mut sizes: HashMap<u16, usize> = HashMap::new();
    let s = labels.shape();
    for z in 0..s.z {
        for v in labels.slice(z) {
            *sizes.entry(v).or_default() += 1;
        }
    }
    let mut bodies: Vec<(u16, usize)> = sizes.into_iter().filter(|(id, _)| *id != 0).collect();
    bodies.sort_by_key(|&(id, n)| (std::cmp::Reverse(n), id));
    let (a, b) = (bodies[0].0, bodies[1].0);
    let none = Locked::new();

    let (ms, undo_ms, n) = time_with_undo(&labels, |v| merge(v, &[b], a, &none));
    report("merge the two largest bodies (250³)", ms, n);
    report("undo that merge", undo_ms, n);

    // A voxel of the largest body as the seed of a 3D fill that recolours it.
    let seed = (0..s.z)
        .flat_map(|z| (0..s.y).map(move |y| (z, y)))
        .find_map(|(z, y)| {
            (0..s.x)
                .find(|&x| labels.get(z, y, x, 0) == a)
                .map(|x| (z, y, x))
        })
        .expect("a voxel of the largest body");
    let (ms, undo_ms, n) = time_with_undo(&labels, |v| {
        flood_fill::<u16, u8>(v, seed, true, FillBound::SameLabel, 65000, &none).expect("fill")
    });
    report("3D fill of the largest body (250³)", ms, n);
    report("undo that 3D fill", undo_ms, n);

    // A 400-pixel stroke, radius 10, across a 1024² slice.
    let slice = Volume::<u32>::new(Shape::new(1, 1024, 1024), 1).expect("slice");
    let points: Vec<(f32, f32)> = (0..=40)
        .map(|i| (300.0 + 5.0 * i as f32, 200.0 + 10.0 * i as f32))
        .collect();
    let (ms, undo_ms, n) = time_with_undo(&slice, |v| {
        brush_stroke(v, 0, &points, 10.0, 7, &Locked::new())
    });
    report("brush stroke, radius 10, 450 px on a 1024² slice", ms, n);
    report("undo that stroke", undo_ms, n);
}
