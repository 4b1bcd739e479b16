//! Finishing a built site folder, the same way for both builds: `cargo xtask build` (wasm-bindgen
//! run here, `index.html` from the root one with trunk's lines replaced by
//! [`index_without_trunk`]) and `trunk build` / `trunk serve` (Trunk.toml: its post-build hook
//! runs `cargo xtask site` on trunk's staging folder). [`finish`] adds what neither wasm-bindgen
//! nor trunk makes: the static files of `public/` (the service worker from its template),
//! `wasm-opt -O1` on the app's and the data worker's wasm ([`optimise_wasm`]), brotli and gzip
//! copies, the demo datasets with `datasets.json`, and the icons.

use crate::{cache_dir, cmd, status, step, target_dir};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// The wasm modules and their JS glue, as both builds name them (after the packages).
const APP: &str = "emstudio-app";
const DATA_WORKER: &str = "emstudio-worker";
const NETS_WORKER: &str = "emstudio-nets-worker";

/// Completes `dir` (a folder holding `index.html` and the three modules with their JS glue)
/// into the static site; returns the sizes of the app's, the data worker's and the network
/// worker's wasm.
pub(crate) fn finish(dir: &Path) -> Result<(u64, u64, u64)> {
    for name in [APP, DATA_WORKER, NETS_WORKER] {
        for file in [format!("{name}.js"), format!("{name}_bg.wasm")] {
            if !dir.join(&file).is_file() {
                bail!(
                    "{}: {file} is missing (was the web build run?)",
                    dir.display()
                );
            }
        }
    }
    for file in files_under(Path::new("public"))? {
        let name = file.strip_prefix("public")?;
        if name == Path::new("sw.js") {
            continue; // a template: write_pwa fills it in
        }
        let to = dir.join(name);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::copy(&file, &to).with_context(|| format!("copy {}", file.display()))?;
    }
    for name in [APP, DATA_WORKER, NETS_WORKER] {
        let file = dir.join(format!("{name}_bg.wasm"));
        let bytes = std::fs::read(&file).with_context(|| file.display().to_string())?;
        let stripped = without_name_section(&bytes)
            .with_context(|| format!("{}: not a wasm module", file.display()))?;
        if stripped.len() < bytes.len() {
            std::fs::write(&file, stripped)?;
        }
    }
    for name in [APP, DATA_WORKER] {
        optimise_wasm(&dir.join(format!("{name}_bg.wasm")))?;
    }
    // Brotli and gzip copies, which the companion (and hosts that serve precompressed files)
    // send to browsers that accept them: brotli at quality 9 is within a few per cent of its
    // slowest setting at a fraction of the time.
    for name in [APP, DATA_WORKER, NETS_WORKER] {
        for file in [format!("{name}_bg.wasm"), format!("{name}.js")] {
            let bytes = std::fs::read(dir.join(&file))
                .with_context(|| format!("read {}", dir.join(&file).display()))?;
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            std::io::Write::write_all(&mut gz, &bytes)?;
            std::fs::write(dir.join(format!("{file}.gz")), gz.finish()?)?;
            let mut br = brotli::CompressorWriter::new(Vec::new(), 1 << 16, 9, 22);
            std::io::Write::write_all(&mut br, &bytes)?;
            std::fs::write(dir.join(format!("{file}.br")), br.into_inner())?;
        }
    }
    // The demo datasets, their models and the catalogue the app reads when no companion
    // answers `api/datasets`: the folder is a static site any file server can serve.
    let demo = emstudio_catalog::scan(Some(Path::new("demo")), &[]);
    let copied = emstudio_catalog::write_static_site(&demo, dir)?;
    eprintln!(
        "{}: {} demo datasets ({} KiB) and datasets.json",
        dir.display(),
        demo.len(),
        copied / 1024
    );
    write_pwa(dir, &demo)?;
    let size = |f: String| std::fs::metadata(dir.join(f)).map(|m| m.len()).unwrap_or(0);
    let mut sizes = [0u64; 3];
    for (i, name) in [APP, DATA_WORKER, NETS_WORKER].into_iter().enumerate() {
        sizes[i] = size(format!("{name}_bg.wasm"));
        eprintln!(
            "{}: {name} wasm {} KiB ({} KiB gzip, {} KiB brotli)",
            dir.display(),
            sizes[i] / 1024,
            size(format!("{name}_bg.wasm.gz")) / 1024,
            size(format!("{name}_bg.wasm.br")) / 1024,
        );
    }
    Ok((sizes[0], sizes[1], sizes[2]))
}

