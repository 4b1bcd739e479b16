//! Chunked 3D volumes with a voxel size.
//!
//! A [`Volume`] holds `z × y × x` voxels of one element type ([`Voxel`]: `u8`, `u16`, `u32`,
//! `f32`) with 1 (gray / label) or 3 (RGB) interleaved channels. Storage is a grid of chunks
//! (default `1 × 512 × 512`, i.e. one chunk per 512² tile of a slice) so that chunked formats
//! such as Zarr, streaming and chunk-diff undo fit without changing callers: all access goes
//! through voxel coordinates, slices or chunk indices, never through one flat buffer.
//! Edge chunks are clipped to the volume, so no memory is spent on padding.
//!
//! [`AnyVolume`] erases the element type for code (I/O, the worker) that handles whatever a
//! file contained.
//!
//! ```
//! use emstudio_core::volume::{Shape, Volume};
//! let mut v = Volume::<u16>::new(Shape::new(2, 3, 4), 1).unwrap();
//! v.set(1, 2, 3, 0, 7);
//! assert_eq!(v.get(1, 2, 3, 0), 7);
//! assert_eq!(v.slice(1)[2 * 4 + 3], 7);
//! ```

use serde::{Deserialize, Serialize};
use std::fmt;

/// Element types a volume can hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DType {
    /// Unsigned 8-bit (typical EM image).
    U8,
    /// Unsigned 16-bit (16-bit EM images, label IDs up to 65535).
    U16,
    /// Unsigned 32-bit (label IDs).
    U32,
    /// 32-bit float (probability maps, filter results).
    F32,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::U8 => 1,
            DType::U16 => 2,
            DType::U32 | DType::F32 => 4,
        }
    }
    /// Bits per element, as a user reads it ("8-bit").
    pub fn bits(self) -> u32 {
        self.size() as u32 * 8
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DType::U8 => "8-bit",
            DType::U16 => "16-bit",
            DType::U32 => "32-bit integer",
            DType::F32 => "32-bit float",
        })
    }
}

/// An element type a [`Volume`] can store.
pub trait Voxel: bytemuck::Pod + Default + PartialEq + fmt::Debug + Send + Sync + 'static {
    /// The runtime tag of this type.
    const DTYPE: DType;
    /// The value as `f64` (for display windows and statistics).
    fn to_f64(self) -> f64;
    /// For small integer types (`u8`, `u16`): the value as a table index, so per-pixel maps
    /// can be precomputed once per value instead of evaluated per pixel.
    fn table_index(self) -> Option<usize> {
        None
    }
}

macro_rules! impl_voxel {
    ($t:ty, $d:ident) => {
        impl Voxel for $t {
            const DTYPE: DType = DType::$d;
            fn to_f64(self) -> f64 {
                self as f64
            }
        }
    };
}
macro_rules! impl_voxel_table {
    ($t:ty, $d:ident) => {
        impl Voxel for $t {
            const DTYPE: DType = DType::$d;
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn table_index(self) -> Option<usize> {
                Some(self as usize)
            }
        }
    };
}
impl_voxel_table!(u8, U8);
impl_voxel_table!(u16, U16);
impl_voxel!(u32, U32);
impl_voxel!(f32, F32);

/// Extent of a volume or chunk, in voxels, ordered z, y, x.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Shape {
    /// Number of slices.
    pub z: usize,
    /// Rows per slice (height).
    pub y: usize,
    /// Columns per slice (width).
    pub x: usize,
}

impl Shape {
    /// A shape from z, y, x.
    pub const fn new(z: usize, y: usize, x: usize) -> Self {
        Self { z, y, x }
    }
    /// Voxel count, or `None` on overflow.
    pub fn checked_len(self) -> Option<usize> {
        self.z.checked_mul(self.y)?.checked_mul(self.x)
    }
    /// Voxels per z slice.
    pub fn slice_len(self) -> usize {
        self.y * self.x
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}×{}×{} (z×y×x)", self.z, self.y, self.x)
    }
}

