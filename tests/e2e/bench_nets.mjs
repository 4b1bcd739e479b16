// Browser benchmark of the CNNs, run by `cargo xtask bench nets-browser`: in one headless
// Chromium, train a U-Net (depth 4, width 8) on the AC3 demo slice through the Train panel
// (no augmentation, no live preview), run it over the slice through the Infer panel, and run
// the same architecture exported to ONNX from PyTorch (ORT_MODEL) with ONNX Runtime Web
// (in dist/ort-bench/ when ORT_BENCH=1) on the WASM and WebGPU execution providers. Prints one JSON line;
// the trained model file is saved to MODEL_OUT for the native comparison. Then the same on
// our WebGPU path (inference with the same model, a short training run). All of that runs in a
// page with `?workers=0` (one thread each); a second page then runs the same CPU inference with
// the tiles shared by the network worker's helpers (one per core) and ONNX Runtime Web WASM
// with as many threads (the companion's pages are cross-origin isolated, which ORT's threads
// need).
import fs from "node:fs";
import path from "node:path";
import { launch, openApp, waitIdle, waitShown, chooseModelOnCpu } from "./lib.mjs";

const STEPS = Number(process.env.BENCH_STEPS || 25);
const t0 = Date.now();
const phase = (what) => console.error(`[${((Date.now() - t0) / 1000).toFixed(0)} s] ${what}`);
const context = await launch();
const page = await openApp(context, "?workers=0");
async function openAc3(page) {
  await page.getByTestId("dataset-uniem-ac3-mito").click();
  await page.waitForFunction(() => document.querySelectorAll("[data-testid^='layer-'] .layer-name").length === 2);
  await waitIdle(page);
  await waitShown(page, 0);
}
await openAc3(page);

async function setField(id, value) {
  await page.getByTestId(id).fill(String(value));
  await page.getByTestId(id).dispatchEvent("change");
}
await page.getByTestId("tab-train").click();
await setField("train-size", 4);
await setField("train-width", 8);
await setField("train-steps", STEPS);
await setField("train-batch", 4);
await setField("train-patch", 128);
for (const a of ["flips", "intensity", "noise"]) await page.getByTestId(`train-aug-${a}`).uncheck();
await page.getByTestId("train-live-preview").uncheck();
await page.getByTestId("train-start").click();
await page.getByTestId("train-progress").waitFor();
let stepsPerS = 0;
while ((await page.getByTestId("train-result").textContent()) === "") {
  const v = await page.locator("[data-testid=train-progress] progress").getAttribute("data-steps-per-s").catch(() => null);
  if (v && Number(v) > 0) stepsPerS = Number(v);
  await page.waitForTimeout(250);
}
const summary = await page.getByTestId("train-result").textContent();

phase("CPU inference");
await page.getByTestId("tab-infer").click();
await page.getByTestId("infer-then-label").uncheck();
await page.getByTestId("infer-run").click();
await page.waitForFunction(() => document.querySelector("[data-testid=infer-result]")?.getAttribute("data-compute-ms"), null, { timeout: 600000 });
const inferMs = Number(await page.getByTestId("infer-result").getAttribute("data-compute-ms"));
// The worker sizes its tiles to the device ("· 9 tiles of 480²"): ONNX Runtime Web and the
// native run get the same tile, so all three do the same work per network pixel.
async function tiling(on = page) {
  const text = await on.getByTestId("infer-result").textContent();
  const m = text.match(/· (\d+) tiles? of (\d+)²/);
  if (!m) throw new Error(`no square tiling in the Infer panel's result: ${text}`);
  return { tiles: Number(m[1]), side: Number(m[2]) };
}
const cpuTiling = await tiling();
const [download] = await Promise.all([page.waitForEvent("download"), page.getByTestId("model-download").click()]);
await download.saveAs(process.env.MODEL_OUT || path.join("/tmp", download.suggestedFilename()));
const modelName = download.suggestedFilename();