/// `module` without its `name` custom section (function names, only for debuggers: 7 MB of
/// the network worker). wasm-bindgen drops it with `--remove-name-section`; trunk has no such
/// option, so its modules are stripped here. Written by hand: a module is a header and
/// sections of `id, LEB128 size, bytes`, and nothing else is needed (the test builds modules
/// with and without the section).
fn without_name_section(module: &[u8]) -> Result<Vec<u8>> {
    const HEADER: usize = 8;
    if module.len() < HEADER || &module[..4] != b"\0asm" {
        bail!("no wasm header");
    }
    let leb = |at: &mut usize| -> Result<usize> {
        let (mut value, mut shift) = (0usize, 0);
        loop {
            let byte = *module.get(*at).context("truncated section size")?;
            *at += 1;
            value |= usize::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
            shift += 7;
            if shift > 28 {
                bail!("section size too long");
            }
        }
    };
    let mut out = module[..HEADER].to_vec();
    let mut at = HEADER;
    while at < module.len() {
        let start = at;
        let id = module[at];
        at += 1;
        let size = leb(&mut at)?;
        let body = at..at
            .checked_add(size)
            .filter(|&e| e <= module.len())
            .context("section past the end")?;
        at = body.end;
        if id == 0 {
            let mut name_at = body.start;
            let len = leb(&mut name_at)?;
            if module.get(name_at..name_at + len) == Some(b"name".as_slice()) {
                continue;
            }
        }
        out.extend_from_slice(&module[start..body.end]);
    }
    Ok(out)
}

/// The JS files wasm-bindgen copied for the app (`snippets/emstudio-app-<hash>/…`), as paths
/// relative to `dir`.
pub(crate) fn app_snippets(dir: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for file in files_under(&dir.join("snippets"))? {
        let rel = file.strip_prefix(dir)?.to_string_lossy().replace('\\', "/");
        if rel.starts_with(&format!("snippets/{APP}-")) && rel.ends_with(".js") {
            out.push(rel);
        }
    }
    Ok(out)
}

/// `cargo xtask site`: Trunk.toml's post-build hook, which finishes trunk's staging folder.
pub(crate) fn trunk_hook() -> Result<()> {
    let Some(staging) = std::env::var_os("TRUNK_STAGING_DIR") else {
        bail!("cargo xtask site finishes trunk's build folder and is run by trunk (Trunk.toml's post_build hook); to build the site use cargo xtask build");
    };
    finish(Path::new(&staging)).map(|_| ())
}

/// The root `index.html` for the build that does not use trunk: its `<link data-trunk
/// rel="rust">` line for the app becomes the script that starts it and preloads of the app's
/// JS, its `snippets` (paths relative to the site) and its wasm, so the three download side
/// by side instead of one after the other (trunk writes the same), and its other `data-trunk`
/// lines (the workers, built and named the same way here) go.
pub(crate) fn index_without_trunk(html: &str, snippets: &[String]) -> Result<String> {
    let mut out = String::with_capacity(html.len());
    let mut apps = 0;
    for line in html.lines() {
        if !line.contains("data-trunk") {
            out.push_str(line);
            out.push('\n');
        } else if line.contains(r#"rel="rust""#) && !line.contains(r#"data-type="worker""#) {
            apps += 1;
            let indent = &line[..line.len() - line.trim_start().len()];
            out.push_str(&format!(
                "{indent}<script type=\"module\">import init from \"./{APP}.js\"; init();</script>\n"
            ));
            for module in std::iter::once(format!("{APP}.js")).chain(snippets.iter().cloned()) {
                out.push_str(&format!(
                    "{indent}<link rel=\"modulepreload\" href=\"./{module}\">\n"
                ));
            }
            out.push_str(&format!(
                "{indent}<link rel=\"preload\" href=\"./{APP}_bg.wasm\" as=\"fetch\" type=\"application/wasm\" crossorigin>\n"
            ));
        } else if line.trim_end().ends_with("/>") || line.trim_end().ends_with('>') {
            // a worker or another trunk asset: this build makes it itself
        } else {
            bail!("index.html: a data-trunk element must sit on one line: {line}");
        }
    }
    if apps != 1 {
        bail!("index.html: expected one <link data-trunk rel=\"rust\"> for the app, found {apps}");
    }
    Ok(out)
}

