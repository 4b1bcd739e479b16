//! The data worker's half of the networks: what it sends the network worker (`nets-worker/`)
//! and what it does with the answers.
//!
//! Platform-free and tested natively: [`train_inputs`] checks a `Train` request against the
//! layers and gathers its slices (gray or RGB images scaled to [0, 1] and sent channel by
//! channel, labels as `u32`); [`InferPlan`]
//! checks an `Infer` request, hands out one slice image at a time and assembles the predicted
//! slices into the new layer. The browser glue (`web_nets.rs`) carries both across to the
//! network worker; the tests below run them against `emstudio_nets_worker::jobs` directly.

use crate::workspace::Workspace;
use emstudio_core::{AnyVolume, Volume};
use emstudio_protocol::nets::Plane;
use emstudio_protocol::{LayerId, Region};
use ndarray::{Array2, Array3};

/// What a `Train` request asks for.
#[derive(Clone, Debug)]
pub struct TrainRequest {
    /// Image layer.
    pub image: LayerId,
    /// Ground-truth label layer.
    pub label: LayerId,
    /// Training slices.
    pub train_slices: Vec<usize>,
    /// Validation slices (may be empty).
    pub validation_slices: Vec<usize>,
}

/// One slice to learn from, ready to attach.
#[derive(Clone, Debug, PartialEq)]
pub struct SliceData {
    /// Its size (the image's channels).
    pub plane: Plane,
    /// Image scaled to [0, 1], channel by channel, each row-major.
    pub image: Vec<f32>,
    /// Label values, row-major.
    pub labels: Vec<u32>,
}

/// The slices of a training run and what they are.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainInputs {
    /// Training slices.
    pub train: Vec<SliceData>,
    /// Validation slices.
    pub validation: Vec<SliceData>,
    /// "image / gt, slices [0, 1]" for the model's provenance.
    pub data_names: Vec<String>,
}

/// Refuses layers the networks cannot take (neither gray nor RGB), naming the layer.
fn check_channels(name: &str, channels: usize) -> Result<(), String> {
    if channels == 1 || channels == 3 {
        Ok(())
    } else {
        Err(format!(
            "{name}: networks take grayscale (1-channel) or RGB (3-channel) images, this one has {channels} channels"
        ))
    }
}

/// Slice `z` of an image layer scaled to [0, 1], `channel, y, x`, or an error naming the layer.
fn unit_planes(ws: &Workspace, id: LayerId, z: usize) -> Result<Array3<f32>, String> {
    let layer = ws.layer(id)?;
    check_channels(&layer.info.name, layer.info.channels)?;
    Ok(layer.volume.unit_f32_planes(z))
}

/// The attachment size of `[channels, y, x]` planes.
fn plane_of(planes: &Array3<f32>) -> Plane {
    let (channels, height, width) = planes.dim();
    Plane {
        height,
        width,
        channels,
    }
}

fn check_slices(name: &str, zs: &[usize], depth: usize) -> Result<(), String> {
    match zs.iter().find(|&&z| z >= depth) {
        Some(z) => Err(format!(
            "{name}: slice {z} requested, the stack has {depth} slices (0–{})",
            depth.saturating_sub(1)
        )),
        None => Ok(()),
    }
}

/// Checks a training request against the layers and gathers its slices.
pub fn train_inputs(ws: &Workspace, req: &TrainRequest) -> Result<TrainInputs, String> {
    let image_layer = ws.layer(req.image)?;
    let label_layer = ws.layer(req.label)?;
    let (iname, lname) = (&image_layer.info.name, &label_layer.info.name);
    if !label_layer.info.kind.is_labels() {
        return Err(format!("{lname}: ground truth must be a label layer"));
    }
    if image_layer.info.shape != label_layer.info.shape {
        return Err(format!(
            "{lname} is {} but {iname} is {}: the ground truth must match the image",
            label_layer.info.shape, image_layer.info.shape
        ));
    }
    if req.train_slices.is_empty() {
        return Err("choose at least one training slice".into());
    }
    let depth = image_layer.info.shape.z;
    check_slices(iname, &req.train_slices, depth)?;
    check_slices(iname, &req.validation_slices, depth)?;
    let slices = |zs: &[usize]| -> Result<Vec<SliceData>, String> {
        zs.iter()
            .map(|&z| {
                let image = unit_planes(ws, req.image, z)?;
                Ok(SliceData {
                    plane: plane_of(&image),
                    image: image.into_iter().collect(),
                    labels: label_layer
                        .volume
                        .try_slice_labels(z)
                        .map_err(|e| format!("{lname}: {e}"))?,
                })
            })
            .collect()
    };
    Ok(TrainInputs {
        train: slices(&req.train_slices)?,
        validation: slices(&req.validation_slices)?,
        data_names: vec![format!("{iname} / {lname}, slices {:?}", req.train_slices)],
    })
}