// Ours on WebGPU (SwiftShader here: the GPU emulated on the CPU): the same model over the same
// slice, then a short training run of the same network (first steps include shader compiles).
phase("WebGPU inference");
await page.getByTestId("infer-device-choice").selectOption("gpu");
await page.getByTestId("infer-run").click();
await page.getByTestId("infer-result").filter({ hasText: "on WebGPU" }).waitFor({ timeout: 900000 });
const gpuInferMs = Number(await page.getByTestId("infer-result").getAttribute("data-compute-ms"));
const gpuTiling = await tiling();
await page.getByTestId("tab-train").click();
phase("WebGPU training");
const GPU_STEPS = Number(process.env.BENCH_GPU_STEPS || 6);
await setField("train-steps", GPU_STEPS);
await page.getByTestId("train-start").click();
await page.getByTestId("train-progress").waitFor();
let gpuStepsPerS = 0;
while (!(await page.getByTestId("train-result").textContent()).includes(`${GPU_STEPS}steps.emsmodel`)) {
  const v = await page.locator("[data-testid=train-progress] progress").getAttribute("data-steps-per-s").catch(() => null);
  if (v && Number(v) > 0) gpuStepsPerS = Number(v);
  await page.waitForTimeout(250);
}
const gpuSummary = await page.getByTestId("train-result").textContent();

// ONNX Runtime Web from the same origin: `cargo xtask bench nets-browser` puts its files and
// the ONNX model under dist/ort-bench/ (served with the app's isolation headers; request
// interception would break ORT's worker threads, which crash the page when routed).
const ortOn = process.env.ORT_BENCH === "1";
async function runOrt(on, ep, side, threads) {
  if (!ortOn) return undefined;
  return await on.evaluate(async ([ep, side, threads]) => {
    const mod = await import("./ort-bench/ort.all.min.mjs");
    const o = mod.default ?? mod;
    o.env.wasm.wasmPaths = new URL("./ort-bench/", location.href).href;
    o.env.wasm.numThreads = threads;
    try {
      const session = await o.InferenceSession.create("./ort-bench/model.onnx", { executionProviders: [ep] });
      const batch = ep === "wasm" ? 1 : 2; // the worker's batch: one tile on the CPU, two on WebGPU
      const input = new o.Tensor("float32", new Float32Array(batch * side * side).map(() => Math.random()), [batch, 1, side, side]);
      await session.run({ input });
      const runs = 5;
      const t0 = performance.now();
      for (let i = 0; i < runs; i++) await session.run({ input });
      const ms = (performance.now() - t0) / runs;
      return { mpx_per_s: (batch * side * side) / 1e6 / (ms / 1000), threads, isolated: self.crossOriginIsolated };
    } catch (e) {
      return { error: String(e) };
    }
  }, [ep, side, threads]);
}
phase("ONNX Runtime Web, 1 thread");
const ort = {};
for (const ep of ["wasm", "webgpu"]) {
  const r = await runOrt(page, ep, (ep === "wasm" ? cpuTiling : gpuTiling).side, 1);
  if (r) ort[ep] = r;
}

// The same CPU inference with the tiles shared by the network worker's helpers, in a page
// with the default helper count; the first run starts the helpers, the second is timed.
phase("CPU inference with helpers");
const pooledPage = await openApp(context);
const helpers = Number(await pooledPage.getByTestId("parallel-status").getAttribute("data-helpers"));
await openAc3(pooledPage);
await chooseModelOnCpu(pooledPage, modelName);
await pooledPage.getByTestId("infer-then-label").uncheck();
const pooledRuns = [];
for (let run = 0; run < 2; run++) {
  const before = await pooledPage.locator("[data-testid^='layer-'] .layer-name").count();
  await pooledPage.getByTestId("infer-run").click();
  await pooledPage.waitForFunction((n) => document.querySelectorAll("[data-testid^='layer-'] .layer-name").length === n, before + 1, { timeout: 600000 });
  await waitIdle(pooledPage);
  pooledRuns.push(Number(await pooledPage.getByTestId("infer-result").getAttribute("data-compute-ms")));
}
const pooledText = await pooledPage.getByTestId("infer-result").textContent();
if (!pooledText.includes(`${helpers} helper worker`)) throw new Error(`the pooled run did not use its helpers: ${pooledText}`);
const pooledTiling = await tiling(pooledPage);
phase("ONNX Runtime Web, threads");
const ortThreads = await runOrt(pooledPage, "wasm", pooledTiling.side, helpers);
await context.close();
console.log(JSON.stringify({ steps: STEPS, train_steps_per_s: stepsPerS, train_summary: summary, infer_ms: inferMs,
  tiling: cpuTiling,
  webgpu: { infer_ms: gpuInferMs, tiling: gpuTiling, train_steps_per_s: gpuStepsPerS, train_summary: gpuSummary }, ort,
  pooled: { helpers, infer_ms: pooledRuns[1], first_infer_ms: pooledRuns[0], tiling: pooledTiling, ort_wasm: ortThreads } }));
