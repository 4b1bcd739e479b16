//! `cargo xtask`: one entry point for building, running, testing and benchmarking EM Studio.
//!
//! - `cargo xtask run [-- serve args]`: installs what is missing (wasm32 target,
//!   wasm-bindgen-cli at the `Cargo.lock` version), builds app + worker to `dist/`, builds the
//!   companion and serves the app with the demo datasets on http://127.0.0.1:8080.
//! - `cargo xtask test`: everything CI runs, cheapest first: fmt, clippy (native, with the GPU
//!   features), native tests, wasm tests (Node), the release web build (the wasm32 crates
//!   linted as they are built, see [`linted_cargo`]), and the end-to-end tests in headless
//!   Chromium (installed from Debian packages when missing).
//! - `cargo xtask bench [browser|kernels|nets [--steps N]|nets-speed|ffn-speed|nets-browser|all]`:
//!   benchmarks, written to `BENCHMARKS.md`: browser loading/viewing, the kernels against their
//!   Python references plus the worker's operations native vs wasm ([`kernels`]), the CNNs
//!   trained and scored on real data ([`nets`]), their speed beside PyTorch (`nets-speed`), the
//!   flood-filling network's beside its PyTorch twin (`ffn-speed`) and the CNNs in Chromium
//!   beside ONNX Runtime Web (`nets-browser`); `all` leaves the net ones out.
//! - `cargo xtask build` (or `dist`): just the web build, to `dist/`: the app, both workers and
//!   the demo datasets with their models and `datasets.json`, a static site any file server
//!   can serve (docs/publishing.md). The app's and the data worker's wasm go through
//!   binaryen's `wasm-opt -O1` (npm; [`optimise_wasm`]), so every browser test runs the
//!   optimised modules.
//!
//! - `cargo xtask demo-data`: rewrites the FlyEM demo from the shared data ([`demo_data`]).
//!
//! - `cargo xtask trunk [serve|build ...]`: the Leptos way, `trunk serve` (Trunk.toml,
//!   `index.html` at the root), with trunk 0.21.14 and wasm-bindgen-cli installed into the tool
//!   cache and put on its `PATH`; trunk's post-build hook (`cargo xtask site`, [`site`])
//!   finishes its folder as `cargo xtask build` does.
//!
//! Tools are installed under `$EMSTUDIO_CACHE` (default `~/.cache/emstudio`), next to the
//! target directory CI reuses.

mod demo_data;
mod kernels;
mod nets;
mod site;

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = repo_root()?;
    std::env::set_current_dir(&root)?;
    match args.first().map(String::as_str) {
        Some("setup") => setup().map(|_| ()),
        Some("build") => build(Lint::No).map(|_| ()),
        Some("dist") => build(Lint::No).map(|_| {
            eprintln!("\ndist/ is the whole site: copy it to any static web host, or try it with\n  python3 -m http.server --directory dist 8000");
        }),
        Some("run") => run(&args[1..]),
        Some("site") => site::trunk_hook(),
        Some("demo-data") => demo_data::write(
            &shared_data().context("demo-data reads ../shared/data/flyem-medulla-fib")?,
        ),
        Some("trunk") => trunk(&args[1..]),
        Some("test") => test(),
        Some("bench") => match args.get(1).map(String::as_str) {
            None | Some("all") => bench_browser().and_then(|_| bench_kernels()),
            Some("browser") => bench_browser(),
            Some("kernels") => bench_kernels(),
            Some("nets") => bench_nets(&args[2..]),
            Some("nets-speed") => bench_nets_speed(),
            Some("ffn-speed") => bench_ffn_speed(),
            Some("nets-browser") => bench_nets_browser(),
            Some(other) => {
                bail!("cargo xtask bench {other}: use browser, kernels, nets, nets-speed, ffn-speed, nets-browser or all")
            }
        },
        _ => {
            eprintln!("usage: cargo xtask <setup|build|dist|run|test|demo-data|trunk [serve|build ...]|bench [browser|kernels|nets [--steps N]|nets-speed|ffn-speed|nets-browser|all]>");
            std::process::exit(2);
        }
    }
}