/// Physical size of one voxel in nanometres, ordered z, y, x.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct VoxelSize {
    /// Section thickness (nm).
    pub z: f32,
    /// Pixel height (nm).
    pub y: f32,
    /// Pixel width (nm).
    pub x: f32,
}

impl Default for VoxelSize {
    fn default() -> Self {
        Self {
            z: 1.0,
            y: 1.0,
            x: 1.0,
        }
    }
}

/// Default chunk shape: one chunk per 512×512 tile of each slice.
pub const DEFAULT_CHUNK: Shape = Shape::new(1, 512, 512);

/// Errors creating or filling a volume.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VolumeError {
    /// A dimension is zero or the voxel count overflows.
    #[error("invalid volume shape {shape} with {channels} channel(s)")]
    InvalidShape {
        /// The requested shape.
        shape: Shape,
        /// The requested channel count.
        channels: usize,
    },
    /// A dense-array conversion was asked of a multi-channel (RGB) volume.
    #[error("this operation needs a single-channel volume, not {channels} channels")]
    MultiChannel {
        /// Channels of the volume.
        channels: usize,
    },
    /// A float volume (a probability map, say) was given where label IDs are needed.
    #[error(
        "holds 32-bit float values such as {value}, not label IDs (whole numbers ≥ 0): a \
         probability map must be thresholded into labels first (Postprocess panel, or \
         `emstudio label --threshold 0.5`)"
    )]
    NotLabels {
        /// The first value that is not a label ID.
        value: String,
    },
    /// A slice buffer had the wrong length.
    #[error("slice {z} has {got} values, expected {expected}")]
    SliceLength {
        /// Slice index.
        z: usize,
        /// Values given.
        got: usize,
        /// Values expected (`y * x * channels`).
        expected: usize,
    },
}

/// A chunked 3D volume of `T` with `channels` interleaved values per voxel.
#[derive(Clone, PartialEq)]
pub struct Volume<T: Voxel> {
    shape: Shape,
    channels: usize,
    chunk: Shape,
    grid: Shape,
    chunks: Vec<Vec<T>>,
    voxel_size: VoxelSize,
}

impl<T: Voxel> fmt::Debug for Volume<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Volume")
            .field("dtype", &T::DTYPE)
            .field("shape", &self.shape)
            .field("channels", &self.channels)
            .field("chunk", &self.chunk)
            .finish()
    }
}

impl<T: Voxel> Volume<T> {
    /// A zero-filled volume with the default chunk shape.
    pub fn new(shape: Shape, channels: usize) -> Result<Self, VolumeError> {
        Self::with_chunk_shape(shape, channels, DEFAULT_CHUNK)
    }

    /// A zero-filled volume with an explicit chunk shape (clipped to the volume).
    pub fn with_chunk_shape(
        shape: Shape,
        channels: usize,
        chunk: Shape,
    ) -> Result<Self, VolumeError> {
        let invalid = VolumeError::InvalidShape { shape, channels };
        if shape.z == 0 || shape.y == 0 || shape.x == 0 || channels == 0 {
            return Err(invalid);
        }
        if shape
            .checked_len()
            .and_then(|n| n.checked_mul(channels))
            .and_then(|n| n.checked_mul(T::DTYPE.size()))
            .is_none()
        {
            return Err(invalid);
        }
        let chunk = Shape::new(
            chunk.z.clamp(1, shape.z),
            chunk.y.clamp(1, shape.y),
            chunk.x.clamp(1, shape.x),
        );
        let grid = Shape::new(
            shape.z.div_ceil(chunk.z),
            shape.y.div_ceil(chunk.y),
            shape.x.div_ceil(chunk.x),
        );
        let mut chunks = Vec::with_capacity(grid.z * grid.y * grid.x);
        for gz in 0..grid.z {
            for gy in 0..grid.y {
                for gx in 0..grid.x {
                    let e = Self::extent_of(shape, chunk, gz, gy, gx);
                    chunks.push(vec![T::default(); e.z * e.y * e.x * channels]);
                }
            }
        }
        Ok(Self {
            shape,
            channels,
            chunk,
            grid,
            chunks,
            voxel_size: VoxelSize::default(),
        })
    }

