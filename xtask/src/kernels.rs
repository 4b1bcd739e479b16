//! `cargo xtask bench kernels`: the image-processing kernels against their Python references,
//! and the worker's operations natively against the same operations in Chromium (wasm).
//!
//! Ours: `crates/core/examples/bench_*.rs` (release), one JSON line per kernel
//! `{"kernel","impl":"emstudio","ms"}`. References: `scripts/golden/bench_*.py` with the same
//! kernel names, run in a virtual environment under `$EMSTUDIO_CACHE/venv` made from
//! `scripts/golden/requirements.txt` (the pinned PyPI packages the golden fixtures come from).
//! Worker operations: `worker/examples/bench_ops.rs` (native) and `tests/e2e/bench_ops.mjs`
//! (Chromium), `{"op","impl":"native"|"wasm","ms"}`. Both tables are written into
//! BENCHMARKS.md between `<!-- bench:kernels -->` and `<!-- bench:worker-ops -->` markers.

use crate::{cache_dir, cargo, cmd, output, status, step, target_dir};
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The four kernel groups: example name and reference script.
const GROUPS: [&str; 4] = ["labels", "watershed", "filters", "metrics"];

/// The Python of a venv with the pinned reference packages (made once).
pub fn python() -> Result<PathBuf> {
    venv_python("venv", "scripts/golden/requirements.txt")
}

/// The Python of the venv `$EMSTUDIO_CACHE/<name>` with `requirements` installed; reinstalled
/// when the requirements file changes.
pub fn venv_python(name: &str, requirements: &str) -> Result<PathBuf> {
    let venv = cache_dir().join(name);
    let py = venv.join("bin/python3");
    let wanted = std::fs::read_to_string(requirements).context(requirements.to_string())?;
    let stamp = venv.join("requirements.installed");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
        return Ok(py);
    }
    step(&format!("python venv {name} from {requirements} (once)"));
    status(cmd("python3").args(["-m", "venv"]).arg(&venv))?;
    status(
        cmd(&py)
            .args(["-m", "pip", "install", "--quiet", "--no-cache-dir", "-r"])
            .arg(requirements),
    )?;
    std::fs::write(&stamp, wanted)?;
    Ok(py)
}

/// One timing line.
#[derive(Debug, Clone)]
struct Timing {
    name: String,
    implementation: String,
    ms: f64,
}

fn parse_lines(text: &str, key: &str) -> Vec<Timing> {
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l.trim()).ok())
        .filter_map(|v| {
            Some(Timing {
                name: v.get(key)?.as_str()?.to_string(),
                implementation: v.get("impl")?.as_str()?.to_string(),
                ms: v.get("ms")?.as_f64()?,
            })
        })
        .collect()
}

fn fmt_ms(ms: f64) -> String {
    if ms >= 100.0 {
        format!("{ms:.0}")
    } else if ms >= 1.0 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.3}")
    }
}

/// Runs ours and the references for every group; returns the Markdown block.
pub fn kernels(data: &Path, machine: &str) -> Result<String> {
    let py = python()?;
    step("build the kernel benchmarks (release)");
    status(cargo().args(["build", "--release", "-p", "emstudio-core", "--examples"]))?;
    let examples = target_dir()?.join("release/examples");
    let mut rows = String::new();
    for group in GROUPS {
        step(&format!(
            "kernel benchmarks: {group} (ours, then the references)"
        ));
        let ours = parse_lines(
            &output(cmd(examples.join(format!("bench_{group}"))).arg(data))?,
            "kernel",
        );
        let refs = parse_lines(
            &output(
                cmd(&py)
                    .arg(format!("scripts/golden/bench_{group}.py"))
                    .arg(data),
            )?,
            "kernel",
        );
        for o in &ours {
            let matching: Vec<&Timing> = refs.iter().filter(|r| r.name == o.name).collect();
            if matching.is_empty() {
                rows.push_str(&format!(
                    "| {group} | `{}` | {} | — | — |\n",
                    o.name,
                    fmt_ms(o.ms)
                ));
            }
            for r in matching {
                rows.push_str(&format!(
                    "| {group} | `{}` | {} | {} {} | {:.2}× |\n",
                    o.name,
                    fmt_ms(o.ms),
                    r.implementation,
                    fmt_ms(r.ms),
                    o.ms / r.ms
                ));
            }
        }
    }
    Ok(format!(
        "<!-- bench:kernels -->\nMachine: {machine}\n\n| group | kernel | ours (ms) | reference (ms) | ratio |\n|---|---|---|---|---|\n{rows}<!-- /bench:kernels -->"
    ))
}

/// Native timings of the worker operations.
pub fn ops_native(data: &Path) -> Result<String> {
    step("worker operations, native (release)");
    status(cargo().args([
        "build",
        "--release",
        "-p",
        "emstudio-worker",
        "--example",
        "bench_ops",
    ]))?;
    output(cmd(target_dir()?.join("release/examples/bench_ops")).arg(data))
}

/// The wasm/native table from both outputs.
pub fn ops_table(native: &str, wasm: &str, machine: &str) -> String {
    let native = parse_lines(native, "op");
    let wasm: BTreeMap<String, f64> = parse_lines(wasm, "op")
        .into_iter()
        .map(|t| (t.name, t.ms))
        .collect();
    let mut rows = String::new();
    for n in &native {
        let (w, ratio) = match wasm.get(&n.name) {
            Some(w) => (fmt_ms(*w), format!("{:.2}×", w / n.ms)),
            None => ("—".into(), "—".into()),
        };
        rows.push_str(&format!(
            "| `{}` | {} | {w} | {ratio} |\n",
            n.name,
            fmt_ms(n.ms)
        ));
    }
    format!(
        "<!-- bench:worker-ops -->\nMachine: {machine}\n\n| operation on flyem-medulla-fib 250³ | native (ms) | Chromium worker, wasm (ms) | wasm ÷ native |\n|---|---|---|---|\n{rows}<!-- /bench:worker-ops -->"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_pair_lines_by_name() {
        let native = "{\"op\":\"a\",\"impl\":\"native\",\"ms\":10.0}\nnoise\n";
        let wasm = "{\"op\":\"a\",\"impl\":\"wasm\",\"ms\":25.0}\n";
        let t = ops_table(native, wasm, "m");
        assert!(t.contains("| `a` | 10.0 | 25.0 | 2.50× |"), "{t}");
        assert_eq!(
            parse_lines("{\"kernel\":\"k\",\"impl\":\"x\",\"ms\":1}", "kernel").len(),
            1
        );
    }
}
