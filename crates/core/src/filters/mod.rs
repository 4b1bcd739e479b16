//! 2D and 3D image filters (UNI-EM's "2D/3D Filters"), described by a serialisable
//! [`FilterSpec`] and applied to dense `f32` volumes in `z, y, x` order.
//!
//! | filter | spec (JSON) | scope | reference it is tested against |
//! | --- | --- | --- | --- |
//! | Gaussian | `{"filter":"gaussian","sigma":[1,2,2]}` | `[y,x]` per slice, `[z,y,x]` 3D | `scipy.ndimage.gaussian_filter(mode='reflect', truncate=4)` |
//! | median | `{"filter":"median","size":[3,3,3]}` | per slice / 3D | `scipy.ndimage.median_filter(mode='reflect')`, exact |
//! | bilateral | `{"filter":"bilateral","sigma_spatial":3,"sigma_range":20}` | per slice | OpenCV `cv2.bilateralFilter` (float path) |
//! | CLAHE | `{"filter":"clahe","block_size":[127,127],"bins":256,"max_slope":1.5}` | per slice / 3D | `skimage.exposure.equalize_adapthist` |
//! | invert | `{"filter":"invert","max":255}` | voxelwise | `skimage.util.invert` |
//! | normalise | `{"filter":"normalize","low_percentile":1,"high_percentile":99}` | volume or per slice | `skimage.exposure.rescale_intensity` + `np.percentile` |
//! | unsharp mask | `{"filter":"unsharp_mask","radius":[2,2],"amount":1}` | per slice / 3D | `skimage.filters.unsharp_mask` |
//! | Canny | `{"filter":"canny","sigma":2,"low_threshold":5,"high_threshold":15}` | per slice | `skimage.feature.canny` |
//! | threshold | `{"filter":"threshold","value":128,"invert":false}` | voxelwise | `x > t` / `x <= t` |
//! | Otsu | `{"filter":"otsu"}` | volume or per slice | `skimage.filters.threshold_otsu` |
//! | morphology | `{"filter":"morphology","op":"open","mode":"binary","footprint":"ball","radius":[1,1,1]}` | per slice / 3D | `scipy.ndimage.binary_*` / `grey_*` |
//!
//! What each returns: every filter maps `f32` to `f32` of the same shape. Smoothing filters
//! (Gaussian, median, bilateral, unsharp) keep the data's scale; CLAHE returns its result on
//! the input's `[min, max]`; normalise maps onto `[out_min, out_max]`; Canny, thresholds,
//! Otsu and binary morphology return masks of `0.0` / `1.0`. `u8`/`u16` data are converted
//! with `f32::from` ([`u8_to_f32`], [`u16_to_f32`]; exact); the integer-typed entry points
//! [`median::median_u8`], [`median::median_u16`] and [`morphology::morphology`] keep their
//! type, and `f32` volumes of whole numbers take the integer fast paths automatically (same
//! results). Single-image entry points: [`gaussian::gaussian_2d`], [`bilateral::bilateral_2d`],
//! [`clahe::clahe_2d`], [`canny::canny_2d`]; statistics: [`intensity::percentiles`],
//! [`intensity::otsu_threshold`].
//!
//! Per-axis parameters (`sigma`, `size`, `radius`, `block_size`) with two values run on each
//! z slice independently; with three values the filter is 3D. [`FilterSpec::scope`] tells
//! which. [`FilterSpec::apply_2d`] previews one slice instantly (a 3D spec previews with its
//! in-plane part). [`Pipeline`] holds a list of specs and reads/writes JSON.
//!
//! Golden tests: `tests/golden_filters.rs`, fixtures from `scripts/golden/gen_filters.py`.
//! Benchmarks: `examples/bench_filters.rs` vs `scripts/golden/bench_filters.py`.

use ndarray::{Array2, Array3, ArrayView2, ArrayView3, Axis};
use serde::{Deserialize, Serialize};

use crate::progress::{Cancelled, NoProgress, Progress};

pub mod bilateral;
pub mod canny;
pub mod clahe;
mod common;
pub mod gaussian;
pub mod intensity;
pub mod median;
pub mod morphology;

pub use bilateral::BilateralParams;
pub use canny::CannyParams;
pub use clahe::ClaheParams;
pub use intensity::{InvertParams, NormalizeParams, OtsuParams, ThresholdParams, UnsharpParams};
pub use morphology::{FootprintShape, MorphMode, MorphOp, MorphologyParams};

