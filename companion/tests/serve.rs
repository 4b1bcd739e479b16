//! The companion's HTTP surface: catalogue, dataset files, app files, traversal refused.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use emstudio_companion::{catalog, server};
use http_body_util::BodyExt;
use std::fs;
use tower::ServiceExt;

fn png_bytes() -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, 2, 2);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().expect("header");
        w.write_image_data(&[1, 2, 3, 4]).expect("data");
    }
    out
}

async fn get(app: &axum::Router, uri: &str) -> (StatusCode, Vec<u8>) {
    let resp = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).expect("request"))
        .await
        .expect("response");
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec();
    (status, body)
}

#[tokio::test]
async fn serves_catalogue_files_and_refuses_traversal() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dist = tmp.path().join("dist");
    let data = tmp.path().join("data");
    let set = data.join("my set");
    fs::create_dir_all(&dist).expect("dist");
    fs::create_dir_all(set.join("image")).expect("image");
    fs::create_dir_all(set.join("label_mito")).expect("label");
    fs::write(dist.join("index.html"), "<html>app</html>").expect("index");
    fs::write(tmp.path().join("secret.txt"), "secret").expect("secret");
    for name in ["10.png", "2.png"] {
        fs::write(set.join("image").join(name), png_bytes()).expect("png");
        fs::write(set.join("label_mito").join(name), png_bytes()).expect("png");
    }
    fs::write(set.join("image").join(".hidden.png"), png_bytes()).expect("png");

    let datasets = catalog::scan(None, std::slice::from_ref(&data));
    assert_eq!(datasets.len(), 1);
    let app = server::router(&dist, datasets);

    let (status, body) = get(&app, "/api/datasets").await;
    assert_eq!(status, StatusCode::OK);
    let list: Vec<emstudio_protocol::DatasetInfo> = serde_json::from_slice(&body).expect("json");
    assert_eq!(list[0].id, "my-set");
    assert_eq!(list[0].layers.len(), 2);
    assert_eq!(list[0].layers[0].path, "image");
    assert_eq!(list[0].layers[0].files, vec!["2.png", "10.png"]);
    assert_eq!(list[0].layers[1].kind, emstudio_protocol::LayerKind::Label);

    let (status, body) = get(&app, "/datasets/my-set/image/2.png").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, png_bytes());

    let (status, body) = get(&app, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, b"<html>app</html>");

    // A precompressed copy is sent to browsers that accept brotli (preferred) or gzip, the
    // plain file to others.
    fs::write(dist.join("app.wasm"), b"plain wasm").expect("wasm");
    fs::write(dist.join("app.wasm.gz"), b"gzipped wasm").expect("wasm.gz");
    fs::write(dist.join("app.wasm.br"), b"brotli wasm").expect("wasm.br");
    for (accepted, encoding, bytes) in [
        ("gzip", "gzip", &b"gzipped wasm"[..]),
        ("gzip, deflate, br, zstd", "br", &b"brotli wasm"[..]),
    ] {
        let response = app
            .clone()
            .oneshot(
                Request::get("/app.wasm")
                    .header("accept-encoding", accepted)
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("response");
        assert_eq!(
            response.headers()["content-encoding"],
            encoding,
            "{accepted}"
        );
        // Every response makes the page cross-origin isolated (the app's shared cancel board).
        assert_eq!(
            response.headers()["cross-origin-opener-policy"],
            "same-origin"
        );
        assert_eq!(
            response.headers()["cross-origin-embedder-policy"],
            "require-corp"
        );
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        assert_eq!(&body[..], bytes);
    }
    let (status, body) = get(&app, "/app.wasm").await;
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"plain wasm"[..]));

    for evil in [
        "/datasets/my-set/../../secret.txt",
        "/datasets/my-set/%2e%2e/%2e%2e/secret.txt",
        "/datasets/my-set/image/..%2F..%2F..%2Fsecret.txt",
        "/datasets/my-set/image/.hidden.png",
        "/datasets/nope/image/2.png",
        "/datasets/my-set/image/%5c..%5csecret.txt",
        "/../secret.txt",
        "/%2e%2e/secret.txt",
    ] {
        let (status, body) = get(&app, evil).await;
        assert_ne!(status, StatusCode::OK, "{evil} was served");
        assert!(
            !String::from_utf8_lossy(&body).contains("secret"),
            "{evil} leaked"
        );
    }
}

#[tokio::test]
async fn dataset_files_are_streamed_in_chunks_and_ranges_are_answered() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dist = tmp.path().join("dist");
    let set = tmp.path().join("data").join("big");
    fs::create_dir_all(&dist).expect("dist");
    fs::create_dir_all(set.join("image")).expect("image");
    fs::write(dist.join("index.html"), "<html>app</html>").expect("index");
    fs::write(set.join("image").join("0.png"), png_bytes()).expect("png");
    // A 3 MiB file: sent as many body frames, not one 3 MiB buffer.
    let big: Vec<u8> = (0..3 << 20).map(|i: u32| (i % 251) as u8).collect();
    fs::write(set.join("image").join("big.tif"), &big).expect("tif");
    let datasets = catalog::scan(None, &[tmp.path().join("data")]);
    let app = server::router(&dist, datasets);

    let resp = app
        .clone()
        .oneshot(
            Request::get("/datasets/big/image/big.tif")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("response");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "image/tiff");
    let mut body = resp.into_body();
    let (mut frames, mut got) = (0, Vec::new());
    while let Some(frame) = body.frame().await {
        let data = frame.expect("frame").into_data().expect("data frame");
        frames += 1;
        got.extend_from_slice(&data);
    }
    assert_eq!(got, big);
    assert!(frames > 4, "streamed in {frames} frame(s)");

    let resp = app
        .clone()
        .oneshot(
            Request::get("/datasets/big/image/big.tif")
                .header("range", "bytes=1000-1999")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("response");
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
    let part = resp.into_body().collect().await.expect("body").to_bytes();
    assert_eq!(&part[..], &big[1000..2000]);

    // A folder is not a file.
    let (status, _) = get(&app, "/datasets/big/image").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
