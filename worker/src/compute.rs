//! Computations that make new layers: filter pipelines (whole stack or a one-slice preview),
//! the postprocessing chain (in blocks: [`crate::labelling`]), and evaluation against ground truth with its error map.
//!
//! Platform-free and synchronous, like [`crate::workspace`]. The worker runs filter pipelines
//! in slabs of slices ([`FilterJob::step`]) and yields to its event loop between slabs, so a
//! `Cancel` message is seen within one slab; a pipeline with a 3D step runs as one slab. The
//! kernels themselves report progress through [`Progress`], which the worker forwards as
//! protocol progress events (and which stops them when it returns `Break`).

use crate::labelling::LabelJob;
use crate::workspace::{Rendered, Workspace};
use emstudio_core::filters::{apply_pipeline, FilterError, Pipeline, Scope};
use emstudio_core::labels::postprocess::PostprocessParams;
use emstudio_core::metrics::isbi::{isbi_evaluate, IsbiParams, IsbiReport};
use emstudio_core::metrics::{
    center_positions, evaluate_labels_3d, EvaluateParams, Evaluation, MetricsError,
};
use emstudio_core::progress::{Phase, Progress};
use emstudio_core::render::render_intensity;
use emstudio_core::{AnyVolume, Shape, Volume};
use emstudio_protocol::LayerId;
use ndarray::{Array3, ArrayView3};
use std::collections::HashSet;
use std::ops::Range;

/// Why a computation did not produce a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComputeError {
    /// The progress callback asked to stop.
    Cancelled,
    /// A user-facing message naming the layer and the problem.
    Failed(String),
}

impl From<String> for ComputeError {
    fn from(s: String) -> Self {
        ComputeError::Failed(s)
    }
}

/// Voxels per slab when a pipeline runs slice by slice (4 MB of `f32`; one 1024² slice):
/// small enough that `Cancel` is seen within a fraction of a second for most filters.
const SLAB_VOXELS: usize = 1 << 20;

/// Reads and validates a pipeline sent as JSON.
pub fn parse_pipeline(json: &str) -> Result<Pipeline, String> {
    let p = Pipeline::from_json(json).map_err(|e| e.to_string())?;
    if p.steps.is_empty() {
        return Err("the filter pipeline is empty: add a filter first".into());
    }
    Ok(p)
}

/// The single-channel volume of an image or label layer as `f32` slices `zs`.
fn layer_f32(
    ws: &Workspace,
    id: LayerId,
    zs: std::ops::Range<usize>,
) -> Result<Array3<f32>, String> {
    let layer = ws.layer(id)?;
    layer.volume.to_f32_array(zs).map_err(|_| {
        format!(
            "{}: filters work on grayscale stacks, this one has {} channels",
            layer.info.name, layer.info.channels
        )
    })
}

/// Filters slice `z` of a layer and renders the result windowed to its own value range.
pub fn preview_filters(
    ws: &Workspace,
    id: LayerId,
    z: usize,
    pipeline: &Pipeline,
) -> Result<Rendered, String> {
    let layer = ws.layer(id)?;
    let s = layer.info.shape;
    if z >= s.z {
        return Err(format!(
            "{}: slice {z} requested, the stack has {} slices",
            layer.info.name, s.z
        ));
    }
    let slice = layer_f32(ws, id, z..z + 1)?;
    let mut plane = slice.index_axis_move(ndarray::Axis(0), 0);
    for step in &pipeline.steps {
        plane = step
            .apply_2d(plane.view())
            .map_err(|e| format!("preview: {e}"))?;
    }
    let (lo, hi) = plane
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let values: Vec<f32> = plane.iter().copied().collect();
    Ok(Rendered {
        width: s.x,
        height: s.y,
        rgba: render_intensity(&values, 1, f64::from(lo), f64::from(hi)),
    })
}

/// Voxels a 3D pipeline's first, timed slab reads at least ([`FilterJob::thin_next_slab`]):
/// enough that a millisecond of noise does not decide where the rest runs.
pub const PROBE_VOXELS: usize = 2_000_000;