use common::{contiguous, from_vec3, voxel_count, StageProgress, Ticker};

/// Errors from the filters.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FilterError {
    /// A parameter is out of range; the message says which and why.
    #[error("{filter}: {message}")]
    InvalidParameter {
        /// Filter name as in the JSON (`"gaussian"`, ...).
        filter: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The caller's [`Progress`] asked to stop.
    #[error("filter cancelled")]
    Cancelled(#[from] Cancelled),
    /// A pipeline file could not be read.
    #[error("invalid filter pipeline: {0}")]
    Pipeline(String),
}

impl FilterError {
    pub(crate) fn invalid(filter: &'static str, message: impl Into<String>) -> Self {
        FilterError::InvalidParameter {
            filter,
            message: message.into(),
        }
    }
}

/// Gaussian parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GaussianParams {
    /// Sigma in voxels: `[y, x]` (per slice) or `[z, y, x]` (3D); 0 leaves an axis alone.
    pub sigma: Vec<f32>,
}

/// Median parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MedianParams {
    /// Window size in voxels: `[y, x]` (per slice) or `[z, y, x]` (3D); each ≥ 1.
    pub size: Vec<usize>,
}

/// One filter and its parameters. Serialised with a `"filter"` tag, e.g.
/// `{"filter":"gaussian","sigma":[1,2,2]}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "filter", rename_all = "snake_case")]
pub enum FilterSpec {
    /// Gaussian smoothing.
    Gaussian(GaussianParams),
    /// Median filter.
    Median(MedianParams),
    /// Bilateral filter (per slice).
    Bilateral(BilateralParams),
    /// Contrast-limited adaptive histogram equalisation.
    Clahe(ClaheParams),
    /// Intensity inversion.
    Invert(InvertParams),
    /// Contrast stretch between two percentiles.
    Normalize(NormalizeParams),
    /// Unsharp mask.
    UnsharpMask(UnsharpParams),
    /// Canny edges (per slice).
    Canny(CannyParams),
    /// Fixed binary threshold.
    Threshold(ThresholdParams),
    /// Otsu threshold.
    Otsu(OtsuParams),
    /// Binary or grey morphology.
    Morphology(MorphologyParams),
}

/// Whether a filter looks at one slice at a time or across slices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Each voxel on its own (invert, threshold).
    Voxelwise,
    /// Each z slice on its own (2D filters, per-slice statistics).
    PerSlice,
    /// Neighbours or statistics across slices (3D filters, volume-wide statistics).
    Volume,
}

/// Reads a per-axis parameter of 2 (`[y, x]`) or 3 (`[z, y, x]`) values as `[z, y, x]`,
/// filling z with `fill` for per-slice parameters.
fn axes3<T: Copy>(
    filter: &'static str,
    name: &str,
    v: &[T],
    fill: T,
) -> Result<[T; 3], FilterError> {
    match v {
        [y, x] => Ok([fill, *y, *x]),
        [z, y, x] => Ok([*z, *y, *x]),
        _ => Err(FilterError::invalid(
            filter,
            format!(
                "{name} needs 2 ([y, x], per slice) or 3 ([z, y, x]) values, got {}",
                v.len()
            ),
        )),
    }
}