    /// Builds a volume from whole z slices (`y * x * channels` values each, row-major).
    pub fn from_slices(
        y: usize,
        x: usize,
        channels: usize,
        slices: &[Vec<T>],
    ) -> Result<Self, VolumeError> {
        let mut v = Self::new(Shape::new(slices.len(), y, x), channels)?;
        for (z, s) in slices.iter().enumerate() {
            v.set_slice(z, s)?;
        }
        Ok(v)
    }

    fn extent_of(shape: Shape, chunk: Shape, gz: usize, gy: usize, gx: usize) -> Shape {
        Shape::new(
            chunk.z.min(shape.z - gz * chunk.z),
            chunk.y.min(shape.y - gy * chunk.y),
            chunk.x.min(shape.x - gx * chunk.x),
        )
    }

    /// Volume extent.
    pub fn shape(&self) -> Shape {
        self.shape
    }
    /// Values per voxel (1 gray/label, 3 RGB).
    pub fn channels(&self) -> usize {
        self.channels
    }
    /// Chunk shape (already clipped to the volume).
    pub fn chunk_shape(&self) -> Shape {
        self.chunk
    }
    /// Number of chunks along z, y, x.
    pub fn chunk_grid(&self) -> Shape {
        self.grid
    }
    /// Physical voxel size.
    pub fn voxel_size(&self) -> VoxelSize {
        self.voxel_size
    }
    /// Sets the physical voxel size.
    pub fn set_voxel_size(&mut self, voxel_size: VoxelSize) {
        self.voxel_size = voxel_size;
    }

    /// Origin (z, y, x) and extent of chunk `(gz, gy, gx)`.
    pub fn chunk_bounds(&self, gz: usize, gy: usize, gx: usize) -> (Shape, Shape) {
        let origin = Shape::new(gz * self.chunk.z, gy * self.chunk.y, gx * self.chunk.x);
        (origin, Self::extent_of(self.shape, self.chunk, gz, gy, gx))
    }

    /// Values of chunk `(gz, gy, gx)`, row-major over its clipped extent.
    pub fn chunk_data(&self, gz: usize, gy: usize, gx: usize) -> &[T] {
        &self.chunks[(gz * self.grid.y + gy) * self.grid.x + gx]
    }