/// A piece of a layer handed out by [`FilterJob::next_slab`]: the slices `keep` it stands for,
/// read as `f32` together with the pipeline's reach of slices above and below
/// ([`Pipeline::z_reach`]; none for per-slice pipelines), `keep.start` being slice `first` of
/// `input`. Filtered and cut back to `keep` ([`filter_kept`]), it equals those slices of the
/// whole volume filtered.
pub struct Slab {
    /// The slices this slab's result is for.
    pub keep: Range<usize>,
    /// Where `keep.start` is in `input`.
    pub first: usize,
    /// The slices `keep` and their neighbours within reach.
    pub input: Array3<f32>,
}

/// A filter pipeline running over a whole layer, slab by slab.
pub struct FilterJob {
    source: LayerId,
    pipeline: Pipeline,
    shape: Shape,
    slab: usize,
    /// Slices above and below a slab that its result depends on (`None`: the whole volume).
    reach: Option<usize>,
    next_z: usize,
    out: Volume<f32>,
}

impl FilterJob {
    /// Prepares a run of `pipeline` over layer `source`.
    pub fn new(ws: &Workspace, source: LayerId, pipeline: Pipeline) -> Result<Self, String> {
        let layer = ws.layer(source)?;
        if layer.info.channels != 1 {
            return Err(format!(
                "{}: filters work on grayscale stacks, this one has {} channels",
                layer.info.name, layer.info.channels
            ));
        }
        let shape = layer.info.shape;
        let per_slice = pipeline.steps.iter().all(|s| s.scope() != Scope::Volume);
        let slab = if per_slice {
            (SLAB_VOXELS / shape.slice_len().max(1)).clamp(1, shape.z)
        } else {
            shape.z
        };
        let mut out = Volume::<f32>::new(shape, 1).map_err(|e| e.to_string())?;
        out.set_voxel_size(layer.info.voxel_size);
        Ok(Self {
            source,
            reach: pipeline.z_reach(),
            pipeline,
            shape,
            slab,
            next_z: 0,
            out,
        })
    }

    /// Slices done so far and in all.
    pub fn done_of(&self) -> (usize, usize) {
        (self.next_z, self.shape.z)
    }

    /// The source layer's shape.
    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// Whether every step works slice by slice, so slabs may be filtered apart (in helper
    /// workers, in any order).
    pub fn per_slice(&self) -> bool {
        self.pipeline
            .steps
            .iter()
            .all(|s| s.scope() != Scope::Volume)
    }

    /// The slices above and below a slice its result depends on (`None`: a step reads the
    /// whole volume; see [`Pipeline::z_reach`]).
    pub fn reach(&self) -> Option<usize> {
        self.reach
    }

    /// Cuts the work into at least `2 × workers` slabs (so every helper stays busy while
    /// results come back), never larger than the slab it had; true when the slabs can go to
    /// `workers` helpers. A 3D pipeline is cut only when each slab is at least twice the
    /// pipeline's reach along z (the slices read beyond a slab are extra work) and not at all
    /// when a step reads the whole volume.
    pub fn split_for(&mut self, workers: usize) -> bool {
        if workers < 2 {
            return false;
        }
        let want = self.shape.z.div_ceil(2 * workers).max(1);
        match self.reach {
            Some(0) => {
                self.slab = self.slab.min(want);
                true
            }
            Some(reach) if 2 * reach <= want && want < self.shape.z => {
                self.slab = want;
                true
            }
            _ => false,
        }
    }

    /// Makes the next slab of a 3D pipeline thin (as many slices as its reach, at least one,
    /// and enough that it reads [`PROBE_VOXELS`]), so timing it says what the pipeline costs
    /// before the rest is shared out; returns how many slices it reads (the reach above and
    /// below included).
    pub fn thin_next_slab(&mut self) -> usize {
        let reach = self.reach.unwrap_or(0);
        let for_voxels = (PROBE_VOXELS / self.shape.slice_len().max(1)).saturating_sub(2 * reach);
        self.slab = reach
            .max(for_voxels)
            .max(1)
            .min(self.slab)
            .min(self.shape.z - self.next_z)
            .max(1);
        let end = (self.next_z + self.slab + reach).min(self.shape.z);
        end - self.next_z.saturating_sub(reach)
    }

    /// Makes the slices not yet handed out one slab (a 3D pipeline too cheap for the helpers
    /// reads the neighbours of its slabs only once more).
    pub fn rest_in_one_slab(&mut self) {
        self.slab = (self.shape.z - self.next_z).max(1);
    }

