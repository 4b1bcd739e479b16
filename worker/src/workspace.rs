//! The worker's layers and the synchronous operations on them.

use emstudio_core::render::{
    highlight_labels, overlay_proposal, render_error_map, render_intensity, render_labels,
};
use emstudio_core::stack::{self, ExportOptions, FileFormat};
use emstudio_core::{with_volume, AnyVolume};
use emstudio_protocol::{LayerId, LayerInfo, LayerKind};
use std::collections::BTreeMap;

/// One opened stack.
#[derive(Debug)]
pub struct Layer {
    /// What the app knows about it.
    pub info: LayerInfo,
    /// Its voxels.
    pub volume: AnyVolume,
}

/// All layers the worker holds.
#[derive(Debug, Default)]
pub struct Workspace {
    next_id: u32,
    layers: BTreeMap<LayerId, Layer>,
    /// Editing state of the label layers that have been edited.
    pub(crate) editors: BTreeMap<LayerId, crate::editing::LabelEditor>,
    /// FFN fills waiting for Accept or Reject, per label layer (drawn over its slices).
    pub(crate) proposals: BTreeMap<LayerId, crate::ffn_link::Proposal>,
}

/// A rendered RGBA slice.
#[derive(Debug)]
pub struct Rendered {
    /// Pixels per row.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// `width * height * 4` bytes.
    pub rgba: Vec<u8>,
}

impl Workspace {
    /// Adds a volume as a new layer. Label layers must have one channel.
    pub fn add(
        &mut self,
        name: &str,
        kind: LayerKind,
        volume: AnyVolume,
    ) -> Result<LayerInfo, String> {
        if kind.is_labels() && volume.channels() != 1 {
            return Err(format!(
                "{name}: a label layer needs grayscale slices (IDs), but these have {} channels",
                volume.channels()
            ));
        }
        self.next_id += 1;
        let id = LayerId(self.next_id);
        let (min, max) = volume.min_max_f64();
        let info = LayerInfo {
            id,
            name: name.to_string(),
            kind,
            shape: volume.shape(),
            channels: volume.channels(),
            dtype: volume.dtype(),
            voxel_size: volume.voxel_size(),
            min,
            max,
        };
        self.layers.insert(
            id,
            Layer {
                info: info.clone(),
                volume,
            },
        );
        Ok(info)
    }

    /// Drops a layer (its autosaved session stays on disk).
    pub fn close(&mut self, id: LayerId) {
        self.layers.remove(&id);
        self.editors.remove(&id);
        self.proposals.remove(&id);
    }

    /// Removes a layer to work on it beside the others; [`Workspace::put_layer`] returns it.
    pub(crate) fn take_layer(&mut self, id: LayerId) -> Result<Layer, String> {
        self.layers
            .remove(&id)
            .ok_or_else(|| format!("layer {} is not open", id.0))
    }

    /// Puts back a layer taken with [`Workspace::take_layer`].
    pub(crate) fn put_layer(&mut self, layer: Layer) {
        self.layers.insert(layer.info.id, layer);
    }

    /// The layer with this id.
    pub fn layer(&self, id: LayerId) -> Result<&Layer, String> {
        self.layers
            .get(&id)
            .ok_or_else(|| format!("layer {} is not open", id.0))
    }

    /// Renders slice `z` of a layer: images windowed to their value range, labels coloured
    /// (with the `highlight` segments ringed in white).
    pub fn render(
        &self,
        id: LayerId,
        z: usize,
        outline: bool,
        highlight: &[u32],
    ) -> Result<Rendered, String> {
        let layer = self.layer(id)?;
        let shape = layer.volume.shape();
        if z >= shape.z {
            return Err(format!(
                "{}: slice {z} requested, the stack has {} slices",
                layer.info.name, shape.z
            ));
        }
        let rgba = match layer.info.kind {
            LayerKind::Image => with_volume!(&layer.volume, v => render_intensity(
                &v.slice(z),
                v.channels(),
                layer.info.min,
                layer.info.max
            )),
            LayerKind::Label => {
                let ids = layer.volume.slice_labels(z);
                let mut rgba = render_labels(&ids, shape.x, shape.y, outline);
                highlight_labels(&mut rgba, &ids, shape.x, shape.y, highlight);
                if let Some(inside) = self
                    .proposals
                    .get(&id)
                    .and_then(|p| p.slice(z, shape.y, shape.x))
                {
                    overlay_proposal(&mut rgba, &inside, shape.x, shape.y);
                }
                rgba
            }
            LayerKind::Errors => {
                render_error_map(&layer.volume.slice_labels(z), shape.x, shape.y, outline)
            }
        };
        Ok(Rendered {
            width: shape.x,
            height: shape.y,
            rgba,
        })
    }

