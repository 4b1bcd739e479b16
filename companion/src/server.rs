//! The HTTP server: the built app, the dataset catalogue and dataset files.
//!
//! - `GET /api/datasets`: [`emstudio_protocol::DatasetInfo`] list as JSON.
//! - `GET /datasets/{id}/{path}`: a file inside a dataset. Paths are checked component by
//!   component (no `..`, no hidden files, no absolute or backslash paths) and the resolved file
//!   must still lie inside the dataset folder, so nothing outside a dataset can be read.
//! - anything else: the static app from the `dist` folder (`index.html` at `/`). A `.gz` copy
//!   next to a file (`cargo xtask build` writes them for the wasm and JS) is sent instead to
//!   browsers that accept gzip: the worker's 38 MB of wasm travel as about 6 MB.

use crate::catalog::Dataset;
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tower_http::services::ServeDir;

/// What the server shares with its handlers.
#[derive(Debug)]
pub struct AppState {
    /// Served datasets.
    pub datasets: Vec<Dataset>,
}

/// Builds the router serving `dist` and `datasets`.
pub fn router(dist: &Path, datasets: Vec<Dataset>) -> Router {
    let state = Arc::new(AppState { datasets });
    Router::new()
        .route("/api/datasets", get(list_datasets))
        .route("/datasets/{id}/{*path}", get(dataset_file))
        .with_state(state)
        .fallback_service(
            ServeDir::new(dist)
                .append_index_html_on_directories(true)
                .precompressed_gzip(),
        )
}

async fn list_datasets(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    Json(
        state
            .datasets
            .iter()
            .map(|d| d.info.clone())
            .collect::<Vec<_>>(),
    )
}

/// Joins a URL path onto `root`, refusing anything that could leave it.
pub fn safe_join(root: &Path, url_path: &str) -> Option<PathBuf> {
    let mut out = root.to_path_buf();
    for part in url_path.split('/') {
        if part.is_empty()
            || part == "."
            || part == ".."
            || part.starts_with('.')
            || part.contains('\\')
            || part.contains(':')
            || part.contains('\0')
        {
            return None;
        }
        out.push(part);
    }
    let canonical_root = root.canonicalize().ok()?;
    let canonical = out.canonicalize().ok()?;
    canonical.starts_with(&canonical_root).then_some(canonical)
}

fn content_type(path: &Path) -> &'static str {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
        .as_deref()
    {
        Some("png") => "image/png",
        Some("tif" | "tiff") => "image/tiff",
        Some("json") => "application/json",
        Some("md" | "txt" | "tsv") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

async fn dataset_file(
    State(state): State<Arc<AppState>>,
    UrlPath((id, path)): UrlPath<(String, String)>,
) -> Response {
    let Some(dataset) = state.datasets.iter().find(|d| d.info.id == id) else {
        return (StatusCode::NOT_FOUND, format!("no dataset `{id}`")).into_response();
    };
    let Some(file) = safe_join(&dataset.root, &path) else {
        return (StatusCode::NOT_FOUND, "no such file in this dataset").into_response();
    };
    match tokio::fs::read(&file).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, content_type(&file))], bytes).into_response(),
        Err(_) => (StatusCode::NOT_FOUND, "no such file in this dataset").into_response(),
    }
}