/// The clone this xtask runs for. `cargo run` passes the manifest folder at run time; the
/// compile-time one is only a fallback, because clones that share a target directory share the
/// xtask binary, which cargo does not rebuild when only the clone's path changed.
fn repo_root() -> Result<PathBuf> {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    Ok(dir
        .parent()
        .context("xtask has no parent folder")?
        .to_path_buf())
}

fn cache_dir() -> PathBuf {
    std::env::var_os("EMSTUDIO_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| ".".into()))
                .join(".cache/emstudio")
        })
}

fn step(name: &str) {
    eprintln!("\n==> {name}");
}

fn cmd(program: impl AsRef<std::ffi::OsStr>) -> Command {
    Command::new(program)
}

fn status(c: &mut Command) -> Result<()> {
    let shown = format!("{c:?}");
    let s = c
        .status()
        .with_context(|| format!("could not start {shown}"))?;
    if !s.success() {
        bail!("failed ({s}): {shown}");
    }
    Ok(())
}

fn output(c: &mut Command) -> Result<String> {
    let shown = format!("{c:?}");
    let o = c
        .output()
        .with_context(|| format!("could not start {shown}"))?;
    if !o.status.success() {
        bail!("failed: {shown}\n{}", String::from_utf8_lossy(&o.stderr));
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

fn cargo() -> Command {
    cmd(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn target_dir() -> Result<PathBuf> {
    let meta = output(cargo().args(["metadata", "--format-version", "1", "--no-deps"]))?;
    let v: serde_json::Value = serde_json::from_str(&meta)?;
    Ok(PathBuf::from(
        v["target_directory"]
            .as_str()
            .context("no target_directory in cargo metadata")?,
    ))
}

/// The wasm-bindgen version pinned in Cargo.lock.
fn locked_wasm_bindgen() -> Result<String> {
    let lock = std::fs::read_to_string("Cargo.lock").context("Cargo.lock missing")?;
    let mut lines = lock.lines();
    while let Some(l) = lines.next() {
        if l == "name = \"wasm-bindgen\"" {
            if let Some(v) = lines.next().and_then(|v| v.strip_prefix("version = \"")) {
                return Ok(v.trim_end_matches('"').to_string());
            }
        }
    }
    bail!("wasm-bindgen is not in Cargo.lock")
}

struct Tools {
    wasm_bindgen: PathBuf,
    test_runner: PathBuf,
}

/// Installs the wasm32 target and wasm-bindgen-cli when missing.
fn setup() -> Result<Tools> {
    let installed =
        output(cmd("rustup").args(["target", "list", "--installed"])).unwrap_or_default();
    if !installed
        .lines()
        .any(|l| l.trim() == "wasm32-unknown-unknown")
    {
        step("rustup target add wasm32-unknown-unknown");
        status(cmd("rustup").args(["target", "add", "wasm32-unknown-unknown"]))?;
    }
    let version = locked_wasm_bindgen()?;
    let root = cache_dir().join("tools");
    let bin = root.join("bin");
    let wasm_bindgen = bin.join("wasm-bindgen");
    let have = output(cmd(&wasm_bindgen).arg("--version")).unwrap_or_default();
    if !have.contains(&version) {
        step(&format!(
            "cargo install wasm-bindgen-cli {version} (a few minutes, once)"
        ));
        // Not --locked: the CLI's own lock file pins a yanked crate.
        status(
            cargo()
                .args(["install", "wasm-bindgen-cli", "--version"])
                .arg(format!("={version}"))
                .arg("--root")
                .arg(&root),
        )?;
    }
    Ok(Tools {
        test_runner: bin.join("wasm-bindgen-test-runner"),
        wasm_bindgen,
    })
}

/// Whether a build also runs clippy's lints (as `cargo clippy -- -D warnings` would) on the
/// workspace crates it compiles.
#[derive(Clone, Copy, PartialEq)]
enum Lint {
    No,
    DenyWarnings,
}

/// Cargo for a build that, with [`Lint::DenyWarnings`], compiles the workspace's crates with
/// `clippy-driver` (rustc plus clippy's lints: the wrapper `cargo clippy` itself uses) and
/// fails on any warning. Dependencies are compiled by rustc as in a plain build, so a lint
/// pass and a build share one compile of burn and friends instead of a `check` plus a
/// `build` (about 8 minutes for wasm32 on a cold 2-core machine). clippy-driver runs MIR
/// optimisations at level 0 on the linted crates; LLVM's optimisation is unchanged.
fn linted_cargo(lint: Lint) -> Result<Command> {
    let mut c = cargo();
    if lint == Lint::DenyWarnings {
        let driver = output(cmd("rustup").args(["which", "clippy-driver"]))
            .map(|p| PathBuf::from(p.trim()))
            .unwrap_or_else(|_| PathBuf::from("clippy-driver"));
        c.env("RUSTC_WORKSPACE_WRAPPER", driver).env(
            "CLIPPY_ARGS",
            "-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__",
        );
    }
    Ok(c)
}

fn build(lint: Lint) -> Result<(u64, u64, u64)> {
    let tools = setup()?;
    step(match lint {
        Lint::No => "build app and workers (wasm32, release)",
        Lint::DenyWarnings => {
            "build and lint app, workers, webmsg, core and nets (wasm32, release, clippy -D warnings)"
        }
    });
    status(linted_cargo(lint)?.args([
        "build",
        "--release",
        "--target",
        "wasm32-unknown-unknown",
        "-p",
        "emstudio-app",
        "-p",
        "emstudio-worker",
        "-p",
        "emstudio-nets-worker",
    ]))?;
    let out = target_dir()?.join("wasm32-unknown-unknown/release");
    let dist = PathBuf::from("dist");
    if dist.exists() {
        std::fs::remove_dir_all(&dist)?;
    }
    std::fs::create_dir_all(&dist)?;
    // The file names `trunk build` gives them (the package names), so both builds make the
    // same site.
    for (wasm, name) in [
        ("emstudio-app.wasm", "emstudio-app"),
        ("emstudio_worker.wasm", "emstudio-worker"),
        ("emstudio_nets_worker.wasm", "emstudio-nets-worker"),
    ] {
        status(
            cmd(&tools.wasm_bindgen)
                // Function names are only for debuggers; the network worker's alone are 7 MB.
                .args([
                    "--target",
                    "web",
                    "--no-typescript",
                    "--remove-name-section",
                    "--out-name",
                    name,
                ])
                .arg("--out-dir")
                .arg(&dist)
                .arg(out.join(wasm)),
        )?;
    }
    let index = std::fs::read_to_string("index.html").context("index.html")?;
    let page = site::index_without_trunk(&index, &site::app_snippets(&dist)?)?;
    std::fs::write(dist.join("index.html"), page)?;
    site::finish(&dist)
}

/// trunk's version: 0.22 needs a newer rustc than the workspace's (DESIGN.md section 3).
const TRUNK: &str = "0.21.14";

/// Runs trunk (installed into the tool cache when missing, about 12 minutes on 2 cores) with
/// the tool cache first on `PATH`, where trunk finds wasm-bindgen at the `Cargo.lock` version
/// (Trunk.toml says `offline`: it downloads nothing).
fn trunk(args: &[String]) -> Result<()> {
    setup()?;
    let root = cache_dir().join("tools");
    let bin = root.join("bin");
    let trunk = bin.join("trunk");
    let have = output(cmd(&trunk).arg("--version")).unwrap_or_default();
    if !have.contains(TRUNK) {
        step(&format!(
            "cargo install trunk {TRUNK} (about 12 minutes, once)"
        ));
        status(
            cargo()
                .args(["install", "--locked", "trunk", "--version"])
                .arg(format!("={TRUNK}"))
                .arg("--root")
                .arg(&root),
        )?;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let path =
        std::env::join_paths(std::iter::once(bin.clone()).chain(std::env::split_paths(&path)))?;
    status(cmd(&trunk).args(args).env("PATH", path))
}

/// Builds the companion. The dev profile is used on purpose: dependencies are built with
/// opt-level 2 (root Cargo.toml) and are shared with `cargo test`, which saves a full release
/// build of tokio/axum on a cold CI machine; serving files is not CPU-bound.
fn companion_bin() -> Result<PathBuf> {
    step("build the companion");
    status(cargo().args(["build", "-p", "emstudio-companion"]))?;
    Ok(target_dir()?.join("debug/emstudio"))
}

fn run(extra: &[String]) -> Result<()> {
    build(Lint::No)?;
    let bin = companion_bin()?;
    let extra: Vec<&String> = extra.iter().skip_while(|a| *a == "--").collect();
    step("serve");
    status(
        cmd(bin)
            .args(["serve", "--dist", "dist", "--demo", "demo"])
            .args(extra),
    )
}

/// The shared EM data used by tests and benchmarks, if this machine has it.
fn shared_data() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("EMSTUDIO_SHARED_DATA").map(PathBuf::from),
        Some(PathBuf::from("../shared/data")),
        Some(PathBuf::from("/work/shared/data")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|p| p.join("isbi2012").is_dir())
}

fn ensure_chromium() -> Result<PathBuf> {
    for c in ["chromium", "chromium-browser"] {
        if let Ok(p) = output(cmd("sh").args(["-c", &format!("command -v {c}")])) {
            if !p.trim().is_empty() {
                return Ok(PathBuf::from(p.trim()));
            }
        }
    }
    step("install Debian chromium (headless browser tests)");
    let sudo = if output(cmd("id").arg("-u")).unwrap_or_default().trim() == "0" {
        vec![]
    } else {
        vec!["sudo"]
    };
    let apt = |args: &[&str]| -> Result<()> {
        let mut full: Vec<&str> = sudo.clone();
        full.push("apt-get");
        full.extend_from_slice(args);
        status(
            cmd(full[0])
                .args(&full[1..])
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )
    };
    apt(&["update", "-q"])?;
    apt(&["install", "-y", "-q", "chromium"])?;
    Ok(PathBuf::from("/usr/bin/chromium"))
}

fn ensure_node_deps() -> Result<()> {
    let dir = Path::new("tests/e2e");
    if !dir.join("node_modules/playwright-core").is_dir() {
        step("npm ci (playwright-core, driving Debian's chromium; no browser download)");
        status(
            cmd("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(dir)
                .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1"),
        )?;
    }
    Ok(())
}

/// Installs LLVM 23 so that the `cuda` feature compiles (`cargo check`, `cargo clippy`) without
/// GitHub, and returns the environment to give that cargo command.
///
/// burn's CUDA backend (cubecl-cuda) always builds cubecl-llvm, which links LLVM 23. Its build
/// dependency tracel-llvm-bundler downloads an LLVM bundle from GitHub releases unless
/// `$XDG_DATA_HOME/tracel/tracel-llvm-23.1.0-4/.tracel-llvm-installed` exists; cubecl-llvm's
/// build script then runs that folder's `bin/llvm-config --link-static` (`--cxxflags`,
/// `--includedir`, `--libdir`, `--libs`, `--system-libs`) and compiles its C/C++ shims against
/// its `include/`. (llvm-sys is built with `no-llvm-linking` and `disable-alltargets-init`,
/// so its build script returns at once and reads no `LLVM_SYS_231_PREFIX`.) PyPI's
/// `mlc-llvm-static` wheel carries the same LLVM (23.1.1: headers, static libraries and a
/// Python `llvm-config`), and pip reaches PyPI where GitHub cannot be reached. Its default
/// profile has only the host's code generator: enough to compile, not to link a binary that
/// generates PTX (that also needs `mlc-llvm-static-extra-targets`).
///
/// The bundle goes to a private `XDG_DATA_HOME` inside `cache`, leaving `~/.local/share` alone.
/// Linux only: elsewhere the bundler's data folder does not follow `XDG_DATA_HOME`.
fn ensure_llvm_for_cuda(cache: &Path) -> Result<Vec<(String, PathBuf)>> {
    const WHEEL: &str = "mlc-llvm-static==23.1.1.post0";
    const WHEEL_FILE: &str = "mlc_llvm_static-23.1.1.post0-";
    // tracel-llvm-bundler 23.1.0-4: `llvm_path()` below the data folder, and its sentinel.
    const BUNDLE: &str = "tracel/tracel-llvm-23.1.0-4";
    const SENTINEL: &str = ".tracel-llvm-installed";
    if !cfg!(target_os = "linux") {
        bail!("the cuda feature's LLVM is only set up on Linux");
    }
    let root = cache.join("llvm-23");
    let data = root.join("data");
    let prefix = data.join(BUNDLE);
    if !prefix.join(SENTINEL).is_file() {
        let wheels = cache.join("llvm-wheels");
        step(&format!(
            "pip download {WHEEL} (LLVM 23 for the cuda feature, once)"
        ));
        status(
            cmd("python3")
                .args([
                    "-m",
                    "pip",
                    "download",
                    "--no-deps",
                    "--only-binary=:all:",
                    "-d",
                ])
                .arg(&wheels)
                .arg(WHEEL),
        )?;
        let wheel = std::fs::read_dir(&wheels)
            .with_context(|| format!("reading {}", wheels.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(WHEEL_FILE) && n.ends_with(".whl"))
            })
            .with_context(|| format!("no {WHEEL_FILE}*.whl in {}", wheels.display()))?;
        // Unpack beside the final folder, then move its `static/` SDK (bin, include, lib,
        // share) into place, so an interrupted run leaves no half-filled bundle behind.
        let unpacking = root.join("unpacking");
        for dir in [&unpacking, &prefix] {
            if dir.exists() {
                std::fs::remove_dir_all(dir)
                    .with_context(|| format!("removing {}", dir.display()))?;
            }
        }
        status(
            cmd("python3")
                .args(["-m", "zipfile", "-e"])
                .arg(&wheel)
                .arg(&unpacking),
        )?;
        std::fs::create_dir_all(prefix.parent().context("bundle folder has no parent")?)?;
        std::fs::rename(unpacking.join("mlc_llvm_static/static"), &prefix)
            .with_context(|| format!("moving the LLVM SDK to {}", prefix.display()))?;
        std::fs::remove_dir_all(&unpacking)?;
        // Zip extraction drops the executable bit; llvm-config is a Python script.
        let llvm_config = prefix.join("bin/llvm-config");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&llvm_config, std::fs::Permissions::from_mode(0o755))
                .with_context(|| format!("chmod {}", llvm_config.display()))?;
        }
        let version = output(cmd(&llvm_config).args(["--link-static", "--version"]))?;
        if !version.trim().starts_with("23.") {
            bail!(
                "{} reports LLVM {}, not 23",
                llvm_config.display(),
                version.trim()
            );
        }
        std::fs::File::create(prefix.join(SENTINEL))
            .with_context(|| format!("creating {}", prefix.join(SENTINEL).display()))?;
    }
    Ok(vec![("XDG_DATA_HOME".into(), data)])
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the companion on a free port; returns it with its URL.
fn start_server(bin: &Path, data: &[&Path]) -> Result<(Server, String)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut c = cmd(bin);
    c.args([
        "serve",
        "--dist",
        "dist",
        "--demo",
        "demo",
        "--port",
        &port.to_string(),
    ]);
    for d in data {
        c.arg("--data").arg(d);
    }
    let server = Server(
        c.stdout(Stdio::null())
            .spawn()
            .context("start the companion")?,
    );
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if start.elapsed() > Duration::from_secs(30) {
            bail!("the companion did not start listening on port {port}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok((server, format!("http://127.0.0.1:{port}/")))
}

fn test() -> Result<()> {
    step("cargo fmt --check");
    status(cargo().args(["fmt", "--all", "--", "--check"]))?;
    // One native clippy over the workspace with both GPU features on, so the `wgpu` and
    // `cuda` code is compiled and linted too (the CPU-only branches are compiled by the tests
    // below). burn's CUDA backend links LLVM 23, set up from PyPI (`ensure_llvm_for_cuda`).
    step("clippy (native, with the wgpu and cuda GPU features)");
    let llvm = ensure_llvm_for_cuda(&cache_dir())?;
    status(
        cargo()
            .args([
                "clippy",
                "--workspace",
                "--all-targets",
                "--features",
                "emstudio-nets/wgpu,emstudio-nets/cuda,emstudio-companion/wgpu,emstudio-companion/cuda",
                "--",
                "-D",
                "warnings",
            ])
            .envs(llvm),
    )?;
    let tools = setup()?;
    // The real-data tests run from their crate folders, so they get an absolute path; without
    // the data they are skipped locally, and under CI both they and this fail.
    let data = match shared_data() {
        Some(d) => {
            let abs = std::fs::canonicalize(&d);
            Some(abs.with_context(|| d.display().to_string())?)
        }
        None if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) => {
            bail!("CI is set but the shared data was not found (no isbi2012/ in $EMSTUDIO_SHARED_DATA, ../shared/data or /work/shared/data)")
        }
        None => {
            eprintln!("note: shared data not found; the real-data tests and the isbi2012 browser test will be skipped");
            None
        }
    };
    step("native tests");
    let mut native = cargo();
    native.args(["test", "--workspace"]);
    if let Some(d) = &data {
        native.env("EMSTUDIO_SHARED_DATA", d);
    }
    status(&mut native)?;
    // The wasm32 code is linted while it is built (`linted_cargo`): core's wasm tests here,
    // and app, workers, webmsg, core and nets by the release build below.
    step("wasm tests (core, in Node; linted)");
    status(
        linted_cargo(Lint::DenyWarnings)?
            .args([
                "test",
                "--target",
                "wasm32-unknown-unknown",
                "-p",
                "emstudio-core",
                "--test",
                "wasm",
            ])
            .env(
                "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER",
                &tools.test_runner,
            ),
    )?;
    build(Lint::DenyWarnings)?;
    // The native tests built the companion binary (its integration tests run it) with the
    // workspace's features; `cargo build -p emstudio-companion` would resolve features for it
    // alone and rebuild burn and friends (7 minutes on a cold machine).
    let bin = target_dir()?.join("debug/emstudio");
    if !bin.is_file() {
        bail!(
            "{}: the native tests did not build the companion",
            bin.display()
        );
    }
    let chromium = ensure_chromium()?;
    ensure_node_deps()?;
    let data_dirs: Vec<&Path> = data.iter().map(PathBuf::as_path).collect();
    let (_server, url) = start_server(&bin, &data_dirs)?;
    step("end-to-end tests in headless Chromium");
    let mut e2e = cmd("node");
    e2e.arg("tests/e2e/run.mjs")
        .env("EMSTUDIO_URL", &url)
        .env("CHROMIUM", &chromium);
    if let Some(d) = &data {
        e2e.env("EMSTUDIO_SHARED_DATA", d);
    }
    status(&mut e2e)?;
    eprintln!("\nall tests passed");
    Ok(())
}

/// A 30×1024×1024 stack (image + labels) made by tiling isbi2012 2×2, for the 1024² viewer
/// benchmarks; written once under the target directory.
fn tiled_1024(data: &Path) -> Result<PathBuf> {
    use emstudio_core::stack::{export, read_stack, BitDepth, ExportFormat, ExportOptions, Limits};
    use emstudio_core::{with_volume, AnyVolume, Shape, Volume};
    let root = target_dir()?.join("bench-data");
    let set = root.join("tiled-1024");
    if set.join("label").is_dir() {
        return Ok(root);
    }
    step("generate the 1024² benchmark stack from isbi2012");
    for layer in ["image", "label"] {
        let dir = data.join("isbi2012").join(layer);
        let mut files = Vec::new();
        for e in std::fs::read_dir(&dir).with_context(|| dir.display().to_string())? {
            let e = e?;
            files.push((
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path())?,
            ));
        }
        let small = read_stack(files, &Limits::default())?;
        let tiled = with_volume!(&small, v => {
            let s = v.shape();
            let mut big = Volume::new(Shape::new(s.z, s.y * 2, s.x * 2), 1)?;
            for z in 0..s.z {
                let src = v.slice(z);
                let mut dst = Vec::with_capacity(src.len() * 4);
                for y in 0..s.y * 2 {
                    let row = &src[(y % s.y) * s.x..(y % s.y + 1) * s.x];
                    dst.extend_from_slice(row);
                    dst.extend_from_slice(row);
                }
                big.set_slice(z, &dst)?;
            }
            AnyVolume::from(big)
        });
        let out = set.join(layer);
        std::fs::create_dir_all(&out)?;
        let options = ExportOptions {
            format: ExportFormat::PngSeries,
            depth: BitDepth::Native,
            rescale: false,
            base_name: "slice".into(),
        };
        for (name, bytes) in export(&tiled, &options)? {
            std::fs::write(out.join(name), bytes)?;
        }
    }
    Ok(root)
}

/// "2 × CPU model, N GiB, date" for the benchmark tables.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(str::trim)
        .unwrap_or("cpu")
        .to_string();
    let cores = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.split_whitespace().next()?.parse::<f64>().ok())
        .map(|kib| kib / 1024.0 / 1024.0)
        .unwrap_or(0.0);
    let date = output(cmd("date").arg("+%Y-%m-%d")).unwrap_or_default();
    format!("{cores} × {model}, {mem:.0} GiB, {}", date.trim())
}

