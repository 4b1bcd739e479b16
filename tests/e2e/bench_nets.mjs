// Browser benchmark of the CNNs, run by `cargo xtask bench nets-browser`: in one headless
// Chromium, train a U-Net (depth 4, width 8) on the AC3 demo slice through the Train panel
// (no augmentation, no live preview), run it over the slice through the Infer panel, and run
// the same architecture exported to ONNX from PyTorch (ORT_MODEL) with ONNX Runtime Web
// (ORT_DIST: its dist/ folder) on the WASM and WebGPU execution providers. Prints one JSON line;
// the trained model file is saved to MODEL_OUT for the native comparison. Then the same on
// our WebGPU path (inference with the same model, a short training run).
import fs from "node:fs";
import path from "node:path";
import { launch, openApp, waitIdle, waitShown } from "./lib.mjs";

const STEPS = Number(process.env.BENCH_STEPS || 25);
const context = await launch();
const page = await openApp(context);
await page.getByTestId("dataset-uniem-ac3-mito").click();
await page.waitForFunction(() => document.querySelectorAll("[data-testid^='layer-'] .layer-name").length === 2);
await waitIdle(page);
await waitShown(page, 0);

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

await page.getByTestId("tab-infer").click();
await page.getByTestId("infer-then-label").uncheck();
await page.getByTestId("infer-run").click();
await page.waitForFunction(() => document.querySelector("[data-testid=infer-result]")?.getAttribute("data-compute-ms"), null, { timeout: 600000 });
const inferMs = Number(await page.getByTestId("infer-result").getAttribute("data-compute-ms"));
// The worker sizes its tiles to the device ("· 9 tiles of 480²"): ONNX Runtime Web and the
// native run get the same tile, so all three do the same work per network pixel.
async function tiling() {
  const text = await page.getByTestId("infer-result").textContent();
  const m = text.match(/· (\d+) tiles? of (\d+)²/);
  if (!m) throw new Error(`no square tiling in the Infer panel's result: ${text}`);
  return { tiles: Number(m[1]), side: Number(m[2]) };
}
const cpuTiling = await tiling();
const [download] = await Promise.all([page.waitForEvent("download"), page.getByTestId("model-download").click()]);
await download.saveAs(process.env.MODEL_OUT || path.join("/tmp", download.suggestedFilename()));

// Ours on WebGPU (SwiftShader here: the GPU emulated on the CPU): the same model over the same
// slice, then a short training run of the same network (first steps include shader compiles).
await page.getByTestId("infer-device-choice").selectOption("gpu");
await page.getByTestId("infer-run").click();
await page.getByTestId("infer-result").filter({ hasText: "on WebGPU" }).waitFor({ timeout: 900000 });
const gpuInferMs = Number(await page.getByTestId("infer-result").getAttribute("data-compute-ms"));
const gpuTiling = await tiling();
await page.getByTestId("tab-train").click();
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

// ONNX Runtime Web on the same page origin: its files are served by request interception.
const ortDist = process.env.ORT_DIST;
const ortModel = process.env.ORT_MODEL;
const ort = {};
if (ortDist && ortModel) {
  await page.route("**/ort-bench/**", async (route) => {
    const name = decodeURIComponent(new URL(route.request().url()).pathname.split("/ort-bench/")[1]);
    const file = name === "model.onnx" ? ortModel : path.join(ortDist, name);
    const type = file.endsWith(".wasm") ? "application/wasm" : file.endsWith("js") ? "text/javascript" : "application/octet-stream";
    await route.fulfill({ body: fs.readFileSync(file), headers: { "content-type": type } });
  });
  for (const ep of ["wasm", "webgpu"]) {
    ort[ep] = await page.evaluate(async ([ep, side]) => {
      const mod = await import("./ort-bench/ort.all.min.mjs");
      const o = mod.default ?? mod;
      o.env.wasm.wasmPaths = new URL("./ort-bench/", location.href).href;
      o.env.wasm.numThreads = 1;
      try {
        const session = await o.InferenceSession.create("./ort-bench/model.onnx", { executionProviders: [ep] });
        const batch = 2; // the worker's batch (nets-worker's INFER)
        const input = new o.Tensor("float32", new Float32Array(batch * side * side).map(() => Math.random()), [batch, 1, side, side]);
        await session.run({ input });
        const runs = 5;
        const t0 = performance.now();
        for (let i = 0; i < runs; i++) await session.run({ input });
        const ms = (performance.now() - t0) / runs;
        return { mpx_per_s: (batch * side * side) / 1e6 / (ms / 1000) };
      } catch (e) {
        return { error: String(e) };
      }
    }, [ep, (ep === "wasm" ? cpuTiling : gpuTiling).side]);
  }
}
await context.close();
console.log(JSON.stringify({ steps: STEPS, train_steps_per_s: stepsPerS, train_summary: summary, infer_ms: inferMs,
  tiling: cpuTiling,
  webgpu: { infer_ms: gpuInferMs, tiling: gpuTiling, train_steps_per_s: gpuStepsPerS, train_summary: gpuSummary }, ort }));