    /// Number of chunks.
    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }

    /// Values of the chunk with row-major index `i`.
    pub fn chunk_by_index(&self, i: usize) -> &[T] {
        &self.chunks[i]
    }

    /// Mutable values of the chunk with row-major index `i`.
    pub fn chunk_by_index_mut(&mut self, i: usize) -> &mut [T] {
        &mut self.chunks[i]
    }

    /// Slices `z0..z1` covered by the chunk with row-major index `i`.
    pub fn chunk_z_range(&self, i: usize) -> (usize, usize) {
        let gz = i / (self.grid.y * self.grid.x);
        let z0 = gz * self.chunk.z;
        (z0, (z0 + self.chunk.z).min(self.shape.z))
    }

    /// Mutable values of chunk `(gz, gy, gx)`.
    pub fn chunk_data_mut(&mut self, gz: usize, gy: usize, gx: usize) -> &mut [T] {
        let i = (gz * self.grid.y + gy) * self.grid.x + gx;
        &mut self.chunks[i]
    }

    /// Chunk index (row-major over the chunk grid) and value offset inside that chunk of voxel
    /// `(z, y, x)`, channel 0 (the address the edit journal records).
    #[inline]
    pub(crate) fn locate(&self, z: usize, y: usize, x: usize) -> (usize, usize) {
        let (gz, gy, gx) = (z / self.chunk.z, y / self.chunk.y, x / self.chunk.x);
        let e = Self::extent_of(self.shape, self.chunk, gz, gy, gx);
        let (lz, ly, lx) = (z % self.chunk.z, y % self.chunk.y, x % self.chunk.x);
        (
            (gz * self.grid.y + gy) * self.grid.x + gx,
            ((lz * e.y + ly) * e.x + lx) * self.channels,
        )
    }

    /// One value. Panics when out of bounds (a caller bug).
    pub fn get(&self, z: usize, y: usize, x: usize, c: usize) -> T {
        assert!(z < self.shape.z && y < self.shape.y && x < self.shape.x && c < self.channels);
        let (ci, off) = self.locate(z, y, x);
        self.chunks[ci][off + c]
    }

    /// Sets one value. Panics when out of bounds (a caller bug).
    pub fn set(&mut self, z: usize, y: usize, x: usize, c: usize, value: T) {
        assert!(z < self.shape.z && y < self.shape.y && x < self.shape.x && c < self.channels);
        let (ci, off) = self.locate(z, y, x);
        self.chunks[ci][off + c] = value;
    }

    /// A copy of slice `z`, row-major, `y * x * channels` values.
    pub fn slice(&self, z: usize) -> Vec<T> {
        let mut out = vec![T::default(); self.shape.slice_len() * self.channels];
        self.read_slice_into(z, &mut out);
        out
    }

    /// Copies slice `z` into `out` (`y * x * channels` values).
    pub fn read_slice_into(&self, z: usize, out: &mut [T]) {
        assert!(z < self.shape.z);
        assert_eq!(out.len(), self.shape.slice_len() * self.channels);
        let c = self.channels;
        let gz = z / self.chunk.z;
        let lz = z % self.chunk.z;
        for gy in 0..self.grid.y {
            for gx in 0..self.grid.x {
                let e = Self::extent_of(self.shape, self.chunk, gz, gy, gx);
                let data = self.chunk_data(gz, gy, gx);
                let row = e.x * c;
                for ly in 0..e.y {
                    let src = (lz * e.y + ly) * row;
                    let y = gy * self.chunk.y + ly;
                    let dst = (y * self.shape.x + gx * self.chunk.x) * c;
                    out[dst..dst + row].copy_from_slice(&data[src..src + row]);
                }
            }
        }
    }

    /// Overwrites slice `z` from `values` (`y * x * channels`, row-major).
    pub fn set_slice(&mut self, z: usize, values: &[T]) -> Result<(), VolumeError> {
        let expected = self.shape.slice_len() * self.channels;
        if z >= self.shape.z || values.len() != expected {
            return Err(VolumeError::SliceLength {
                z,
                got: values.len(),
                expected,
            });
        }
        let c = self.channels;
        let gz = z / self.chunk.z;
        let lz = z % self.chunk.z;
        let (shape, chunk) = (self.shape, self.chunk);
        for gy in 0..self.grid.y {
            for gx in 0..self.grid.x {
                let e = Self::extent_of(shape, chunk, gz, gy, gx);
                let data = self.chunk_data_mut(gz, gy, gx);
                let row = e.x * c;
                for ly in 0..e.y {
                    let dst = (lz * e.y + ly) * row;
                    let y = gy * chunk.y + ly;
                    let src = (y * shape.x + gx * chunk.x) * c;
                    data[dst..dst + row].copy_from_slice(&values[src..src + row]);
                }
            }
        }
        Ok(())
    }

    /// Copies a single-channel volume into a dense, contiguous `z × y × x` array (the form the
    /// filters, labelling and metrics work on).
    pub fn to_array(&self) -> Result<ndarray::Array3<T>, VolumeError> {
        if self.channels != 1 {
            return Err(VolumeError::MultiChannel {
                channels: self.channels,
            });
        }
        let s = self.shape;
        let mut data = vec![T::default(); s.slice_len() * s.z];
        for (z, out) in data.chunks_exact_mut(s.slice_len()).enumerate() {
            self.read_slice_into(z, out);
        }
        ndarray::Array3::from_shape_vec((s.z, s.y, s.x), data).map_err(|_| {
            VolumeError::InvalidShape {
                shape: s,
                channels: 1,
            }
        })
    }

    /// A single-channel volume from a dense `z × y × x` array (any memory layout).
    pub fn from_array(array: ndarray::ArrayView3<'_, T>) -> Result<Self, VolumeError> {
        let (z, y, x) = array.dim();
        let mut v = Self::new(Shape::new(z, y, x), 1)?;
        for (k, plane) in array.outer_iter().enumerate() {
            let values: Vec<T> = plane.iter().copied().collect();
            v.set_slice(k, &values)?;
        }
        Ok(v)
    }

    /// Smallest and largest value over all voxels and channels.
    pub fn min_max(&self) -> (T, T)
    where
        T: PartialOrd,
    {
        let mut it = self.chunks.iter().flat_map(|c| c.iter().copied());
        let first = it.next().unwrap_or_default();
        it.fold((first, first), |(lo, hi), v| {
            (if v < lo { v } else { lo }, if v > hi { v } else { hi })
        })
    }

    /// Bytes held by voxel data.
    pub fn byte_len(&self) -> usize {
        self.chunks.iter().map(|c| c.len()).sum::<usize>() * T::DTYPE.size()
    }
}