impl FilterSpec {
    /// The JSON tag of this filter (`"gaussian"`, `"unsharp_mask"`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            FilterSpec::Gaussian(_) => "gaussian",
            FilterSpec::Median(_) => "median",
            FilterSpec::Bilateral(_) => "bilateral",
            FilterSpec::Clahe(_) => "clahe",
            FilterSpec::Invert(_) => "invert",
            FilterSpec::Normalize(_) => "normalize",
            FilterSpec::UnsharpMask(_) => "unsharp_mask",
            FilterSpec::Canny(_) => "canny",
            FilterSpec::Threshold(_) => "threshold",
            FilterSpec::Otsu(_) => "otsu",
            FilterSpec::Morphology(_) => "morphology",
        }
    }

    /// Whether the filter works per voxel, per slice or across slices.
    pub fn scope(&self) -> Scope {
        let by_len = |n: usize| {
            if n == 3 {
                Scope::Volume
            } else {
                Scope::PerSlice
            }
        };
        let stats = |per_slice: bool| {
            if per_slice {
                Scope::PerSlice
            } else {
                Scope::Volume
            }
        };
        match self {
            FilterSpec::Gaussian(p) => by_len(p.sigma.len()),
            FilterSpec::Median(p) => by_len(p.size.len()),
            FilterSpec::Clahe(p) => by_len(p.block_size.len()),
            FilterSpec::UnsharpMask(p) => by_len(p.radius.len()),
            FilterSpec::Morphology(p) => by_len(p.radius.len()),
            FilterSpec::Bilateral(_) | FilterSpec::Canny(_) => Scope::PerSlice,
            FilterSpec::Normalize(p) => stats(p.per_slice),
            FilterSpec::Otsu(p) => stats(p.per_slice),
            FilterSpec::Invert(p) => {
                if p.max.is_some() {
                    Scope::Voxelwise
                } else {
                    Scope::Volume
                }
            }
            FilterSpec::Threshold(_) => Scope::Voxelwise,
        }
    }

    /// How many slices above and below a slice its result depends on: 0 for filters that work
    /// per voxel or per slice, the kernel's reach along z for 3D neighbourhood filters, `None`
    /// for filters that read the whole volume (volume statistics, CLAHE's 3D tiles, an invert
    /// without `max`) and for invalid parameters.
    ///
    /// A slab filtered together with this many more slices on each side gives its own slices
    /// exactly as filtering the whole volume would: inside the volume those slices are real
    /// neighbours, and at the volume's own top and bottom the slab ends where the volume does,
    /// so the border rules (reflection, binary morphology's zero outside) see the same thing.
    /// For a pipeline the reaches add up ([`Pipeline::z_reach`]); the worker filters 3D
    /// pipelines in slabs on several workers with it (tested there against the whole volume).
    pub fn z_reach(&self) -> Option<usize> {
        let gaussian_reach = |sigma: &[f32], name: &'static str| -> Option<usize> {
            let [z, _, _] = axes3(name, "sigma", sigma, 0.0).ok()?;
            Some(gaussian::kernel_radius(f64::from(z)))
        };
        match (self.scope(), self) {
            (Scope::Voxelwise | Scope::PerSlice, _) => Some(0),
            (Scope::Volume, FilterSpec::Gaussian(p)) => gaussian_reach(&p.sigma, "gaussian"),
            (Scope::Volume, FilterSpec::UnsharpMask(p)) => {
                gaussian_reach(&p.radius, "unsharp_mask")
            }
            // The window covers offsets -(s/2) ..= s-1-s/2.
            (Scope::Volume, FilterSpec::Median(p)) => {
                let [z, _, _] = axes3("median", "size", &p.size, 1).ok()?;
                Some(z / 2)
            }
            (Scope::Volume, FilterSpec::Morphology(p)) => {
                let [z, _, _] = p.radius3();
                Some(match p.op {
                    MorphOp::Erode | MorphOp::Dilate => z,
                    // Two passes, each reaching z.
                    MorphOp::Open | MorphOp::Close => 2 * z,
                })
            }
            (Scope::Volume, _) => None,
        }
    }

    /// Checks the parameters without running anything.
    pub fn validate(&self) -> Result<(), FilterError> {
        match self {
            FilterSpec::Gaussian(p) => {
                let s = axes3("gaussian", "sigma", &p.sigma, 0.0)?;
                for (v, n) in s.iter().zip(["sigma z", "sigma y", "sigma x"]) {
                    gaussian::validate_sigma("gaussian", n, *v)?;
                }
                Ok(())
            }
            FilterSpec::Median(p) => median::validate_size(axes3("median", "size", &p.size, 1)?),
            FilterSpec::Bilateral(p) => p.validate(),
            FilterSpec::Clahe(p) => p.validate(),
            FilterSpec::Invert(p) => match p.max {
                Some(m) if !m.is_finite() => {
                    Err(FilterError::invalid("invert", "max must be finite"))
                }
                _ => Ok(()),
            },
            FilterSpec::Normalize(p) => p.validate(),
            FilterSpec::UnsharpMask(p) => {
                let r = axes3("unsharp_mask", "radius", &p.radius, 0.0)?;
                for (v, n) in r.iter().zip(["radius z", "radius y", "radius x"]) {
                    gaussian::validate_sigma("unsharp_mask", n, *v)?;
                }
                if !p.amount.is_finite() {
                    return Err(FilterError::invalid(
                        "unsharp_mask",
                        "amount must be finite",
                    ));
                }
                if let Some([a, b]) = p.clip {
                    if !(a.is_finite() && b.is_finite() && a <= b) {
                        return Err(FilterError::invalid(
                            "unsharp_mask",
                            format!("clip must be [lo, hi] with lo ≤ hi (got [{a}, {b}])"),
                        ));
                    }
                }
                Ok(())
            }
            FilterSpec::Canny(p) => p.validate(),
            FilterSpec::Threshold(p) => {
                if p.value.is_nan() {
                    Err(FilterError::invalid("threshold", "value must be a number"))
                } else {
                    Ok(())
                }
            }
            FilterSpec::Otsu(p) => {
                if !(2..=65536).contains(&p.nbins) {
                    Err(FilterError::invalid(
                        "otsu",
                        format!("nbins must be in 2..=65536 (got {})", p.nbins),
                    ))
                } else {
                    Ok(())
                }
            }
            FilterSpec::Morphology(p) => p.validate(),
        }
    }

    /// The same filter restricted to one slice: 3-value per-axis parameters lose their z
    /// value; everything else is unchanged.
    pub fn to_2d(&self) -> FilterSpec {
        let last2 = |v: &Vec<f32>| {
            if v.len() == 3 {
                v[1..].to_vec()
            } else {
                v.clone()
            }
        };
        let last2u = |v: &Vec<usize>| {
            if v.len() == 3 {
                v[1..].to_vec()
            } else {
                v.clone()
            }
        };
        match self {
            FilterSpec::Gaussian(p) => FilterSpec::Gaussian(GaussianParams {
                sigma: last2(&p.sigma),
            }),
            FilterSpec::Median(p) => FilterSpec::Median(MedianParams {
                size: last2u(&p.size),
            }),
            FilterSpec::Clahe(p) => FilterSpec::Clahe(ClaheParams {
                block_size: last2u(&p.block_size),
                ..p.clone()
            }),
            FilterSpec::UnsharpMask(p) => FilterSpec::UnsharpMask(UnsharpParams {
                radius: last2(&p.radius),
                ..p.clone()
            }),
            FilterSpec::Morphology(p) => FilterSpec::Morphology(MorphologyParams {
                radius: last2u(&p.radius),
                ..p.clone()
            }),
            other => other.clone(),
        }
    }

    /// Applies the filter to a volume; see [`apply_filter`].
    pub fn apply(
        &self,
        volume: ArrayView3<'_, f32>,
        progress: &mut dyn Progress,
    ) -> Result<Array3<f32>, FilterError> {
        apply_filter(self, volume, progress)
    }

    /// Applies the filter to one slice (an instant preview): per-slice statistics, and the
    /// in-plane part of 3D parameters ([`FilterSpec::to_2d`]).
    pub fn apply_2d(&self, slice: ArrayView2<'_, f32>) -> Result<Array2<f32>, FilterError> {
        let spec = match self.to_2d() {
            FilterSpec::Normalize(p) => FilterSpec::Normalize(NormalizeParams {
                per_slice: true,
                ..p
            }),
            FilterSpec::Otsu(p) => FilterSpec::Otsu(OtsuParams {
                per_slice: true,
                ..p
            }),
            other => other,
        };
        let out = apply_filter(&spec, slice.insert_axis(Axis(0)), &mut NoProgress)?;
        Ok(out.index_axis_move(Axis(0), 0))
    }
}