    /// The next slab (with its neighbours within reach), or `None` when every slab was handed
    /// out.
    pub fn next_slab(&mut self, ws: &Workspace) -> Result<Option<Slab>, ComputeError> {
        if self.next_z >= self.shape.z {
            return Ok(None);
        }
        let keep = self.next_z..(self.next_z + self.slab).min(self.shape.z);
        self.next_z = keep.end;
        self.slab_of(ws, keep).map(Some)
    }

    /// The slab standing for slices `keep`, with its neighbours within reach.
    fn slab_of(&self, ws: &Workspace, keep: Range<usize>) -> Result<Slab, ComputeError> {
        // A slab of the whole volume reads nothing beyond it.
        let reach = self.reach.unwrap_or(0);
        let read = keep.start.saturating_sub(reach)..(keep.end + reach).min(self.shape.z);
        let input = layer_f32(ws, self.source, read.clone())?;
        Ok(Slab {
            first: keep.start - read.start,
            keep,
            input,
        })
    }

    /// Filters slices `keep` again, here (a slab handed to a helper that was lost).
    pub fn redo(
        &mut self,
        ws: &Workspace,
        keep: Range<usize>,
        progress: &mut dyn Progress,
    ) -> Result<(), ComputeError> {
        if keep.end > self.next_z {
            return Err(format!("slices {keep:?} were never handed out").into());
        }
        let slab = self.slab_of(ws, keep)?;
        self.filter_and_store(&slab, progress, &|| 0.0).map(|_| ())
    }

