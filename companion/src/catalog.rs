//! Finding datasets on disk.
//!
//! A dataset is a folder holding slice files (PNG/TIFF) directly, or subfolders of them
//! (`image/`, `label/`, `label_mito/`, …). Subfolders whose names mention labels, masks,
//! segmentations or ground truth become label layers. An optional `dataset.json` gives a display
//! name, attribution and voxel size; otherwise the first line of `README.md` is shown as the
//! description. A `--data DIR` is either one dataset or a folder of datasets.

use emstudio_core::stack::{is_label_folder_name, is_stack_file_name, sort_natural};
use emstudio_core::VoxelSize;
use emstudio_protocol::{DatasetInfo, DatasetLayer, LayerKind};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A dataset and the folder it lives in.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// What clients see.
    pub info: DatasetInfo,
    /// Its root folder.
    pub root: PathBuf,
}

/// Optional `dataset.json` beside the slices.
#[derive(Debug, Deserialize, Default)]
struct Manifest {
    name: Option<String>,
    attribution: Option<String>,
    voxel_size_nm: Option<[f32; 3]>,
}

fn stack_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| is_stack_file_name(n))
                .collect()
        })
        .unwrap_or_default();
    sort_natural(&mut names);
    names
}

/// Reads one dataset folder; `None` when it holds no slices.
pub fn scan_dataset(root: &Path, demo: bool) -> Option<Dataset> {
    let dir_name = root.file_name()?.to_string_lossy().to_string();
    let mut layers = Vec::new();
    let root_files = stack_files(root);
    if !root_files.is_empty() {
        layers.push(DatasetLayer {
            path: String::new(),
            kind: if is_label_folder_name(&dir_name) {
                LayerKind::Label
            } else {
                LayerKind::Image
            },
            files: root_files,
        });
    }
    let mut subdirs: Vec<String> = std::fs::read_dir(root)
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !n.starts_with('.'))
        .collect();
    sort_natural(&mut subdirs);
    for sub in subdirs {
        let files = stack_files(&root.join(&sub));
        if !files.is_empty() {
            let kind = if is_label_folder_name(&sub) {
                LayerKind::Label
            } else {
                LayerKind::Image
            };
            layers.push(DatasetLayer {
                path: sub,
                kind,
                files,
            });
        }
    }
    if layers.is_empty() {
        return None;
    }
    // Images first, then labels, each in name order ("label" before "label_mito").
    layers.sort_by_key(|l| l.kind == LayerKind::Label);
    let manifest: Manifest = std::fs::read_to_string(root.join("dataset.json"))
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default();
    let readme_title = std::fs::read_to_string(root.join("README.md"))
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .map(|l| l.trim_start_matches('#').trim().to_string())
        });
    Some(Dataset {
        info: DatasetInfo {
            id: String::new(),
            name: manifest.name.unwrap_or_else(|| dir_name.clone()),
            demo,
            attribution: manifest.attribution.or(readme_title),
            voxel_size: manifest
                .voxel_size_nm
                .map(|[z, y, x]| VoxelSize { z, y, x }),
            layers,
        },
        root: root.to_path_buf(),
    })
}

/// All datasets under the demo folder and the `--data` folders, with unique URL-safe ids.
pub fn scan(demo_dir: Option<&Path>, data_dirs: &[PathBuf]) -> Vec<Dataset> {
    let mut found = Vec::new();
    let mut add_folder = |dir: &Path, demo: bool| {
        if let Some(d) = scan_dataset(dir, demo) {
            found.push(d);
            return;
        }
        let mut subs: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.is_dir())
                    .collect()
            })
            .unwrap_or_default();
        subs.sort();
        found.extend(subs.iter().filter_map(|p| scan_dataset(p, demo)));
    };
    if let Some(d) = demo_dir {
        add_folder(d, true);
    }
    for d in data_dirs {
        add_folder(d, false);
    }
    let mut used: BTreeMap<String, usize> = BTreeMap::new();
    for d in &mut found {
        let base: String = d
            .root
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        let n = used.entry(base.clone()).or_insert(0);
        *n += 1;
        d.info.id = if *n == 1 { base } else { format!("{base}-{n}") };
    }
    found
}