/// Runs `f` on each z slice (`ny × nx` C-order values), reporting per slice.
fn per_slice(
    data: &mut [f32],
    shape: [usize; 3],
    progress: &mut dyn Progress,
    mut f: impl FnMut(&mut [f32]) -> Result<(), FilterError>,
) -> Result<(), FilterError> {
    let plane = shape[1] * shape[2];
    let mut ticker = Ticker::new(progress, shape[0] as u64);
    if plane == 0 {
        return Ok(());
    }
    for slice in data.chunks_mut(plane) {
        f(slice)?;
        ticker.tick()?;
    }
    Ok(())
}

/// Applies one filter to an `f32` volume (`z, y, x`) and returns a new volume of the same
/// shape. Parameters are validated first. Long filters report per z slice (and pass) and
/// stop with [`FilterError::Cancelled`] when `progress` says so.
pub fn apply_filter(
    spec: &FilterSpec,
    volume: ArrayView3<'_, f32>,
    progress: &mut dyn Progress,
) -> Result<Array3<f32>, FilterError> {
    spec.validate()?;
    let (src, shape) = contiguous(&volume);
    if voxel_count(shape) == 0 {
        return Ok(from_vec3(src.into_owned(), shape));
    }
    let [_, ny, nx] = shape;
    let out = match spec {
        FilterSpec::Gaussian(p) => {
            let s = axes3("gaussian", "sigma", &p.sigma, 0.0)?;
            gaussian::gaussian_buffer(
                &src,
                shape,
                s.map(f64::from),
                gaussian::Border::Reflect,
                progress,
            )?
        }
        FilterSpec::Median(p) => {
            let size = axes3("median", "size", &p.size, 1)?;
            return median::median_f32(volume, size, progress);
        }
        FilterSpec::Bilateral(p) => {
            let mut data = src.into_owned();
            per_slice(&mut data, shape, progress, |s| {
                let out = bilateral::bilateral_buffer(s, ny, nx, p);
                s.copy_from_slice(&out);
                Ok(())
            })?;
            data
        }
        FilterSpec::Clahe(p) => return clahe::clahe(volume, p, progress),
        FilterSpec::Invert(p) => intensity::invert(&src, p.max),
        FilterSpec::Normalize(p) => {
            let mut data = src.into_owned();
            if p.per_slice {
                per_slice(&mut data, shape, progress, |s| {
                    intensity::normalize_in_place(s, p);
                    Ok(())
                })?;
            } else {
                let mut ticker = Ticker::new(progress, 1);
                intensity::normalize_in_place(&mut data, p);
                ticker.tick()?;
            }
            data
        }
        FilterSpec::UnsharpMask(p) => {
            let r = axes3("unsharp_mask", "radius", &p.radius, 0.0)?;
            let mut blurred = gaussian::gaussian_buffer(
                &src,
                shape,
                r.map(f64::from),
                gaussian::Border::Reflect,
                progress,
            )?;
            for (b, &x) in blurred.iter_mut().zip(src.iter()) {
                // skimage (float32): image + (image - blurred) * amount.
                let mut y = x + (x - *b) * p.amount;
                if let Some([lo, hi]) = p.clip {
                    y = y.clamp(lo, hi);
                }
                *b = y;
            }
            blurred
        }
        FilterSpec::Canny(p) => {
            let mut data = src.into_owned();
            per_slice(&mut data, shape, progress, |s| {
                let out = canny::canny_buffer(s, ny, nx, p)?;
                s.copy_from_slice(&out);
                Ok(())
            })?;
            data
        }
        FilterSpec::Threshold(p) => {
            let mut out = Vec::with_capacity(src.len());
            intensity::threshold_into(&src, p.value, p.invert, &mut out);
            out
        }
        FilterSpec::Otsu(p) => {
            let mut out = Vec::with_capacity(src.len());
            if p.per_slice {
                let mut ticker = Ticker::new(progress, shape[0] as u64);
                for slice in src.chunks(ny * nx) {
                    let t = intensity::otsu_threshold(slice, p.nbins);
                    intensity::threshold_into(slice, t, p.invert, &mut out);
                    ticker.tick()?;
                }
            } else {
                let mut ticker = Ticker::new(progress, 2);
                let t = intensity::otsu_threshold(&src, p.nbins);
                ticker.tick()?;
                intensity::threshold_into(&src, t, p.invert, &mut out);
                ticker.tick()?;
            }
            out
        }
        FilterSpec::Morphology(p) => {
            morphology::morphology_buffer(&src, shape, p, 0.0, 1.0, progress)?
        }
    };
    Ok(from_vec3(out, shape))
}