    /// Writes a filtered slab back (slices `zs`, any order).
    pub fn store(&mut self, zs: Range<usize>, filtered: ArrayView3<f32>) -> Result<(), String> {
        if filtered.dim() != (zs.len(), self.shape.y, self.shape.x) {
            return Err(format!(
                "a filtered slab of slices {zs:?} came back as {:?}",
                filtered.dim()
            ));
        }
        for (k, plane) in filtered.outer_iter().enumerate() {
            let values: Vec<f32> = plane.iter().copied().collect();
            self.out
                .set_slice(zs.start + k, &values)
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// The pipeline as JSON, for a helper worker.
    pub fn pipeline_json(&self) -> String {
        self.pipeline.to_json()
    }

    /// Filters the next slab; returns `false` when every slice is done. `progress` receives
    /// `(done, total)` over the whole job in thousandths.
    pub fn step(
        &mut self,
        ws: &Workspace,
        progress: &mut dyn Progress,
    ) -> Result<bool, ComputeError> {
        self.step_timed(ws, progress, &|| 0.0).map(|(more, _)| more)
    }

    /// [`FilterJob::step`], also returning the milliseconds (read from `clock`) the pipeline
    /// itself took: reading the slab and storing the result (whose first touch of fresh memory
    /// costs more on a first run) are left out, since they happen wherever the slab is
    /// filtered.
    pub fn step_timed(
        &mut self,
        ws: &Workspace,
        progress: &mut dyn Progress,
        clock: &dyn Fn() -> f64,
    ) -> Result<(bool, f64), ComputeError> {
        let Some(slab) = self.next_slab(ws)? else {
            return Ok((false, 0.0));
        };
        let ms = self.filter_and_store(&slab, progress, clock)?;
        Ok((self.next_z < self.shape.z, ms))
    }

    /// Filters `slab` here and stores it; `progress` sees the whole job's progress (slab
    /// `keep` of all slices), and the milliseconds the pipeline itself took are returned.
    fn filter_and_store(
        &mut self,
        slab: &Slab,
        progress: &mut dyn Progress,
        clock: &dyn Fn() -> f64,
    ) -> Result<f64, ComputeError> {
        let total = self.shape.z as u64;
        let (z0, n) = (slab.keep.start as u64, slab.keep.len() as u64);
        let mut scaled = |done: u64, of: u64| {
            let frac = if of == 0 {
                1.0
            } else {
                done as f64 / of as f64
            };
            progress.report(
                ((z0 as f64 + frac * n as f64) * 1000.0) as u64,
                total * 1000,
            )
        };
        let started = clock();
        let filtered = filter_kept(&self.pipeline, slab, &mut scaled)?;
        let ms = clock() - started;
        self.store(slab.keep.clone(), filtered.view())?;
        Ok(ms)
    }

    /// The filtered volume (call after [`FilterJob::step`] returned `false`).
    pub fn finish(self) -> AnyVolume {
        AnyVolume::F32(self.out)
    }

    /// One line naming the steps ("gaussian → clahe").
    pub fn describe(&self) -> String {
        self.pipeline
            .steps
            .iter()
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join(" → ")
    }
}

/// Runs a pipeline over a [`Slab`] and keeps the slices it stands for (in the data worker or
/// a helper).
pub fn filter_kept(
    pipeline: &Pipeline,
    slab: &Slab,
    progress: &mut dyn Progress,
) -> Result<Array3<f32>, ComputeError> {
    let filtered = filter_slab(pipeline, slab.input.view(), progress)?;
    let end = slab.first + slab.keep.len();
    if end > filtered.dim().0 {
        return Err(format!(
            "a slab of {} slices cannot keep slices {}..{end}",
            filtered.dim().0,
            slab.first
        )
        .into());
    }
    Ok(filtered
        .slice(ndarray::s![slab.first..end, .., ..])
        .to_owned())
}

/// Runs a pipeline over one slab of `f32` slices (in the data worker or a helper).
pub fn filter_slab(
    pipeline: &Pipeline,
    input: ArrayView3<f32>,
    progress: &mut dyn Progress,
) -> Result<Array3<f32>, ComputeError> {
    match apply_pipeline(&pipeline.steps, input, progress) {
        Ok(a) => Ok(a),
        Err(FilterError::Cancelled(_)) => Err(ComputeError::Cancelled),
        Err(e) => Err(ComputeError::Failed(e.to_string())),
    }
}

/// Runs a whole filter job at once (tests, and anywhere without an event loop).
pub fn apply_filters(
    ws: &Workspace,
    source: LayerId,
    pipeline: Pipeline,
    progress: &mut dyn Progress,
) -> Result<AnyVolume, ComputeError> {
    let mut job = FilterJob::new(ws, source, pipeline)?;
    while job.step(ws, progress)? {}
    Ok(job.finish())
}

/// Runs the postprocessing chain on a layer in this thread (its blocks, when it has any, one
/// after the other: the same labels the helper workers give); returns the label volume and a
/// one-line summary.
pub fn postprocess_layer(
    ws: &Workspace,
    source: LayerId,
    markers: Option<LayerId>,
    params: &PostprocessParams,
    progress: &mut dyn Progress,
) -> Result<(AnyVolume, String), ComputeError> {
    let mut job = LabelJob::new(ws, source, markers, params)?;
    let blocks = job.blocks() as u64;
    let _ = progress.report(50, 1000);
    for index in 0..job.blocks() {
        let start = 50 + 750 * index as u64 / blocks;
        job.run_here(index, &mut Phase::new(progress, start, 750 / blocks))?;
    }
    job.finish(0, &mut Phase::new(progress, 800, 200))
}

/// Builds the error map of an evaluation: 1 = voxel of a listed merging predicted object,
/// 2 = voxel of a listed split GT object, 3 = both.
pub fn error_map(
    gt: ArrayView3<'_, u32>,
    pred: ArrayView3<'_, u32>,
    evaluation: &Evaluation,
) -> Array3<u8> {
    let merges: HashSet<u32> = evaluation
        .errors
        .merges
        .iter()
        .map(|m| m.pred_label)
        .collect();
    let splits: HashSet<u32> = evaluation
        .errors
        .splits
        .iter()
        .map(|s| s.gt_label)
        .collect();
    let mut out = Array3::<u8>::zeros(gt.dim());
    ndarray::Zip::from(&mut out)
        .and(gt)
        .and(pred)
        .for_each(|o, &g, &p| {
            let merge = p != 0 && merges.contains(&p);
            let split = g != 0 && splits.contains(&g);
            *o = u8::from(merge) | (u8::from(split) << 1);
        });
    out
}

/// Scores `pred` against `gt` and returns the evaluation and its error map volume.
pub fn evaluate_layers(
    ws: &Workspace,
    gt: LayerId,
    pred: LayerId,
    params: &EvaluateParams,
    progress: &mut dyn Progress,
) -> Result<(Evaluation, AnyVolume), ComputeError> {
    let (g, p) = (ws.layer(gt)?, ws.layer(pred)?);
    if g.info.shape != p.info.shape {
        return Err(ComputeError::Failed(format!(
            "{} is {} but {} is {}: ground truth and prediction must have the same size",
            g.info.name, g.info.shape, p.info.name, p.info.shape
        )));
    }
    let labels = |l: &crate::workspace::Layer| {
        l.volume
            .to_label_array()
            .map_err(|e| ComputeError::Failed(format!("{}: {e}", l.info.name)))
    };
    let (ga, pa) = (labels(g)?, labels(p)?);
    let mut evaluation = evaluate_labels_3d(
        ga.view(),
        pa.view(),
        params,
        &mut Phase::new(progress, 0, 900),
    )
    .map_err(|e| match e {
        MetricsError::Cancelled(_) => ComputeError::Cancelled,
        e => ComputeError::Failed(e.to_string()),
    })?;
    // "Go" in the error lists jumps to the middle of each object, not its corner.
    center_positions(ga.view(), pa.view(), &mut evaluation.errors);
    let map = error_map(ga.view(), pa.view(), &evaluation);
    let mut volume: AnyVolume = Volume::from_array(map.view())
        .map_err(|e| ComputeError::Failed(e.to_string()))?
        .into();
    volume.set_voxel_size(g.volume.voxel_size());
    let _ = progress.report(1000, 1000);
    Ok((evaluation, volume))
}

/// Scores a probability map layer against GT with the ISBI 2012 protocol.
pub fn evaluate_isbi_layers(
    ws: &Workspace,
    gt: LayerId,
    map: LayerId,
    params: &IsbiParams,
    progress: &mut dyn Progress,
) -> Result<IsbiReport, ComputeError> {
    let (g, m) = (ws.layer(gt)?, ws.layer(map)?);
    if g.info.shape != m.info.shape {
        return Err(ComputeError::Failed(format!(
            "{} is {} but {} is {}: ground truth and map must have the same size",
            g.info.name, g.info.shape, m.info.name, m.info.shape
        )));
    }
    let labels = g
        .volume
        .to_label_array()
        .map_err(|e| ComputeError::Failed(format!("{}: {e}", g.info.name)))?;
    let unit = m
        .volume
        .to_unit_f32_array()
        .map_err(|e| ComputeError::Failed(format!("{}: {e}", m.info.name)))?;
    isbi_evaluate(labels.view(), unit.view(), params, progress).map_err(|e| match e {
        MetricsError::Cancelled(_) => ComputeError::Cancelled,
        e => ComputeError::Failed(e.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use emstudio_core::labels::postprocess::ThresholdChoice;
    use emstudio_core::progress::NoProgress;
    use emstudio_protocol::LayerKind;
    use std::ops::ControlFlow;

    fn ramp(ws: &mut Workspace, shape: (usize, usize, usize)) -> LayerId {
        let a = Array3::from_shape_fn(shape, |(z, y, x)| ((z * 7 + y * 3 + x) % 256) as u8);
        let v = Volume::from_array(a.view()).expect("volume");
        ws.add("em", LayerKind::Image, v.into()).expect("add").id
    }

    #[test]
    fn a_3d_pipeline_is_timed_on_a_thin_slab_of_two_million_voxels() {
        let mut ws = Workspace::default();
        let id = ramp(&mut ws, (100, 250, 250));
        // σ 2 along z reaches 8 slices: 16 slices kept read 32 (2 M voxels).
        let p = parse_pipeline(r#"[{"filter":"gaussian","sigma":[2,1,1]}]"#).expect("valid");
        let mut job = FilterJob::new(&ws, id, p).expect("job");
        assert!(job.split_for(2));
        assert_eq!(
            job.thin_next_slab(),
            24,
            "16 kept, 8 above (none below the first)"
        );
        assert!(job.step(&ws, &mut NoProgress).expect("slab"));
        assert_eq!(job.done_of().0, 16);
        assert_eq!(job.thin_next_slab(), 32);
        // A wide median: its reach is the floor.
        let p = parse_pipeline(r#"[{"filter":"median","size":[41,3,3]}]"#).expect("valid");
        let mut job = FilterJob::new(&ws, id, p).expect("job");
        assert!(
            !job.split_for(2),
            "slabs of 25 are thinner than twice the reach"
        );
        assert_eq!(job.thin_next_slab(), 40, "20 kept (the reach), 20 above");
    }

    #[test]
    fn slab_and_whole_runs_match_the_library() {
        let mut ws = Workspace::default();
        // Tall enough for several slabs at a smaller slab size.
        let id = ramp(&mut ws, (5, 40, 50));
        let pipeline = parse_pipeline(
            r#"[{"filter":"gaussian","sigma":[1.5,1.5]},{"filter":"otsu","per_slice":true}]"#,
        )
        .expect("valid");
        let mut job = FilterJob::new(&ws, id, pipeline.clone()).expect("job");
        job.slab = 2;
        let mut steps = 0;
        let mut last = 0;
        let mut p = |d: u64, t: u64| {
            assert!(d <= t && t == 5000);
            last = d;
            ControlFlow::Continue(())
        };
        while job.step(&ws, &mut p).expect("step") {
            steps += 1;
        }
        assert_eq!(steps, 2, "three slabs: two that leave work, one that ends");
        assert_eq!(last, 5000);
        let out = job.finish();
        let input = ws
            .layer(id)
            .expect("layer")
            .volume
            .to_f32_array(0..5)
            .expect("f32");
        let expected = pipeline
            .apply(input.view(), &mut NoProgress)
            .expect("library");
        assert_eq!(out.to_f32_array(0..5).expect("f32"), expected);
    }

    /// A noisy volume with edges in every direction (3D filters must see real neighbours).
    fn speckled(ws: &mut Workspace, shape: (usize, usize, usize)) -> LayerId {
        let a = Array3::from_shape_fn(shape, |(z, y, x)| {
            let h = (z * 73 + y * 151 + x * 37 + z * y * 11 + x * y * 5) % 97;
            (if (x / 4 + y / 3 + z / 2) % 3 == 0 {
                200
            } else {
                30
            } + h) as u8
        });
        let v = Volume::from_array(a.view()).expect("volume");
        ws.add("em", LayerKind::Image, v.into()).expect("add").id
    }

    #[test]
    fn three_d_pipelines_in_slabs_with_their_reach_equal_the_whole_volume() {
        let mut ws = Workspace::default();
        let id = speckled(&mut ws, (41, 12, 13));
        let input = ws
            .layer(id)
            .expect("layer")
            .volume
            .to_f32_array(0..41)
            .expect("f32");
        let cases = [
            (r#"[{"filter":"median","size":[5,3,3]}]"#, 2),
            (r#"[{"filter":"median","size":[4,1,1]}]"#, 2),
            (r#"[{"filter":"gaussian","sigma":[0.8,1,1]}]"#, 3),
            (
                r#"[{"filter":"unsharp_mask","radius":[0.6,1,1],"amount":1.5}]"#,
                2,
            ),
            (
                r#"[{"filter":"morphology","op":"close","mode":"binary","radius":[1,1,1]},
                 {"filter":"threshold","value":0.5}]"#,
                2,
            ),
            (
                r#"[{"filter":"morphology","op":"open","footprint":"box","radius":[2,1,1]}]"#,
                4,
            ),
            (
                r#"[{"filter":"morphology","op":"erode","mode":"binary","footprint":"cross","radius":[1,1,1]}]"#,
                1,
            ),
            (
                r#"[{"filter":"gaussian","sigma":[1,1]},{"filter":"median","size":[3,3,3]},
                 {"filter":"morphology","op":"dilate","radius":[2,1,1]},{"filter":"gaussian","sigma":[0.5,0.5,0.5]}]"#,
                1 + 2 + 2,
            ),
        ];
        for (json, reach) in cases {
            let pipeline = parse_pipeline(json).expect("valid");
            assert_eq!(pipeline.z_reach(), Some(reach), "{json}");
            let whole = pipeline
                .apply(input.view(), &mut NoProgress)
                .expect("whole");
            let mut split = 0;
            for workers in [2, 3, 4] {
                let mut job = FilterJob::new(&ws, id, pipeline.clone()).expect("job");
                assert!(!job.per_slice());
                if !job.split_for(workers) {
                    // Slabs too thin for this reach: the whole volume in one piece.
                    assert!(2 * reach > 41usize.div_ceil(2 * workers), "{json}");
                    continue;
                }
                // Slabs in reverse order, as helpers may return them.
                let mut slabs = Vec::new();
                while let Some(slab) = job.next_slab(&ws).expect("slab") {
                    slabs.push(slab);
                }
                assert!(
                    slabs.len() >= 2 * workers.min(3) - 1,
                    "{json}: {}",
                    slabs.len()
                );
                for (k, slab) in slabs.iter().rev().enumerate() {
                    if k == 1 {
                        // A helper lost this one: filtered again in the data worker, its
                        // progress reported on the whole job's scale.
                        let mut seen = Vec::new();
                        let mut record = |done: u64, total: u64| {
                            seen.push((done, total));
                            ControlFlow::Continue(())
                        };
                        job.redo(&ws, slab.keep.clone(), &mut record).expect("redo");
                        let range = slab.keep.start as u64 * 1000..=slab.keep.end as u64 * 1000;
                        assert!(!seen.is_empty());
                        assert!(
                            seen.iter().all(|&(d, t)| t == 41_000 && range.contains(&d)),
                            "{seen:?} outside {range:?}"
                        );
                        continue;
                    }
                    let kept = filter_kept(&pipeline, slab, &mut NoProgress).expect("filter");
                    job.store(slab.keep.clone(), kept.view()).expect("store");
                }
                let out = job.finish().to_f32_array(0..41).expect("f32");
                assert_eq!(out, whole, "{json}, {workers} workers");
                split += 1;
                // A thin first slab timed here, then the rest in one slab (too cheap for the
                // helpers) or in slabs (shared out).
                for share in [false, true] {
                    let mut job = FilterJob::new(&ws, id, pipeline.clone()).expect("job");
                    assert!(job.split_for(workers));
                    // 12×13 slices: PROBE_VOXELS asks for more than the slab holds.
                    let want = 41usize.div_ceil(2 * workers);
                    assert_eq!(job.thin_next_slab(), (want + reach).min(41), "{json}");
                    assert!(job.step(&ws, &mut NoProgress).expect("first slab"));
                    assert_eq!(job.done_of().0, want);
                    if share {
                        assert!(job.split_for(workers));
                        while let Some(slab) = job.next_slab(&ws).expect("slab") {
                            let kept = filter_kept(&pipeline, &slab, &mut NoProgress).expect("f");
                            job.store(slab.keep.clone(), kept.view()).expect("store");
                        }
                    } else {
                        job.rest_in_one_slab();
                        assert!(!job.step(&ws, &mut NoProgress).expect("the rest"));
                    }
                    let out = job.finish().to_f32_array(0..41).expect("f32");
                    assert_eq!(out, whole, "{json}, {workers} workers, shared {share}");
                }
            }
            assert!(split >= 1, "{json}: never cut into slabs");
        }
        // One slice less reach would differ: the check has teeth.
        let pipeline = parse_pipeline(r#"[{"filter":"median","size":[5,3,3]}]"#).expect("valid");
        let whole = pipeline
            .apply(input.view(), &mut NoProgress)
            .expect("whole");
        let mut job = FilterJob::new(&ws, id, pipeline.clone()).expect("job");
        job.reach = Some(1);
        assert!(job.split_for(2));
        while let Some(slab) = job.next_slab(&ws).expect("slab") {
            let kept = filter_kept(&pipeline, &slab, &mut NoProgress).expect("filter");
            job.store(slab.keep.clone(), kept.view()).expect("store");
        }
        assert_ne!(job.finish().to_f32_array(0..41).expect("f32"), whole);
        // Steps that read the whole volume are never cut.
        for json in [
            r#"[{"filter":"normalize","per_slice":false}]"#,
            r#"[{"filter":"otsu"}]"#,
            r#"[{"filter":"invert"}]"#,
            r#"[{"filter":"clahe","block_size":[4,8,8]}]"#,
        ] {
            let pipeline = parse_pipeline(json).expect("valid");
            assert_eq!(pipeline.z_reach(), None, "{json}");
            let mut job = FilterJob::new(&ws, id, pipeline).expect("job");
            assert!(!job.split_for(4), "{json}");
        }
    }

    #[test]
    fn cancel_and_bad_input() {
        let mut ws = Workspace::default();
        let id = ramp(&mut ws, (2, 8, 8));
        let p = parse_pipeline(r#"[{"filter":"gaussian","sigma":[1,1,1]}]"#).expect("valid");
        let mut stop = |_: u64, _: u64| ControlFlow::Break(());
        assert_eq!(
            apply_filters(&ws, id, p.clone(), &mut stop).err(),
            Some(ComputeError::Cancelled)
        );
        assert!(parse_pipeline("[]").expect_err("empty").contains("empty"));
        assert!(parse_pipeline(r#"[{"filter":"gaussian","sigma":[-1,1]}]"#)
            .expect_err("negative")
            .contains("gaussian"));
        let rgb = Volume::<u8>::new(Shape::new(1, 4, 4), 3).expect("rgb");
        let rgb = ws
            .add("photo", LayerKind::Image, rgb.into())
            .expect("add")
            .id;
        match apply_filters(&ws, rgb, p, &mut NoProgress) {
            Err(ComputeError::Failed(m)) => {
                assert!(m.contains("photo") && m.contains("3 channels"))
            }
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    #[test]
    fn preview_equals_the_first_slice_of_a_per_slice_run() {
        let mut ws = Workspace::default();
        let id = ramp(&mut ws, (3, 16, 16));
        let p = parse_pipeline(r#"[{"filter":"median","size":[3,3]}]"#).expect("valid");
        let r = preview_filters(&ws, id, 1, &p).expect("preview");
        assert_eq!((r.width, r.height, r.rgba.len()), (16, 16, 16 * 16 * 4));
        assert!(preview_filters(&ws, id, 3, &p).is_err());
    }

    #[test]
    fn postprocess_and_evaluate_a_layer() {
        let mut ws = Workspace::default();
        // Two blobs in a probability map; ground truth with a third object.
        let prob = Array3::from_shape_fn((2, 10, 20), |(_, y, x)| {
            if (2..8).contains(&y) && ((2..8).contains(&x) || (12..18).contains(&x)) {
                0.9f32
            } else {
                0.1
            }
        });
        let prob = ws
            .add(
                "prob",
                LayerKind::Image,
                Volume::from_array(prob.view()).expect("v").into(),
            )
            .expect("add")
            .id;
        let params = PostprocessParams {
            threshold: ThresholdChoice::Otsu,
            ..PostprocessParams::default()
        };
        let (labels, summary) =
            postprocess_layer(&ws, prob, None, &params, &mut NoProgress).expect("postprocess");
        assert!(summary.starts_with("2 objects"), "{summary}");
        assert_eq!(labels.dtype(), emstudio_core::DType::U16);
        let pred = ws.add("objects", LayerKind::Label, labels).expect("add").id;

        // GT: left blob split into two objects; right blob as one.
        let gt = Array3::from_shape_fn((2, 10, 20), |(_, y, x)| {
            if (2..8).contains(&y) && (2..5).contains(&x) {
                1u16
            } else if (2..8).contains(&y) && (5..8).contains(&x) {
                2
            } else if (2..8).contains(&y) && (12..18).contains(&x) {
                3
            } else {
                0
            }
        });
        let gt = ws
            .add(
                "gt",
                LayerKind::Label,
                Volume::from_array(gt.view()).expect("v").into(),
            )
            .expect("add")
            .id;
        let (evaluation, map) =
            evaluate_layers(&ws, gt, pred, &EvaluateParams::default(), &mut NoProgress)
                .expect("evaluate");
        assert_eq!(
            evaluation.errors.merges.len(),
            1,
            "left blob merges GT 1 and 2"
        );
        assert!(evaluation.errors.splits.is_empty());
        assert!(evaluation.report.rand.v_rand < 1.0);
        assert_eq!(map.get_f64(0, 3, 3, 0), 1.0, "merged object marked");
        assert_eq!(map.get_f64(0, 3, 14, 0), 0.0, "correct object unmarked");

        // ISBI protocol: a map that is 1 exactly inside the GT objects scores 1.
        let map = Array3::from_shape_fn((2, 10, 20), |(_, y, x)| {
            let inside = (2..8).contains(&y)
                && ((2..5).contains(&x) || (5..8).contains(&x) || (12..18).contains(&x));
            u8::from(inside) * 255
        });
        let map = ws
            .add(
                "map",
                LayerKind::Image,
                Volume::from_array(map.view()).expect("v").into(),
            )
            .expect("add")
            .id;
        let r = evaluate_isbi_layers(&ws, gt, map, &IsbiParams::default(), &mut NoProgress)
            .expect("isbi");
        assert_eq!(r.per_threshold.len(), 11);
        assert!(r.best_rand.scores.v_rand > 0.99, "{:?}", r.best_rand);

        let other = ramp(&mut ws, (1, 10, 20));
        match evaluate_layers(&ws, gt, other, &EvaluateParams::default(), &mut NoProgress) {
            Err(ComputeError::Failed(m)) => assert!(m.contains("same size"), "{m}"),
            r => panic!("expected a size error, got {r:?}"),
        }
    }
}