/// What makes `dist/` an installable app that starts offline: the manifest and its icons, the
/// page script that registers the service worker, and `sw.js` from its template in
/// `public/` with this build's version (a hash of every file it may serve), the shell it
/// stores on the first visit, and the demo dataset ids whose files it stores when fetched.
fn write_pwa(dist: &Path, demo: &[emstudio_catalog::Dataset]) -> Result<()> {
    for size in [192, 512] {
        std::fs::write(dist.join(format!("icon-{size}.png")), icon_png(size)?)?;
    }
    let mut shell: Vec<String> = [
        "index.html",
        "style.css",
        "pwa.js",
        "manifest.webmanifest",
        "icon-192.png",
        "icon-512.png",
        "emstudio-app.js",
        "emstudio-app_bg.wasm",
        "worker.js",
        "boot.js",
        "emstudio-worker.js",
        "emstudio-worker_bg.wasm",
        "datasets.json",
    ]
    .map(String::from)
    .to_vec();
    // wasm-bindgen's copies of the JS the app and workers import (`snippets/<crate>/...`).
    shell.extend(files_under(&dist.join("snippets"))?.into_iter().map(|f| {
        let rel = f.strip_prefix(dist).unwrap_or(&f);
        rel.to_string_lossy().replace('\\', "/")
    }));
    // The version changes when anything the worker may serve changes, the network worker and
    // the demo included (FNV-1a over names and bytes: stable across Rust versions).
    let mut hashed: Vec<PathBuf> = shell.iter().map(|f| dist.join(f)).collect();
    hashed.sort();
    hashed.extend(
        [
            "nets_worker.js",
            "emstudio-nets-worker.js",
            "emstudio-nets-worker_bg.wasm",
        ]
        .iter()
        .map(|f| dist.join(f)),
    );
    for d in demo {
        for m in &d.info.models {
            hashed.push(d.root.join(&m.path));
        }
        for l in &d.info.layers {
            hashed.extend(l.files.iter().map(|f| d.root.join(&l.path).join(f)));
        }
    }
    let mut hash = FNV_START;
    for path in &hashed {
        let bytes = std::fs::read(path).with_context(|| path.display().to_string())?;
        hash = fnv1a(hash, path.to_string_lossy().bytes().chain(bytes));
    }
    let template = std::fs::read_to_string("public/sw.js").context("public/sw.js")?;
    let ids: Vec<&str> = demo.iter().map(|d| d.info.id.as_str()).collect();
    let sw = template
        .replace("__VERSION__", &format!("{hash:016x}"))
        .replace("__SHELL__", &serde_json::to_string(&shell)?)
        .replace("__DEMO__", &serde_json::to_string(&ids)?);
    std::fs::write(dist.join("sw.js"), sw)?;
    Ok(())
}

