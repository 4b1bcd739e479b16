// Times the worker's operations in Chromium (wasm) by clicking through the Filters,
// Postprocess and Evaluate panels on flyem-medulla-fib (250³), reading the worker's own
// compute time (data-compute-ms). Prints one JSON line per operation,
// {"op": ..., "impl": "wasm", "ms": <median of 3>}, with the names and settings of
// worker/examples/bench_ops.rs (the native side). Run by `cargo xtask bench`.
import fs from "node:fs";
import path from "node:path";
import { launch, openApp, waitShown, waitIdle, tmpDir } from "./lib.mjs";

const RUNS = 3;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const FILTERS = [
  ["gaussian_3d_s2", [{ filter: "gaussian", sigma: [2, 2, 2] }]],
  ["median_3d_3", [{ filter: "median", size: [3, 3, 3] }]],
  ["clahe_2d", [{ filter: "clahe", block_size: [127, 127] }]],
];

const report = (op, ms) => console.log(JSON.stringify({ op, impl: "wasm", ms: Number(ms.toFixed(1)) }));

// Clicks `button` and returns the compute time the run reports on `testid`.
async function run(page, button, testid) {
  await page.evaluate((id) => document.querySelector(`[data-testid=${id}]`)?.removeAttribute("data-compute-ms"), testid);
  await page.getByTestId(button).click();
  await page.waitForFunction(
    (id) => document.querySelector(`[data-testid=${id}]`)?.hasAttribute("data-compute-ms"),
    testid,
    { timeout: 600000 },
  );
  await waitIdle(page, 600000);
  return await page.getByTestId(testid).getAttribute("data-compute-ms");
}

async function closeLayer(page, suffix) {
  const row = page.locator("[data-testid^='layer-']").filter({ has: page.locator(".layer-name", { hasText: suffix }) }).last();
  await row.getByTitle("Close layer").click();
}

const context = await launch();
const page = await openApp(context);
await page.getByTestId("dataset-flyem-medulla-fib").click();
await page.waitForFunction(() => document.querySelectorAll("[data-testid^='layer-'] .layer-name").length === 2, null, { timeout: 300000 });
await waitIdle(page, 300000);
await waitShown(page, 0, 300000);

const dir = tmpDir("emstudio-bench-");
await page.getByTestId("tab-filters").click();
for (const [op, steps] of FILTERS) {
  const file = path.join(dir, `${op}.json`);
  fs.writeFileSync(file, JSON.stringify(steps));
  await page.getByTestId("filters-load").setInputFiles(file);
  const times = [];
  for (let i = 0; i < RUNS; i++) {
    times.push(Number(await run(page, "filters-apply", "filters-result")));
    await closeLayer(page, " · ");
  }
  report(op, median(times));
}

await page.getByTestId("tab-postprocess").click();
await page.getByTestId("post-source").selectOption({ index: 0 });
await page.getByTestId("post-otsu").check();
async function label(method, minSize, keep) {
  await page.getByTestId("post-method").selectOption(method);
  if (method === "distance") {
    await page.getByTestId("post-min-distance").fill("8");
    await page.getByTestId("post-min-distance").dispatchEvent("change");
  }
  await page.getByTestId("post-min-size").fill(String(minSize));
  await page.getByTestId("post-min-size").dispatchEvent("change");
  const times = [];
  for (let i = 0; i < RUNS; i++) {
    times.push(Number(await run(page, "post-run", "post-result")));
    if (!(keep && i === RUNS - 1)) await closeLayer(page, "· objects");
  }
  return median(times);
}
report("label_otsu_distance_ws", await label("distance", 500, false));
report("label_otsu_cc26", await label("components", 0, true));

await page.getByTestId("tab-evaluate").click();
await page.getByTestId("eval-gt").selectOption({ index: 0 });
await page.getByTestId("eval-pred").selectOption({ index: 1 });
const times = [];
for (let i = 0; i < RUNS; i++) times.push(Number(await run(page, "eval-run", "eval-time")));
report("evaluate_gt_vs_otsu_cc", median(times));
await context.close();