/// Applies the filters in order; progress runs over all stages (each stage gets an equal
/// share of the 0..=1000·n scale).
pub fn apply_pipeline(
    specs: &[FilterSpec],
    volume: ArrayView3<'_, f32>,
    progress: &mut dyn Progress,
) -> Result<Array3<f32>, FilterError> {
    for spec in specs {
        spec.validate()?;
    }
    let mut cur = volume.to_owned();
    let stages = specs.len() as u64;
    for (i, spec) in specs.iter().enumerate() {
        let mut stage = StageProgress {
            inner: progress,
            stage: i as u64,
            stages,
        };
        cur = apply_filter(spec, cur.view(), &mut stage)?;
    }
    Ok(cur)
}

/// A saved list of filters: `{"version":1,"steps":[{"filter":...}, ...]}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
    /// Format version (currently 1).
    #[serde(default = "pipeline_version")]
    pub version: u32,
    /// Filters, applied in order.
    pub steps: Vec<FilterSpec>,
}

fn pipeline_version() -> u32 {
    Pipeline::VERSION
}

impl Pipeline {
    /// The format version written by [`Pipeline::to_json`].
    pub const VERSION: u32 = 1;

    /// A pipeline of these steps.
    pub fn new(steps: Vec<FilterSpec>) -> Self {
        Self {
            version: Self::VERSION,
            steps,
        }
    }