/// The FNV-1a offset basis ([`fnv1a`]'s first `hash`).
const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a of `bytes` continuing from `hash`: a content key that is stable across Rust versions.
fn fnv1a(hash: u64, bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(hash, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The npm package `binaryen` whose `wasm-opt` optimises the app's and the data worker's wasm
/// (Debian's binaryen 108 broke training; DESIGN.md section 3).
const BINARYEN: &str = "132.0.0";

/// `wasm-opt -O1` with the features rustc's wasm32 target and our `+simd128` emit. Measured on
/// the app's wasm (2026-12-07, BENCHMARKS.md "wasm size"): `-O1` shrinks it 4.8 % raw and 0.9 %
/// with brotli; `-O2`, `-Os` and `-Oz` shrink it 8–13 % raw but make it 7–9 % *larger* with
/// brotli and gzip (what is sent), so they are not used.
const WASM_OPT_ARGS: &[&str] = &[
    "-O1",
    "--enable-simd",
    "--enable-bulk-memory",
    "--enable-nontrapping-float-to-int",
    "--enable-sign-ext",
    "--enable-mutable-globals",
    "--enable-reference-types",
    "--enable-multivalue",
];

/// Optimises `file` in place with binaryen's `wasm-opt` (npm, run by node; installed into the
/// tool cache once). About 8 s a module on 2 cores; results are kept in the target directory
/// by a hash of the input, so an unchanged module costs nothing on the next build.
/// The network worker is left out: at 30 MB even `-O1` takes over 6 minutes here, which every
/// change of the networks would cost the test command (BENCHMARKS.md, wasm size).
pub(crate) fn optimise_wasm(file: &Path) -> Result<()> {
    let bytes = std::fs::read(file).with_context(|| file.display().to_string())?;
    let key = fnv1a(
        fnv1a(
            FNV_START,
            BINARYEN.bytes().chain(WASM_OPT_ARGS.concat().bytes()),
        ),
        bytes,
    );
    let cache = target_dir()?.join("wasm-opt");
    let done = cache.join(format!("{key:016x}.wasm"));
    if !done.exists() {
        let tools = cache_dir()
            .join("tools")
            .join(format!("binaryen-{BINARYEN}"));
        let wasm_opt = tools.join("node_modules/binaryen/bin/wasm-opt");
        if !wasm_opt.exists() {
            step(&format!("npm install binaryen@{BINARYEN} (wasm-opt, once)"));
            std::fs::create_dir_all(&tools)?;
            status(
                cmd("npm")
                    .args(["install", "--no-audit", "--no-fund", "--prefix"])
                    .arg(&tools)
                    .arg(format!("binaryen@{BINARYEN}")),
            )?;
        }
        step(&format!("wasm-opt {} {}", WASM_OPT_ARGS[0], file.display()));
        std::fs::create_dir_all(&cache)?;
        let partial = cache.join(format!("{key:016x}.partial"));
        status(
            cmd("node")
                .arg(&wasm_opt)
                .arg(file)
                .args(WASM_OPT_ARGS)
                .arg("-o")
                .arg(&partial),
        )?;
        std::fs::rename(&partial, &done)?;
    }
    std::fs::copy(&done, file).with_context(|| format!("copy the optimised {}", file.display()))?;
    Ok(())
}

/// Every file under `dir` (none when it does not exist), sorted.
fn files_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    if !dir.is_dir() {
        return Ok(out);
    }
    for entry in std::fs::read_dir(dir).with_context(|| dir.display().to_string())? {
        let path = entry?.path();
        if path.is_dir() {
            out.extend(files_under(&path)?);
        } else {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// The app icon, drawn here so it needs no image tools: EM-like cells (gray membranes) on
/// the app's panel colour, one holding a mitochondrion in the accent blue.
fn icon_png(size: u32) -> Result<Vec<u8>> {
    let s = size as f32;
    let cells = [
        (0.34, 0.36, 0.22),
        (0.70, 0.30, 0.17),
        (0.64, 0.70, 0.23),
        (0.27, 0.76, 0.16),
    ];
    let mut rgb = Vec::with_capacity((size * size * 3) as usize);
    for y in 0..size {
        for x in 0..size {
            let (u, v) = ((x as f32 + 0.5) / s, (y as f32 + 0.5) / s);
            let mut colour = [0x1f, 0x24, 0x2a];
            for &(cx, cy, r) in &cells {
                let d = ((u - cx).powi(2) + (v - cy).powi(2)).sqrt();
                if (d - r).abs() < 0.022 {
                    colour = [0xc8, 0xcf, 0xd6];
                }
            }
            // The mitochondrion: an ellipse inside the first cell.
            let (eu, ev) = ((u - 0.34) / 0.13, (v - 0.36) / 0.07);
            if eu * eu + ev * ev < 1.0 {
                colour = [0x4e, 0xa1, 0xff];
            }
            rgb.extend_from_slice(&colour);
        }
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, size, size);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.write_header()?.write_image_data(&rgb)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_index_becomes_the_page_of_the_plain_build() {
        let html = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../index.html"))
            .expect("index.html");
        let snippets = ["snippets/emstudio-app-0a1b/js/fs.js".to_string()];
        let page = index_without_trunk(&html, &snippets).expect("index");
        assert!(!page.contains("data-trunk"), "{page}");
        assert_eq!(
            page.matches("import init from \"./emstudio-app.js\"")
                .count(),
            1
        );
        for preload in [
            r#"<link rel="modulepreload" href="./emstudio-app.js">"#,
            r#"<link rel="modulepreload" href="./snippets/emstudio-app-0a1b/js/fs.js">"#,
            r#"<link rel="preload" href="./emstudio-app_bg.wasm" as="fetch" type="application/wasm" crossorigin>"#,
        ] {
            assert_eq!(page.matches(preload).count(), 1, "{preload} in {page}");
        }
        assert!(page.contains("registerServiceWorker") && page.contains("style.css"));
        assert!(index_without_trunk("<html></html>", &[]).is_err());
        assert!(index_without_trunk("<link data-trunk\n rel=\"rust\">", &[]).is_err());
    }

    #[test]
    fn the_name_section_goes_and_every_other_section_stays() {
        let section = |id: u8, body: &[u8]| {
            let mut s = vec![id, body.len() as u8];
            s.extend_from_slice(body);
            s
        };
        let header = b"\0asm\x01\0\0\0".to_vec();
        let types = section(1, &[1, 0x60, 0, 0]);
        let names = section(0, b"\x04name\x01\x02\x00\x00");
        let producers = section(0, b"\x09producers\x00");
        let module = [header.clone(), types.clone(), names, producers.clone()].concat();
        let stripped = without_name_section(&module).expect("strip");
        assert_eq!(stripped, [header.clone(), types, producers].concat());
        assert_eq!(without_name_section(&stripped).expect("again"), stripped);
        assert!(without_name_section(b"\0asn\x01\0\0\0").is_err());
        assert!(without_name_section(&[header, vec![1, 9, 0]].concat()).is_err());
    }
}