/// Slice `z` of an image layer scaled to [0, 1], channel by channel (a training preview's
/// input).
pub fn preview_image(
    ws: &Workspace,
    image: LayerId,
    z: usize,
) -> Result<(Plane, Vec<f32>), String> {
    let layer = ws.layer(image)?;
    check_slices(&layer.info.name, &[z], layer.info.shape.z)?;
    let a = unit_planes(ws, image, z)?;
    Ok((plane_of(&a), a.into_iter().collect()))
}

/// Writes `slice` into slice `z`'s `region` of `target` (made, all zero, on first use).
fn put<T: Clone + Default>(
    target: &mut Option<Array3<T>>,
    shape: (usize, usize, usize),
    region: Region,
    z: usize,
    slice: Array2<T>,
) {
    let Region { y0, y1, x0, x1 } = region;
    target
        .get_or_insert_with(|| Array3::from_elem(shape, T::default()))
        .slice_mut(ndarray::s![z, y0..y1, x0..x1])
        .assign(&slice);
}

/// What the network worker says of a loaded model.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSummary {
    /// Architecture name.
    pub arch: String,
    /// Steps it was trained for.
    pub steps: u64,
    /// K-class model (slices come back as classes).
    pub classes: bool,
    /// The device it runs on.
    pub device: String,
}

/// An inference run over an image layer, one slice at a time: one-output models make a
/// foreground probability layer (`f32`), K-class models a class label layer; slices not asked
/// for stay 0.
pub struct InferPlan {
    layer: LayerId,
    /// The image's channels (1 gray, 3 RGB).
    channels: usize,
    zs: Vec<usize>,
    region: Region,
    /// The stack's depth, rows and columns.
    shape: (usize, usize, usize),
    done: usize,
    prob: Option<Array3<f32>>,
    class: Option<Array3<u32>>,
    /// Orientations the network averages each tile over (said in the summary).
    views: u8,
    /// Tiles run so far (orientations counted) and the side of the last ones (said in the
    /// summary; benchmarks turn it into pixels through the network).
    tiles: usize,
    tile_side: (usize, usize),
}

impl InferPlan {
    /// Checks the layer, slices (`zs` empty: all) and region (none: whole slices).
    pub fn new(
        ws: &Workspace,
        layer: LayerId,
        zs: &[usize],
        region: Option<Region>,
    ) -> Result<Self, String> {
        let l = ws.layer(layer)?;
        check_channels(&l.info.name, l.info.channels)?;
        let s = l.info.shape;
        let zs: Vec<usize> = if zs.is_empty() {
            (0..s.z).collect()
        } else {
            check_slices(&l.info.name, zs, s.z)?;
            zs.to_vec()
        };
        let region = region.unwrap_or(Region {
            y0: 0,
            y1: s.y,
            x0: 0,
            x1: s.x,
        });
        if region.y0 >= region.y1 || region.x0 >= region.x1 || region.y1 > s.y || region.x1 > s.x {
            return Err(format!(
                "{}: region rows {}..{}, columns {}..{} is empty or outside the {}×{} slice",
                l.info.name, region.y0, region.y1, region.x0, region.x1, s.y, s.x
            ));
        }
        Ok(Self {
            layer,
            channels: l.info.channels,
            zs,
            region,
            shape: (s.z, s.y, s.x),
            done: 0,
            prob: None,
            class: None,
            views: 1,
            tiles: 0,
            tile_side: (0, 0),
        })
    }

    /// Slices done and in all.
    pub fn done_of(&self) -> (usize, usize) {
        (self.done, self.zs.len())
    }

    /// The size of each predicted slice (the region, one channel).
    pub fn plane(&self) -> Plane {
        Plane::single(
            self.region.y1 - self.region.y0,
            self.region.x1 - self.region.x0,
        )
    }