    /// The slices above and below a slice that its result depends on, over all steps
    /// ([`FilterSpec::z_reach`]); `None` when a step reads the whole volume.
    pub fn z_reach(&self) -> Option<usize> {
        self.steps.iter().map(FilterSpec::z_reach).sum()
    }

    /// Pretty-printed JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self)
            .expect("filter specs contain only JSON-representable values")
    }

    /// Reads a pipeline (an object with `steps`, or a bare array of steps) and validates every
    /// step; errors name the step.
    pub fn from_json(text: &str) -> Result<Self, FilterError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| FilterError::Pipeline(e.to_string()))?;
        let pipeline = if value.is_array() {
            let steps: Vec<FilterSpec> =
                serde_json::from_value(value).map_err(|e| FilterError::Pipeline(e.to_string()))?;
            Pipeline::new(steps)
        } else {
            let p: Pipeline =
                serde_json::from_value(value).map_err(|e| FilterError::Pipeline(e.to_string()))?;
            if p.version != Self::VERSION {
                return Err(FilterError::Pipeline(format!(
                    "unsupported version {} (this build reads version {})",
                    p.version,
                    Self::VERSION
                )));
            }
            p
        };
        for (i, step) in pipeline.steps.iter().enumerate() {
            step.validate().map_err(|e| {
                FilterError::Pipeline(format!("step {} ({}): {e}", i + 1, step.name()))
            })?;
        }
        Ok(pipeline)
    }

    /// Applies all steps; see [`apply_pipeline`].
    pub fn apply(
        &self,
        volume: ArrayView3<'_, f32>,
        progress: &mut dyn Progress,
    ) -> Result<Array3<f32>, FilterError> {
        apply_pipeline(&self.steps, volume, progress)
    }
}

/// One entry of the filter menu.
#[derive(Clone, Debug, PartialEq)]
pub struct CatalogEntry {
    /// Menu label ("Gaussian blur").
    pub label: &'static str,
    /// One line on what it does and when to use it.
    pub help: &'static str,
    /// The filter with a sensible starting setting.
    pub default: FilterSpec,
}

/// Every filter with a starting setting, in menu order: the app's "Add filter" list and
/// `emstudio filter --list`. CLAHE starts at the UNI-EM paper's 127 / 256 / 1.5.
pub fn catalog() -> Vec<CatalogEntry> {
    let e = |label, help, default| CatalogEntry {
        label,
        help,
        default,
    };
    vec![
        e(
            "Gaussian blur",
            "Smooths noise; sigma in voxels per axis.",
            FilterSpec::Gaussian(GaussianParams {
                sigma: vec![1.0, 1.0],
            }),
        ),
        e(
            "Median",
            "Removes speckle noise and keeps edges; window size in voxels.",
            FilterSpec::Median(MedianParams { size: vec![3, 3] }),
        ),
        e(
            "Bilateral",
            "Edge-preserving smoothing (per slice).",
            FilterSpec::Bilateral(BilateralParams {
                sigma_spatial: 3.0,
                sigma_range: 20.0,
                window: 0,
            }),
        ),
        e(
            "CLAHE",
            "Local contrast equalisation (block size, bins, max slope).",
            FilterSpec::Clahe(ClaheParams {
                block_size: vec![127, 127],
                bins: 256,
                max_slope: 1.5,
            }),
        ),
        e(
            "Invert",
            "Dark becomes bright; max empty = the data's maximum.",
            FilterSpec::Invert(InvertParams { max: None }),
        ),
        e(
            "Normalize",
            "Stretches contrast between two percentiles onto [out_min, out_max].",
            FilterSpec::Normalize(NormalizeParams {
                low_percentile: 1.0,
                high_percentile: 99.0,
                out_min: 0.0,
                out_max: 1.0,
                per_slice: false,
            }),
        ),
        e(
            "Unsharp mask",
            "Sharpens: adds amount × (image − blurred).",
            FilterSpec::UnsharpMask(UnsharpParams {
                radius: vec![2.0, 2.0],
                amount: 1.0,
                clip: None,
            }),
        ),
        e(
            "Canny edges",
            "Thin edge map (0/1) per slice.",
            FilterSpec::Canny(CannyParams {
                sigma: 2.0,
                low_threshold: 5.0,
                high_threshold: 15.0,
            }),
        ),
        e(
            "Threshold",
            "Mask (0/1) of values above the threshold (below with invert).",
            FilterSpec::Threshold(ThresholdParams {
                value: 128.0,
                invert: false,
            }),
        ),
        e(
            "Otsu threshold",
            "Mask (0/1) with the threshold chosen automatically.",
            FilterSpec::Otsu(OtsuParams {
                invert: false,
                per_slice: false,
                nbins: 256,
            }),
        ),
        e(
            "Morphology",
            "Erode / dilate / open / close, binary or grey.",
            FilterSpec::Morphology(MorphologyParams {
                op: MorphOp::Open,
                mode: MorphMode::Grey,
                footprint: FootprintShape::Ball,
                radius: vec![1, 1],
            }),
        ),
    ]
}

