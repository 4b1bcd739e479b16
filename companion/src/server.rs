//! The HTTP server: the built app, the dataset catalogue and dataset files.
//!
//! - `GET /api/datasets`: [`emstudio_protocol::DatasetInfo`] list as JSON.
//! - `GET /datasets/{id}/{path}`: a file inside a dataset. Paths are checked component by
//!   component (no `..`, no hidden files, no absolute or backslash paths) and the resolved file
//!   must still lie inside the dataset folder, so nothing outside a dataset can be read.
//! - anything else: the static app from the `dist` folder (`index.html` at `/`). A `.gz` copy
//!   next to a file (`cargo xtask build` writes them for the wasm and JS) is sent instead to
//!   browsers that accept gzip: the network worker's wasm (burn with WebGPU, about 37 MB) travels
//!   as about 6 MB; the data worker's is about 2 MB.
//! - every response carries the cross-origin isolation headers (COOP and COEP), so the app may
//!   share memory between its workers ([`cross_origin_isolated`]).

use crate::catalog::Dataset;
use axum::extract::{Path as UrlPath, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tower::ServiceExt;
use tower_http::services::{ServeDir, ServeFile};

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
                .precompressed_br()
                .precompressed_gzip(),
        )
        .layer(axum::middleware::map_response(cross_origin_isolated))
}

/// Makes every page cross-origin isolated (COOP `same-origin`, COEP `require-corp`; everything
/// the app loads comes from this server), so the app's workers can share memory: the app's
/// cancel board, which stops a running 3D kernel at once. A static host without these headers
/// gets them from the service worker (`public/sw.js`).
async fn cross_origin_isolated(mut response: Response) -> Response {
    use axum::http::header::HeaderValue;
    let headers = response.headers_mut();
    headers.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        "cross-origin-embedder-policy",
        HeaderValue::from_static("require-corp"),
    );
    response
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

/// Sends a dataset file. It is streamed from disk in small chunks (with `Range` requests
/// answered), never read whole into memory: a 10 GB TIFF costs the server a buffer, not
/// 10 GB, and many browsers opening a dataset at once cannot exhaust it.
async fn dataset_file(
    State(state): State<Arc<AppState>>,
    UrlPath((id, path)): UrlPath<(String, String)>,
    request: Request,
) -> Response {
    let Some(dataset) = state.datasets.iter().find(|d| d.info.id == id) else {
        return (StatusCode::NOT_FOUND, format!("no dataset `{id}`")).into_response();
    };
    let Some(file) = safe_join(&dataset.root, &path).filter(|f| f.is_file()) else {
        return (StatusCode::NOT_FOUND, "no such file in this dataset").into_response();
    };
    match ServeFile::new(file).oneshot(request).await {
        Ok(response) => response.into_response(),
        Err(never) => match never {},
    }
}