/// A volume of any supported element type.
#[derive(Clone, Debug, PartialEq)]
pub enum AnyVolume {
    /// 8-bit.
    U8(Volume<u8>),
    /// 16-bit.
    U16(Volume<u16>),
    /// 32-bit unsigned.
    U32(Volume<u32>),
    /// 32-bit float.
    F32(Volume<f32>),
}

/// Calls `$body` with `$v` bound to the typed volume inside an [`AnyVolume`].
#[macro_export]
macro_rules! with_volume {
    ($any:expr, $v:ident => $body:expr) => {
        match $any {
            $crate::volume::AnyVolume::U8($v) => $body,
            $crate::volume::AnyVolume::U16($v) => $body,
            $crate::volume::AnyVolume::U32($v) => $body,
            $crate::volume::AnyVolume::F32($v) => $body,
        }
    };
}

macro_rules! impl_from_volume {
    ($t:ty, $v:ident) => {
        impl From<Volume<$t>> for AnyVolume {
            fn from(v: Volume<$t>) -> Self {
                AnyVolume::$v(v)
            }
        }
    };
}
impl_from_volume!(u8, U8);
impl_from_volume!(u16, U16);
impl_from_volume!(u32, U32);
impl_from_volume!(f32, F32);

impl AnyVolume {
    /// Element type.
    pub fn dtype(&self) -> DType {
        match self {
            AnyVolume::U8(_) => DType::U8,
            AnyVolume::U16(_) => DType::U16,
            AnyVolume::U32(_) => DType::U32,
            AnyVolume::F32(_) => DType::F32,
        }
    }
    /// Volume extent.
    pub fn shape(&self) -> Shape {
        with_volume!(self, v => v.shape())
    }
    /// Values per voxel.
    pub fn channels(&self) -> usize {
        with_volume!(self, v => v.channels())
    }
    /// Physical voxel size.
    pub fn voxel_size(&self) -> VoxelSize {
        with_volume!(self, v => v.voxel_size())
    }
    /// Sets the physical voxel size.
    pub fn set_voxel_size(&mut self, vs: VoxelSize) {
        with_volume!(self, v => v.set_voxel_size(vs))
    }
    /// Smallest and largest value as `f64`.
    pub fn min_max_f64(&self) -> (f64, f64) {
        with_volume!(self, v => { let (a, b) = v.min_max(); (a.to_f64(), b.to_f64()) })
    }
    /// One value as `f64`. Panics when out of bounds (a caller bug).
    pub fn get_f64(&self, z: usize, y: usize, x: usize, c: usize) -> f64 {
        with_volume!(self, v => v.get(z, y, x, c).to_f64())
    }
    /// Slice `z` converted to `f64` (for cursor readouts and generic code).
    pub fn slice_f64(&self, z: usize) -> Vec<f64> {
        with_volume!(self, v => v.slice(z).into_iter().map(Voxel::to_f64).collect())
    }
    /// Slice `z` as label IDs (`u32`); floats are truncated, channels beyond the first ignored.
    pub fn slice_labels(&self, z: usize) -> Vec<u32> {
        let c = self.channels();
        with_volume!(self, v => v
            .slice(z)
            .into_iter()
            .step_by(c)
            .map(|x| x.to_f64().max(0.0) as u32)
            .collect())
    }
    /// Bytes held by voxel data.
    pub fn byte_len(&self) -> usize {
        with_volume!(self, v => v.byte_len())
    }