/// `u8` volume to `f32` (exact).
pub fn u8_to_f32(volume: ArrayView3<'_, u8>) -> Array3<f32> {
    volume.mapv(f32::from)
}

/// `u16` volume to `f32` (exact).
pub fn u16_to_f32(volume: ArrayView3<'_, u16>) -> Array3<f32> {
    volume.mapv(f32::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ops::ControlFlow;

    #[test]
    fn catalog_defaults_are_valid_and_cover_every_filter() {
        let c = catalog();
        let mut names: Vec<&str> = c.iter().map(|e| e.default.name()).collect();
        for e in &c {
            e.default.validate().expect(e.label);
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 11);
    }

    #[test]
    fn json_shape_reads_well() {
        let spec: FilterSpec =
            serde_json::from_str(r#"{"filter":"gaussian","sigma":[1,2,2]}"#).unwrap();
        assert_eq!(
            spec,
            FilterSpec::Gaussian(GaussianParams {
                sigma: vec![1.0, 2.0, 2.0]
            })
        );
        assert_eq!(spec.scope(), Scope::Volume);
        let text = serde_json::to_string(&spec).unwrap();
        assert_eq!(text, r#"{"filter":"gaussian","sigma":[1.0,2.0,2.0]}"#);
        let m: FilterSpec = serde_json::from_str(
            r#"{"filter":"morphology","op":"close","mode":"binary","footprint":"cross","radius":[1,1]}"#,
        )
        .unwrap();
        assert_eq!(m.scope(), Scope::PerSlice);
        assert!(serde_json::from_str::<FilterSpec>(
            r#"{"filter":"gaussian","sigma":[1,2],"oops":1}"#
        )
        .is_err());
        assert!(serde_json::from_str::<FilterSpec>(r#"{"filter":"nope"}"#).is_err());
    }

    #[test]
    fn pipeline_roundtrip_and_errors() {
        let p = Pipeline::new(vec![
            FilterSpec::Median(MedianParams { size: vec![3, 3] }),
            FilterSpec::Clahe(ClaheParams::default()),
            FilterSpec::Otsu(OtsuParams::default()),
        ]);
        let back = Pipeline::from_json(&p.to_json()).unwrap();
        assert_eq!(back, p);
        let bare = Pipeline::from_json(r#"[{"filter":"invert","max":255}]"#).unwrap();
        assert_eq!(bare.steps.len(), 1);
        let err =
            Pipeline::from_json(r#"{"version":1,"steps":[{"filter":"gaussian","sigma":[-1,1]}]}"#)
                .unwrap_err();
        assert!(err.to_string().contains("step 1 (gaussian)"), "{err}");
        assert!(Pipeline::from_json(r#"{"version":9,"steps":[]}"#).is_err());
        assert!(Pipeline::from_json("not json").is_err());
    }

    #[test]
    fn validation_messages() {
        let bad = [
            r#"{"filter":"gaussian","sigma":[1]}"#,
            r#"{"filter":"gaussian","sigma":[1,2,3,4]}"#,
            r#"{"filter":"gaussian","sigma":[-1,2]}"#,
            r#"{"filter":"median","size":[0,3]}"#,
            r#"{"filter":"median","size":[3,3,300]}"#,
            r#"{"filter":"bilateral","sigma_spatial":0,"sigma_range":10}"#,
            r#"{"filter":"clahe","block_size":[0,8]}"#,
            r#"{"filter":"normalize","low_percentile":90,"high_percentile":10}"#,
            r#"{"filter":"unsharp_mask","radius":[1,1],"clip":[1,0]}"#,
            r#"{"filter":"canny","low_threshold":5,"high_threshold":1}"#,
            r#"{"filter":"otsu","nbins":1}"#,
            r#"{"filter":"morphology","op":"erode","radius":[1,1,99]}"#,
        ];
        let v = Array3::<f32>::zeros((2, 3, 4));
        for text in bad {
            let spec: FilterSpec = serde_json::from_str(text).unwrap();
            let err = apply_filter(&spec, v.view(), &mut NoProgress).unwrap_err();
            assert!(
                matches!(err, FilterError::InvalidParameter { .. }),
                "{text}: {err}"
            );
        }
    }

    fn all_specs() -> Vec<FilterSpec> {
        let texts = [
            r#"{"filter":"gaussian","sigma":[1,1.5,2]}"#,
            r#"{"filter":"gaussian","sigma":[1,1]}"#,
            r#"{"filter":"median","size":[3,3,3]}"#,
            r#"{"filter":"median","size":[3,5]}"#,
            r#"{"filter":"bilateral","sigma_spatial":2,"sigma_range":20}"#,
            r#"{"filter":"clahe","block_size":[8,8],"bins":64,"max_slope":2}"#,
            r#"{"filter":"clahe","block_size":[2,8,8]}"#,
            r#"{"filter":"invert","max":255}"#,
            r#"{"filter":"invert"}"#,
            r#"{"filter":"normalize","low_percentile":1,"high_percentile":99,"per_slice":true}"#,
            r#"{"filter":"unsharp_mask","radius":[1,2,2],"amount":0.5}"#,
            r#"{"filter":"canny","sigma":1.5,"low_threshold":5,"high_threshold":20}"#,
            r#"{"filter":"threshold","value":100}"#,
            r#"{"filter":"otsu","per_slice":true}"#,
            r#"{"filter":"morphology","op":"open","mode":"binary","footprint":"ball","radius":[1,1,1]}"#,
            r#"{"filter":"morphology","op":"close","footprint":"box","radius":[1,2]}"#,
        ];
        texts
            .iter()
            .map(|t| serde_json::from_str(t).unwrap())
            .collect()
    }

    #[test]
    fn every_filter_handles_edge_shapes() {
        let shapes = [(0, 4, 4), (1, 1, 1), (1, 1, 7), (2, 3, 1), (3, 4, 5)];
        for spec in all_specs() {
            for shape in shapes {
                let flat = Array3::<f32>::from_elem(shape, 42.0);
                let out = apply_filter(&spec, flat.view(), &mut NoProgress).unwrap();
                assert_eq!(out.dim(), shape, "{spec:?}");
                let mut s = 1u32;
                let noisy = Array3::from_shape_fn(shape, |_| {
                    s = s.wrapping_mul(1664525).wrapping_add(1013904223);
                    (s >> 24) as f32
                });
                let out = apply_filter(&spec, noisy.view(), &mut NoProgress).unwrap();
                assert_eq!(out.dim(), shape);
                assert!(out.iter().all(|v| v.is_finite()), "{spec:?} {shape:?}");
                if shape.0 > 0 {
                    let prev = spec.apply_2d(noisy.index_axis(Axis(0), 0)).unwrap();
                    assert_eq!(prev.dim(), (shape.1, shape.2));
                }
            }
        }
    }

    #[test]
    fn cancellation_and_progress() {
        let v = Array3::<f32>::zeros((6, 8, 8));
        let mut calls = 0;
        let mut stop = |_d: u64, _t: u64| {
            calls += 1;
            ControlFlow::Break(())
        };
        let spec = FilterSpec::Median(MedianParams {
            size: vec![3, 3, 3],
        });
        assert_eq!(
            apply_filter(&spec, v.view(), &mut stop).unwrap_err(),
            FilterError::Cancelled(Cancelled)
        );
        assert_eq!(calls, 1);
        let mut last = (0, 0);
        let mut seen = |d: u64, t: u64| {
            assert!(d <= t);
            last = (d, t);
            ControlFlow::Continue(())
        };
        apply_pipeline(&all_specs(), v.view(), &mut seen).unwrap();
        assert_eq!(last.0, last.1);
    }
}