    /// The size of each image sent (the region, with the image's channels).
    pub fn image_plane(&self) -> Plane {
        Plane {
            channels: self.channels,
            ..self.plane()
        }
    }

    /// The region of the next slice to run, scaled to [0, 1], channel by channel; `None` when
    /// all are done.
    pub fn next_image(&self, ws: &Workspace) -> Result<Option<Vec<f32>>, String> {
        let Some(&z) = self.zs.get(self.done) else {
            return Ok(None);
        };
        let image = unit_planes(ws, self.layer, z)?;
        let Region { y0, y1, x0, x1 } = self.region;
        Ok(Some(
            image
                .slice(ndarray::s![.., y0..y1, x0..x1])
                .iter()
                .copied()
                .collect(),
        ))
    }

    /// Puts the predicted probabilities of the current slice in place; false when all are
    /// done.
    pub fn store_probability(&mut self, values: Vec<f32>) -> Result<bool, String> {
        let (z, slice) = self.placed(values)?;
        put(&mut self.prob, self.shape, self.region, z, slice);
        Ok(self.advance())
    }

    /// Puts the predicted classes of the current slice in place; false when all are done.
    pub fn store_classes(&mut self, values: Vec<u32>) -> Result<bool, String> {
        let (z, slice) = self.placed(values)?;
        put(&mut self.class, self.shape, self.region, z, slice);
        Ok(self.advance())
    }

    /// The current slice's index and its values as a region-sized array.
    fn placed<T>(&self, values: Vec<T>) -> Result<(usize, Array2<T>), String> {
        let z = self.current(values.len())?;
        let p = self.plane();
        let slice =
            Array2::from_shape_vec((p.height, p.width), values).map_err(|e| e.to_string())?;
        Ok((z, slice))
    }

    fn current(&self, len: usize) -> Result<usize, String> {
        let &z = self
            .zs
            .get(self.done)
            .ok_or_else(|| "inference: a slice came back after the last one".to_string())?;
        if len != self.plane().len() {
            return Err(format!(
                "inference: slice {z} came back with {len} values, expected {}",
                self.plane().len()
            ));
        }
        Ok(z)
    }

    /// Records the network's work for the current slice: `tiles` of `side` (rows, columns).
    pub fn count_tiles(&mut self, tiles: usize, side: (usize, usize)) {
        self.tiles += tiles;
        self.tile_side = side;
    }

    /// This plan with the prediction averaged over `views` orientations (1, 4 or 8).
    pub fn averaged_over(mut self, views: u8) -> Self {
        self.views = views;
        self
    }

    fn advance(&mut self) -> bool {
        self.done += 1;
        self.done < self.zs.len()
    }

