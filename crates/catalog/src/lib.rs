//! The dataset catalogue: datasets found on disk, served by the companion (`/api/datasets`)
//! or written with their files into a static site ([`write_static_site`]: `datasets.json`
//! beside the app, which any static file server can serve).
//!
//! A dataset is a folder holding slice files (PNG/TIFF) directly, or subfolders of them
//! (`image/`, `label/`, `label_mito/`, …). Subfolders whose names mention labels, masks,
//! segmentations or ground truth become label layers. An optional `dataset.json` gives a display
//! name, attribution, voxel size and the model files shipped with it (`"models":
//! ["models/x.emsmodel"]`); otherwise the first line of `README.md` is shown as the
//! description. A `--data DIR` is either one dataset or a folder of datasets.

use emstudio_core::stack::{is_label_folder_name, is_stack_file_name, sort_natural};
use emstudio_core::VoxelSize;
use emstudio_protocol::{DatasetInfo, DatasetLayer, DatasetModel, LayerKind};
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
    #[serde(default)]
    models: Vec<String>,
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
            models: manifest
                .models
                .iter()
                .filter(|p| is_safe_relative(p) && root.join(p).is_file())
                .map(|p| DatasetModel {
                    name: p.rsplit('/').next().unwrap_or(p).to_string(),
                    path: p.clone(),
                })
                .collect(),
        },
        root: root.to_path_buf(),
    })
}

/// A relative path of plain names separated by `/` (no `..`, no hidden or absolute parts).
fn is_safe_relative(path: &str) -> bool {
    !path.is_empty()
        && path.split('/').all(|part| {
            !part.is_empty() && !part.starts_with('.') && !part.contains(['\\', ':', '\0'])
        })
}

/// Why a static site could not be written.
#[derive(Debug, thiserror::Error)]
pub enum SiteError {
    /// A file could not be read, written or copied.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
}

fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> SiteError + '_ {
    move |source| SiteError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `datasets` into a static site folder `out`: each dataset's layer and model files
/// under `out/datasets/{id}/` (the URLs the companion serves them at) and the catalogue as
/// `out/datasets.json` (what `/api/datasets` answers). Returns the bytes copied.
pub fn write_static_site(datasets: &[Dataset], out: &Path) -> Result<u64, SiteError> {
    let mut copied = 0;
    for d in datasets {
        let dir = out.join("datasets").join(&d.info.id);
        let mut files: Vec<String> = Vec::new();
        for layer in &d.info.layers {
            for f in &layer.files {
                files.push(if layer.path.is_empty() {
                    f.clone()
                } else {
                    format!("{}/{f}", layer.path)
                });
            }
        }
        files.extend(d.info.models.iter().map(|m| m.path.clone()));
        for f in files {
            let (src, dst) = (d.root.join(&f), dir.join(&f));
            if let Some(parent) = dst.parent() {
                std::fs::create_dir_all(parent).map_err(io_at(parent))?;
            }
            copied += std::fs::copy(&src, &dst).map_err(io_at(&src))?;
        }
    }
    let infos: Vec<&DatasetInfo> = datasets.iter().map(|d| &d.info).collect();
    let json = serde_json::to_string_pretty(&infos).expect("the catalogue is plain data");
    let path = out.join("datasets.json");
    std::fs::create_dir_all(out).map_err(io_at(out))?;
    std::fs::write(&path, json).map_err(io_at(&path))?;
    Ok(copied)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_static_site_holds_the_catalogue_and_every_listed_file() {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("set");
        std::fs::create_dir_all(data.join("image")).unwrap();
        std::fs::create_dir_all(data.join("label")).unwrap();
        std::fs::create_dir_all(data.join("models")).unwrap();
        std::fs::write(data.join("image/0.png"), b"i0").unwrap();
        std::fs::write(data.join("image/1.png"), b"i1").unwrap();
        std::fs::write(data.join("label/0.png"), b"l0").unwrap();
        std::fs::write(data.join("label/1.png"), b"l1").unwrap();
        std::fs::write(data.join("models/m.emsmodel"), b"model").unwrap();
        std::fs::write(data.join("secret.txt"), b"not listed").unwrap();
        std::fs::write(
            data.join("dataset.json"),
            r#"{"name": "Set", "models": ["models/m.emsmodel", "models/missing.emsmodel", "../escape.emsmodel"]}"#,
        )
        .unwrap();
        let datasets = scan(None, std::slice::from_ref(&data));
        assert_eq!(datasets.len(), 1);
        let info = &datasets[0].info;
        // Only models that exist inside the dataset are listed.
        assert_eq!(
            info.models,
            [DatasetModel {
                name: "m.emsmodel".into(),
                path: "models/m.emsmodel".into()
            }]
        );
        let site = tmp.path().join("site");
        let copied = write_static_site(&datasets, &site).unwrap();
        assert_eq!(copied, 2 * 4 + 5);
        let listed: Vec<DatasetInfo> =
            serde_json::from_slice(&std::fs::read(site.join("datasets.json")).unwrap()).unwrap();
        assert_eq!(&listed[0], info);
        for f in [
            "image/0.png",
            "image/1.png",
            "label/0.png",
            "label/1.png",
            "models/m.emsmodel",
        ] {
            assert_eq!(
                std::fs::read(site.join("datasets/set").join(f)).unwrap(),
                std::fs::read(data.join(f)).unwrap(),
                "{f}"
            );
        }
        assert!(
            !site.join("datasets/set/secret.txt").exists(),
            "only listed files are published"
        );
    }

    #[test]
    fn model_paths_must_stay_inside_the_dataset() {
        assert!(is_safe_relative("models/a.emsmodel"));
        for bad in [
            "",
            "../a",
            "models/../../a",
            "/etc/passwd",
            ".hidden/a",
            "a//b",
            "c:\\a",
            "a\\b",
        ] {
            assert!(!is_safe_relative(bad), "{bad}");
        }
    }
}