/// The CNNs trained and scored on real EM data (long: tens of minutes on a CPU).
/// `--steps N` trains each network N steps (default [`nets::DEFAULT_STEPS`]).
fn bench_nets(flags: &[String]) -> Result<()> {
    let steps = match flags {
        [] => nets::DEFAULT_STEPS,
        [flag, n] if flag == "--steps" => n
            .parse()
            .ok()
            .filter(|&n: &u64| n > 0)
            .with_context(|| format!("--steps {n}: a whole number above 0"))?,
        other => bail!(
            "cargo xtask bench nets {}: the only flag is --steps N",
            other.join(" ")
        ),
    };
    let data = shared_data().context("benchmarks need ../shared/data (epfl, ac3, isbi2012)")?;
    let table = nets::bench(&data, &machine(), steps)?;
    println!("{table}");
    update_benchmarks_md("nets", &table)
}

/// Network speed, ours vs PyTorch on the CPU.
fn bench_nets_speed() -> Result<()> {
    let data = shared_data().context("benchmarks need ../shared/data (epfl-hippocampus-mito)")?;
    let table = nets::speed(&data, &machine())?;
    println!("{table}");
    update_benchmarks_md("nets-speed", &table)
}

/// The flood-filling network beside its PyTorch twin.
fn bench_ffn_speed() -> Result<()> {
    let table = nets::ffn_speed(&machine())?;
    println!("{table}");
    update_benchmarks_md("ffn-speed", &table)
}