    /// Slices `zs` as a dense `f32` array (`z, y, x`), the form the filters take. `u8`/`u16`
    /// convert exactly; `u32` above 2²⁴ rounds. Multi-channel volumes are refused.
    pub fn to_f32_array(
        &self,
        zs: std::ops::Range<usize>,
    ) -> Result<ndarray::Array3<f32>, VolumeError> {
        let s = self.shape();
        if self.channels() != 1 {
            return Err(VolumeError::MultiChannel {
                channels: self.channels(),
            });
        }
        let zs = zs.start.min(s.z)..zs.end.min(s.z);
        let plane = s.slice_len();
        let mut data = Vec::with_capacity(plane * zs.len());
        for z in zs.clone() {
            with_volume!(self, v => data.extend(v.slice(z).into_iter().map(|x| x.to_f64() as f32)));
        }
        ndarray::Array3::from_shape_vec((zs.len(), s.y, s.x), data).map_err(|_| {
            VolumeError::InvalidShape {
                shape: s,
                channels: 1,
            }
        })
    }

    /// The volume as a probability map in `[0, 1]`: 8-bit ÷ 255, 16-bit ÷ 65535 (maps saved as
    /// images), 32-bit integer and float values unchanged. Multi-channel volumes are refused.
    pub fn to_unit_f32_array(&self) -> Result<ndarray::Array3<f32>, VolumeError> {
        self.to_unit_f32_slices(0..self.shape().z)
    }

    /// Slices `zs` of [`AnyVolume::to_unit_f32_array`].
    pub fn to_unit_f32_slices(
        &self,
        zs: std::ops::Range<usize>,
    ) -> Result<ndarray::Array3<f32>, VolumeError> {
        let mut a = self.to_f32_array(zs)?;
        let scale = match self.dtype() {
            DType::U8 => 1.0 / 255.0,
            DType::U16 => 1.0 / 65535.0,
            DType::U32 | DType::F32 => 1.0,
        };
        if scale != 1.0 {
            a.mapv_inplace(|v| v * scale);
        }
        Ok(a)
    }

    /// Slice `z` channel by channel (`channel, y, x`), scaled to `[0, 1]` like
    /// [`AnyVolume::to_unit_f32_slices`] — the input of the networks, which take gray (1) or
    /// RGB (3) planes. Panics when `z` is out of bounds (a caller bug).
    pub fn unit_f32_planes(&self, z: usize) -> ndarray::Array3<f32> {
        let s = self.shape();
        let c = self.channels();
        let scale = match self.dtype() {
            DType::U8 => 1.0 / 255.0,
            DType::U16 => 1.0 / 65535.0,
            DType::U32 | DType::F32 => 1.0,
        };
        let interleaved: Vec<f32> = with_volume!(self, v => v.slice(z).into_iter().map(|x| (x.to_f64() * scale) as f32).collect());
        ndarray::Array3::from_shape_fn((c, s.y, s.x), |(k, y, x)| {
            interleaved[(y * s.x + x) * c + k]
        })
    }