    /// The new layer's volume and a one-line summary.
    pub fn finish(
        self,
        ws: &Workspace,
        model: &ModelSummary,
    ) -> Result<(AnyVolume, String), String> {
        let l = ws.layer(self.layer)?;
        let voxel_size = l.volume.voxel_size();
        let (mut volume, kind): (AnyVolume, _) = if model.classes {
            let c = self.class.unwrap_or_else(|| Array3::zeros(self.shape));
            (
                AnyVolume::from_labels(c.view(), voxel_size).map_err(|e| e.to_string())?,
                "classes",
            )
        } else {
            let p = self.prob.unwrap_or_else(|| Array3::zeros(self.shape));
            (
                Volume::from_array(p.view())
                    .map_err(|e| e.to_string())?
                    .into(),
                "foreground probability",
            )
        };
        volume.set_voxel_size(voxel_size);
        let n = self.zs.len();
        let Region { y0, y1, x0, x1 } = self.region;
        let whole = (y0, x0, y1, x1) == (0, 0, self.shape.1, self.shape.2);
        let part = if whole {
            String::new()
        } else {
            format!(" (rows {y0}–{}, columns {x0}–{})", y1 - 1, x1 - 1)
        };
        let views = match self.views {
            0 | 1 => String::new(),
            v => format!(", averaged over {v} orientations"),
        };
        let tiles = match (self.tiles, self.tile_side) {
            (0, _) => String::new(),
            (t, (h, w)) if h == w => format!(" · {t} tile{} of {h}²", plural(t)),
            (t, (h, w)) => format!(" · {t} tile{} of {h} × {w}", plural(t)),
        };
        Ok((
            volume,
            format!(
                "{kind} of {n} slice{}{part} ({}, {} steps{views}){tiles}",
                plural(n),
                model.arch,
                model.steps
            ),
        ))
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use emstudio_nets_worker::jobs::{InferEngine, LabelledSlice, Prediction, TrainData, TrainJob};
    use emstudio_nets_worker::Device;
    use emstudio_protocol::LayerKind;

    /// Two slices of bright squares on a dark, noisy background, and their masks.
    fn workspace() -> (Workspace, LayerId, LayerId) {
        let inside = |z: usize, y: usize, x: usize| ((y + 3 * z) / 12 + (x + 5 * z) / 12) % 3 == 0;
        let image = Array3::from_shape_fn((2, 48, 48), |(z, y, x)| {
            let noise = ((y * 31 + x * 17 + z * 7) % 13) as u8 * 4;
            if inside(z, y, x) {
                190 + noise
            } else {
                40 + noise
            }
        });
        let label = Array3::from_shape_fn((2, 48, 48), |(z, y, x)| u8::from(inside(z, y, x)));
        let mut ws = Workspace::default();
        let i = ws
            .add(
                "img",
                LayerKind::Image,
                Volume::from_array(image.view()).expect("vol").into(),
            )
            .expect("add")
            .id;
        let l = ws
            .add(
                "gt",
                LayerKind::Label,
                Volume::from_array(label.view()).expect("vol").into(),
            )
            .expect("add")
            .id;
        (ws, i, l)
    }

    fn request(i: LayerId, l: LayerId) -> TrainRequest {
        TrainRequest {
            image: i,
            label: l,
            train_slices: vec![0],
            validation_slices: vec![1],
        }
    }

    /// What the network worker rebuilds from the attached buffers.
    fn labelled(s: &SliceData, name: &str) -> LabelledSlice {
        let Plane {
            height,
            width,
            channels,
        } = s.plane;
        LabelledSlice {
            image: Array3::from_shape_vec((channels, height, width), s.image.clone())
                .expect("image"),
            labels: Array2::from_shape_vec((height, width), s.labels.clone()).expect("labels"),
            name: name.into(),
        }
    }

    /// Trains the small network on the first training and validation slice of `inputs`, as
    /// the network worker would; the model file.
    fn train_small(inputs: &TrainInputs) -> Vec<u8> {
        let device = Device::flex().autodiff();
        let mut job = TrainJob::new(
            TrainData {
                train: vec![labelled(&inputs.train[0], "t")],
                validation: vec![labelled(&inputs.validation[0], "v")],
                config_json: SMALL.into(),
                ignore_label: None,
                data_names: inputs.data_names.clone(),
                init: None,
            },
            &device,
        )
        .expect("job");
        while !job.finished() {
            job.step();
        }
        job.model_bytes("2026-11-26").expect("model")
    }

    const SMALL: &str = r#"{"arch":{"arch":"unet","depth":2,"base_width":4},"steps":40,"batch":2,
        "patch":32,"learning_rate":0.01,"schedule":{"kind":"constant"},"validation_every":20,
        "augment":{"elastic_pixels":0.0}}"#;