/// CNNs in Chromium vs native and vs ONNX Runtime Web.
fn bench_nets_browser() -> Result<()> {
    let data = shared_data().context("benchmarks need ../shared/data")?;
    let table = nets::browser(&data, &machine())?;
    println!("{table}");
    update_benchmarks_md("nets-browser", &table)
}

/// Kernels vs references (native) and worker operations native vs wasm in Chromium.
fn bench_kernels() -> Result<()> {
    let data =
        shared_data().context("benchmarks need ../shared/data (isbi2012, flyem-medulla-fib)")?;
    let machine = machine();
    let table = kernels::kernels(&data, &machine)?;
    println!("{table}");
    update_benchmarks_md("kernels", &table)?;

    let native = kernels::ops_native(&data)?;
    build(Lint::No)?;
    // The native tests built the companion binary (its integration tests run it) with the
    // workspace's features; `cargo build -p emstudio-companion` would resolve features for it
    // alone and rebuild burn and friends (7 minutes on a cold machine).
    let bin = target_dir()?.join("debug/emstudio");
    if !bin.is_file() {
        bail!(
            "{}: the native tests did not build the companion",
            bin.display()
        );
    }
    let chromium = ensure_chromium()?;
    ensure_node_deps()?;
    let (_server, url) = start_server(&bin, &[data.as_path()])?;
    step("worker operations in Chromium (wasm)");
    let wasm = output(
        cmd("node")
            .arg("tests/e2e/bench_ops.mjs")
            .env("EMSTUDIO_URL", &url)
            .env("CHROMIUM", &chromium),
    )?;
    let table = kernels::ops_table(&native, &wasm, &format!("{machine}, Chromium headless"));
    println!("{table}");
    update_benchmarks_md("worker-ops", &table)
}