    /// A label volume in the smallest type that holds its largest ID (`u16` up to 65535, else
    /// `u32`), so label stacks export as 16-bit PNG whenever they can.
    pub fn from_labels(
        labels: ndarray::ArrayView3<'_, u32>,
        voxel_size: VoxelSize,
    ) -> Result<Self, VolumeError> {
        let max = labels.iter().copied().max().unwrap_or(0);
        let mut out: AnyVolume = if max <= u32::from(u16::MAX) {
            Volume::from_array(labels.mapv(|v| v as u16).view())?.into()
        } else {
            Volume::from_array(labels)?.into()
        };
        out.set_voxel_size(voxel_size);
        Ok(out)
    }

    /// Checks that the volume holds label IDs: integer volumes always do; a float volume only
    /// when every value is a whole number in `0..=u32::MAX` (a float TIFF of IDs). A
    /// probability map is refused, never truncated to IDs: scored as labels it would be all
    /// background and get a perfect score.
    pub fn check_label_values(&self) -> Result<(), VolumeError> {
        (0..self.shape().z).try_for_each(|z| self.check_slice_labels(z))
    }

    /// [`AnyVolume::check_label_values`] of slice `z` alone.
    fn check_slice_labels(&self, z: usize) -> Result<(), VolumeError> {
        let AnyVolume::F32(v) = self else {
            return Ok(());
        };
        let is_id = |x: f32| x >= 0.0 && x <= u32::MAX as f32 && x.fract() == 0.0;
        match v.slice(z).into_iter().find(|&x| !is_id(x)) {
            Some(x) => Err(VolumeError::NotLabels {
                value: x.to_string(),
            }),
            None => Ok(()),
        }
    }

    /// Slice `z` as label IDs after [`AnyVolume::check_label_values`] (of the slice alone).
    pub fn try_slice_labels(&self, z: usize) -> Result<Vec<u32>, VolumeError> {
        self.check_slice_labels(z)?;
        Ok(self.slice_labels(z))
    }