    #[test]
    fn layers_train_a_net_whose_predictions_become_a_layer() {
        let (ws, i, l) = workspace();
        let inputs = train_inputs(&ws, &request(i, l)).expect("inputs");
        assert_eq!(inputs.train.len(), 1);
        assert_eq!(inputs.train[0].plane, Plane::single(48, 48));
        assert!(inputs.train[0]
            .image
            .iter()
            .all(|v| (0.0..=1.0).contains(v)));
        assert_eq!(inputs.data_names, vec!["img / gt, slices [0]".to_string()]);
        let model = train_small(&inputs);
        let (plane, image) = preview_image(&ws, i, 1).expect("preview image");
        assert_eq!((plane.len(), image.len()), (48 * 48, 48 * 48));
        assert!(preview_image(&ws, i, 2).unwrap_err().contains("slice 2"));

        // Slice 1 only, over a region: the rest stays 0.
        let region = Region {
            y0: 8,
            y1: 40,
            x0: 16,
            x1: 48,
        };
        let cpu = Device::flex();
        // Averaged over all eight orientations, as the Infer panel's "Orientations" asks.
        let engine = InferEngine::new(&model, &cpu, None)
            .expect("engine")
            .with_views(8);
        let mut plan = InferPlan::new(&ws, i, &[1], Some(region))
            .expect("plan")
            .averaged_over(8);
        assert_eq!(plan.plane(), Plane::single(32, 32));
        assert_eq!(plan.image_plane(), Plane::single(32, 32));
        while let Some(image) = plan.next_image(&ws).expect("image") {
            let image = Array3::from_shape_vec((1, 32, 32), image).expect("shape");
            let Prediction::Probability(p) = engine.predict(&image, &cpu).expect("predict") else {
                panic!("probabilities")
            };
            let work = engine.work(32, 32).expect("work");
            plan.count_tiles(work.tiles, work.side);
            if !plan
                .store_probability(p.iter().copied().collect())
                .expect("store")
            {
                break;
            }
        }
        assert_eq!(plan.done_of(), (1, 1));
        let summary = ModelSummary {
            arch: "U-Net".into(),
            steps: 40,
            classes: false,
            device: "CPU".into(),
        };
        let (volume, text) = plan.finish(&ws, &summary).expect("finish");
        assert_eq!(
            text,
            "foreground probability of 1 slice (rows 8–39, columns 16–47) (U-Net, 40 steps, averaged over 8 orientations) · 8 tiles of 32²"
        );
        let prob = volume.to_f32_array(0..2).expect("f32");
        assert!(prob
            .index_axis(ndarray::Axis(0), 0)
            .iter()
            .all(|&v| v == 0.0));
        assert!(prob
            .slice(ndarray::s![1, ..8, ..])
            .iter()
            .all(|&v| v == 0.0));
        // Slice 1 was never trained on: the thresholded probability must overlap the squares.
        let gt = ws.layer(l).expect("gt").volume.slice_labels(1);
        let (mut inter, mut union) = (0usize, 0usize);
        for y in 8..40 {
            for x in 16..48 {
                let (a, b) = (prob[[1, y, x]] > 0.5, gt[y * 48 + x] > 0);
                inter += usize::from(a && b);
                union += usize::from(a || b);
            }
        }
        assert!(inter as f64 / union as f64 > 0.6, "IoU {inter}/{union}");
    }

    #[test]
    fn class_slices_make_a_label_layer_and_bad_answers_are_refused() {
        let (ws, i, _) = workspace();
        let mut plan = InferPlan::new(&ws, i, &[], None).expect("plan");
        assert_eq!(plan.done_of(), (0, 2));
        let err = plan.store_classes(vec![1, 2, 3]).unwrap_err();
        assert!(err.contains("3 values, expected 2304"), "{err}");
        assert!(plan.store_classes(vec![2; 48 * 48]).expect("store"));
        plan.count_tiles(4, (48, 32));
        assert!(!plan.store_classes(vec![1; 48 * 48]).expect("store"));
        plan.count_tiles(4, (48, 32));
        assert!(plan
            .store_classes(vec![1; 48 * 48])
            .unwrap_err()
            .contains("after the last"));
        let summary = ModelSummary {
            arch: "ResNet".into(),
            steps: 9,
            classes: true,
            device: "CPU".into(),
        };
        let (volume, text) = plan.finish(&ws, &summary).expect("finish");
        assert_eq!(
            text,
            "classes of 2 slices (ResNet, 9 steps) · 8 tiles of 48 × 32"
        );
        assert_eq!(volume.slice_labels(0)[0], 2);
        assert_eq!(volume.slice_labels(1)[47], 1);
    }

    #[test]
    fn bad_requests_name_the_problem() {
        let (mut ws, i, l) = workspace();
        let err = |ws: &Workspace, r: TrainRequest| train_inputs(ws, &r).expect_err("refused");
        assert!(err(&ws, request(i, i)).contains("must be a label layer"));
        let mut r = request(i, l);
        r.train_slices = vec![5];
        assert!(err(&ws, r).contains("slice 5 requested"));
        let mut r = request(i, l);
        r.train_slices.clear();
        assert!(err(&ws, r).contains("at least one training slice"));
        let small = Array3::<u8>::zeros((2, 16, 16));
        let other = ws
            .add(
                "small",
                LayerKind::Label,
                Volume::from_array(small.view()).expect("vol").into(),
            )
            .expect("add")
            .id;
        assert!(err(&ws, request(i, other)).contains("must match the image"));
        let outside = Region {
            y0: 40,
            y1: 60,
            x0: 0,
            x1: 8,
        };
        let e = InferPlan::new(&ws, i, &[0], Some(outside))
            .err()
            .expect("refused");
        assert!(e.contains("outside the 48×48 slice"), "{e}");
        let e = InferPlan::new(&ws, i, &[3], None).err().expect("refused");
        assert!(e.contains("slice 3 requested"), "{e}");
    }