fn bench_browser() -> Result<()> {
    let (app_wasm, worker_wasm, nets_worker_wasm) = build(Lint::No)?;
    let bin = companion_bin()?;
    let chromium = ensure_chromium()?;
    ensure_node_deps()?;
    let data =
        shared_data().context("benchmarks need ../shared/data (isbi2012, flyem-medulla-fib)")?;
    let bench_data = tiled_1024(&data)?;
    let (_server, url) = start_server(&bin, &[data.as_path(), bench_data.as_path()])?;
    step("browser benchmarks");
    let out = output(
        cmd("node")
            .arg("tests/e2e/bench.mjs")
            .env("EMSTUDIO_URL", &url)
            .env("CHROMIUM", &chromium)
            .env("APP_WASM_BYTES", app_wasm.to_string())
            .env("WORKER_WASM_BYTES", worker_wasm.to_string())
            .env("NETS_WORKER_WASM_BYTES", nets_worker_wasm.to_string()),
    )?;
    print!("{out}");
    update_benchmarks_md("browser-foundation", &out)?;
    step("browser benchmarks: parallel work (helper workers, cancel)");
    let out = output(
        cmd("node")
            .arg("tests/e2e/bench_parallel.mjs")
            .env("EMSTUDIO_URL", &url)
            .env("CHROMIUM", &chromium),
    )?;
    print!("{out}");
    update_benchmarks_md("browser-parallel", &out)
}

/// Replaces the block between `<!-- bench:NAME -->` markers in BENCHMARKS.md with the one
/// found in `report`.
fn update_benchmarks_md(name: &str, report: &str) -> Result<()> {
    let (open, close) = (
        format!("<!-- bench:{name} -->"),
        format!("<!-- /bench:{name} -->"),
    );
    let block = |s: &str| -> Option<(usize, usize)> {
        let a = s.find(&open)?;
        let b = s[a..].find(&close)? + a + close.len();
        Some((a, b))
    };
    let (a, b) = block(report).context("the benchmark printed no result block")?;
    let new_block = &report[a..b];
    let md = std::fs::read_to_string("BENCHMARKS.md").unwrap_or_else(|_| "# Benchmarks\n".into());
    let updated = match block(&md) {
        Some((x, y)) => format!("{}{}{}", &md[..x], new_block, &md[y..]),
        None => format!("{md}\n{new_block}\n"),
    };
    std::fs::write("BENCHMARKS.md", updated)?;
    eprintln!("BENCHMARKS.md updated ({name})");
    Ok(())
}