    /// Values of every layer at voxel (z, y, x); layers that do not contain it are skipped.
    pub fn probe(&self, z: usize, y: usize, x: usize) -> Vec<(LayerId, Vec<f64>)> {
        self.layers
            .iter()
            .filter_map(|(id, l)| {
                let s = l.volume.shape();
                (z < s.z && y < s.y && x < s.x).then(|| {
                    let values = (0..l.volume.channels())
                        .map(|c| l.volume.get_f64(z, y, x, c))
                        .collect();
                    (*id, values)
                })
            })
            .collect()
    }

    /// Encodes slice `z` of a layer for a series export.
    pub fn export_slice(
        &self,
        id: LayerId,
        z: usize,
        options: &ExportOptions,
    ) -> Result<(String, Vec<u8>), String> {
        let layer = self.layer(id)?;
        let (format, ext) = match options.format {
            stack::ExportFormat::PngSeries => (FileFormat::Png, "png"),
            _ => (FileFormat::Tiff, "tif"),
        };
        let bytes = stack::encode_slice(&layer.volume, z, format, options)
            .map_err(|e| format!("{}: {e}", layer.info.name))?;
        Ok((format!("{}_{z:04}.{ext}", options.base_name), bytes))
    }

    /// Encodes a whole layer (used for multi-page TIFF).
    pub fn export_all(
        &self,
        id: LayerId,
        options: &ExportOptions,
    ) -> Result<Vec<(String, Vec<u8>)>, String> {
        let layer = self.layer(id)?;
        stack::export(&layer.volume, options).map_err(|e| format!("{}: {e}", layer.info.name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use emstudio_core::stack::{BitDepth, ExportFormat, Limits};
    use emstudio_core::{Shape, Volume};

    fn labels() -> AnyVolume {
        let mut v = Volume::<u16>::new(Shape::new(2, 3, 4), 1).expect("volume");
        v.set(1, 1, 2, 0, 300);
        AnyVolume::U16(v)
    }

    #[test]
    fn render_probe_export_round_trip() {
        let mut ws = Workspace::default();
        let info = ws.add("gt", LayerKind::Label, labels()).expect("add");
        assert_eq!(info.max, 300.0);
        let r = ws.render(info.id, 1, false, &[]).expect("render");
        assert_eq!((r.width, r.height, r.rgba.len()), (4, 3, 48));
        assert_eq!(r.rgba[(4 + 2) * 4 + 3], 255);
        assert_eq!(r.rgba[3], 0);
        assert_eq!(ws.probe(1, 1, 2), vec![(info.id, vec![300.0])]);
        assert!(ws.probe(5, 0, 0).is_empty());
        assert!(ws.render(info.id, 2, false, &[]).is_err());
        let ringed = ws.render(info.id, 1, false, &[300]).expect("render");
        assert_eq!(
            &ringed.rgba[(4 + 2) * 4..(4 + 2) * 4 + 4],
            &[255, 255, 255, 255]
        );

        let options = ExportOptions {
            format: ExportFormat::MultiPageTiff,
            depth: BitDepth::Native,
            rescale: false,
            base_name: "gt".into(),
        };
        let files = ws.export_all(info.id, &options).expect("export");
        let back = stack::read_stack(files, &Limits::default()).expect("read back");
        assert_eq!(back, labels());

        let series = ExportOptions {
            format: ExportFormat::PngSeries,
            ..options
        };
        let (name, bytes) = ws.export_slice(info.id, 1, &series).expect("slice");
        assert_eq!(name, "gt_0001.png");
        assert!(bytes.starts_with(b"\x89PNG"));
    }

    #[test]
    fn rgb_label_layers_are_refused() {
        let v = Volume::<u8>::new(Shape::new(1, 2, 2), 3).expect("volume");
        let err = Workspace::default()
            .add("rgb", LayerKind::Label, AnyVolume::U8(v))
            .expect_err("must refuse");
        assert!(err.contains("rgb") && err.contains("3 channels"));
    }
}