    /// The whole volume as label IDs (`u32`, see [`AnyVolume::slice_labels`]); a float volume
    /// that is not made of IDs is refused ([`AnyVolume::check_label_values`]).
    pub fn to_label_array(&self) -> Result<ndarray::Array3<u32>, VolumeError> {
        let s = self.shape();
        if self.channels() != 1 {
            return Err(VolumeError::MultiChannel {
                channels: self.channels(),
            });
        }
        self.check_label_values()?;
        let mut data = Vec::with_capacity(s.slice_len() * s.z);
        for z in 0..s.z {
            data.extend(self.slice_labels(z));
        }
        ndarray::Array3::from_shape_vec((s.z, s.y, s.x), data).map_err(|_| {
            VolumeError::InvalidShape {
                shape: s,
                channels: 1,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rejects_empty_and_overflowing_shapes() {
        assert!(Volume::<u8>::new(Shape::new(0, 4, 4), 1).is_err());
        assert!(Volume::<u8>::new(Shape::new(1, 4, 4), 0).is_err());
        assert!(Volume::<u32>::new(Shape::new(usize::MAX, 2, 2), 1).is_err());
    }

    #[test]
    fn edge_chunks_are_clipped() {
        let v = Volume::<u8>::with_chunk_shape(Shape::new(3, 5, 7), 1, Shape::new(2, 4, 4))
            .expect("volume");
        assert_eq!(v.chunk_grid(), Shape::new(2, 2, 2));
        assert_eq!(v.byte_len(), 3 * 5 * 7);
        assert_eq!(v.chunk_bounds(1, 1, 1).1, Shape::new(1, 1, 3));
    }

    #[test]
    fn dense_array_round_trip() {
        let a = ndarray::Array3::from_shape_fn((3, 5, 700), |(z, y, x)| {
            (z * 10000 + y * 1000 + x) as u32
        });
        let v = Volume::from_array(a.view()).expect("from");
        assert_eq!(v.chunk_grid(), Shape::new(3, 1, 2));
        assert_eq!(v.to_array().expect("to"), a);
        let rgb = Volume::<u8>::new(Shape::new(1, 2, 2), 3).expect("rgb");
        assert_eq!(
            rgb.to_array(),
            Err(VolumeError::MultiChannel { channels: 3 })
        );
    }

    #[test]
    fn unit_planes_split_channels_and_scale() {
        let mut rgb = Volume::<u8>::new(Shape::new(2, 1, 2), 3).expect("rgb");
        rgb.set_slice(1, &[255, 0, 51, 0, 102, 255]).expect("slice");
        let planes = AnyVolume::U8(rgb).unit_f32_planes(1);
        assert_eq!(planes.dim(), (3, 1, 2));
        assert_eq!(planes[[0, 0, 0]], 1.0);
        assert_eq!(planes[[2, 0, 0]], 0.2);
        assert_eq!(planes[[1, 0, 1]], 0.4);
        assert_eq!(planes[[2, 0, 1]], 1.0);
        let gray = ndarray::Array3::from_elem((1, 2, 2), 65535u16);
        let gray = AnyVolume::from(Volume::from_array(gray.view()).expect("u16"));
        assert_eq!(
            gray.unit_f32_planes(0),
            ndarray::Array3::from_elem((1, 2, 2), 1.0)
        );
    }

    #[test]
    fn label_volumes_take_the_smallest_type() {
        let small = ndarray::Array3::from_elem((1, 2, 2), 65535u32);
        let v = AnyVolume::from_labels(small.view(), VoxelSize::default()).expect("u16");
        assert_eq!(v.dtype(), DType::U16);
        assert_eq!(v.to_label_array().expect("labels"), small);
        let big = ndarray::Array3::from_elem((1, 2, 2), 65536u32);
        let v = AnyVolume::from_labels(big.view(), VoxelSize::default()).expect("u32");
        assert_eq!(v.dtype(), DType::U32);
        let rgb = Volume::<u8>::new(Shape::new(1, 2, 2), 3).expect("rgb");
        assert!(AnyVolume::U8(rgb).to_f32_array(0..1).is_err());
        let map = ndarray::Array3::from_elem((1, 1, 2), 255u8);
        let unit = AnyVolume::from(Volume::from_array(map.view()).expect("u8"))
            .to_unit_f32_array()
            .expect("unit");
        assert_eq!(unit[[0, 0, 1]], 1.0);
    }

    #[test]
    fn wrong_slice_length_is_an_error() {
        let mut v = Volume::<u16>::new(Shape::new(1, 2, 2), 1).expect("volume");
        assert_eq!(
            v.set_slice(0, &[1, 2, 3]),
            Err(VolumeError::SliceLength {
                z: 0,
                got: 3,
                expected: 4
            })
        );
    }

    proptest! {
        #[test]
        fn slices_round_trip_through_any_chunking(
            z in 1usize..5, y in 1usize..20, x in 1usize..20, c in prop_oneof![Just(1usize), Just(3usize)],
            cz in 1usize..4, cy in 1usize..9, cx in 1usize..9, seed in any::<u32>(),
        ) {
            let mut v = Volume::<u32>::with_chunk_shape(Shape::new(z, y, x), c, Shape::new(cz, cy, cx)).unwrap();
            let slices: Vec<Vec<u32>> = (0..z)
                .map(|k| (0..y * x * c).map(|i| seed.wrapping_mul(31).wrapping_add((k * 1000 + i) as u32)).collect())
                .collect();
            for (k, s) in slices.iter().enumerate() { v.set_slice(k, s).unwrap(); }
            for (k, s) in slices.iter().enumerate() { prop_assert_eq!(&v.slice(k), s); }
            // voxel access agrees with slice access
            let (zz, yy, xx) = (z - 1, y / 2, x - 1);
            prop_assert_eq!(v.get(zz, yy, xx, c - 1), slices[zz][(yy * x + xx) * c + c - 1]);
        }
    }
}