    #[test]
    fn rgb_layers_train_and_infer_with_three_channels() {
        // Squares that differ from the background only in hue (red on green).
        let inside = |z: usize, y: usize, x: usize| ((y + 3 * z) / 12 + (x + 5 * z) / 12) % 3 == 0;
        let shape = emstudio_core::volume::Shape::new(2, 48, 48);
        let mut rgb = Volume::<u8>::new(shape, 3).expect("rgb");
        let mut gt = Volume::<u8>::new(shape, 1).expect("gt");
        for z in 0..2 {
            let mut pixels = Vec::new();
            let mut mask = Vec::new();
            for y in 0..48 {
                for x in 0..48 {
                    let noise = ((y * 31 + x * 17 + z * 7) % 13) as u8 * 2;
                    let fg = inside(z, y, x);
                    let (r, g) = if fg { (170, 90) } else { (90, 170) };
                    pixels.extend([r + noise, g + noise, 120]);
                    mask.push(u8::from(fg));
                }
            }
            rgb.set_slice(z, &pixels).expect("slice");
            gt.set_slice(z, &mask).expect("slice");
        }
        let mut ws = Workspace::default();
        let i = ws
            .add("colour", LayerKind::Image, rgb.into())
            .expect("add")
            .id;
        let l = ws.add("gt", LayerKind::Label, gt.into()).expect("add").id;
        let inputs = train_inputs(&ws, &request(i, l)).expect("inputs");
        let rgb_plane = Plane {
            height: 48,
            width: 48,
            channels: 3,
        };
        assert_eq!(inputs.train[0].plane, rgb_plane);
        assert_eq!(inputs.train[0].image.len(), 3 * 48 * 48);
        assert_eq!(inputs.train[0].labels.len(), 48 * 48);
        // Channel by channel: pixel (0, 0) is in a square, red in the first plane, and its
        // green value starts the second.
        let first = &inputs.train[0].image;
        assert!((first[0] - 170.0 / 255.0).abs() < 0.01, "{}", first[0]);
        assert!((first[48 * 48] - 90.0 / 255.0).abs() < 0.01);
        let (plane, image) = preview_image(&ws, i, 1).expect("preview image");
        assert_eq!((plane, image.len()), (rgb_plane, 3 * 48 * 48));

        let model = train_small(&inputs);
        let cpu = Device::flex();
        let engine = InferEngine::new(&model, &cpu, None).expect("engine");
        assert_eq!(engine.header().io.in_channels, 3);
        let mut plan = InferPlan::new(&ws, i, &[1], None).expect("plan");
        assert_eq!(plan.image_plane(), rgb_plane);
        assert_eq!(plan.plane(), Plane::single(48, 48));
        let image = plan.next_image(&ws).expect("image").expect("a slice");
        let image = Array3::from_shape_vec((3, 48, 48), image).expect("shape");
        let Prediction::Probability(p) = engine.predict(&image, &cpu).expect("predict") else {
            panic!("probabilities")
        };
        assert!(!plan
            .store_probability(p.iter().copied().collect())
            .expect("store"));
        let (mut inter, mut union) = (0usize, 0usize);
        for ((y, x), &v) in p.indexed_iter() {
            let (a, b) = (v > 0.5, inside(1, y, x));
            inter += usize::from(a && b);
            union += usize::from(a || b);
        }
        assert!(inter as f64 / union as f64 > 0.6, "IoU {inter}/{union}");

        // Neither gray nor RGB: refused, naming the layer.
        let two = Volume::<u8>::new(shape, 2).expect("two channels");
        let t = ws.add("two", LayerKind::Image, two.into()).expect("add").id;
        let e = InferPlan::new(&ws, t, &[], None).err().expect("refused");
        assert!(
            e.contains("two: networks take grayscale (1-channel) or RGB"),
            "{e}"
        );
        assert!(train_inputs(&ws, &request(t, l))
            .unwrap_err()
            .contains("this one has 2 channels"));
    }
}
