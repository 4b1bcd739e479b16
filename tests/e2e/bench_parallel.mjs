// Browser benchmarks of parallel work (issue 20): opening stacks, per-slice and 3D filters,
// a distance watershed in blocks with
// 0 (the data worker alone), 1, 2 and 4 helper workers (`?workers=N`), beside the browser's own
// parallel image decoding of the same files; and how soon Cancel stops a running 3D kernel
// through the shared cancel board. Run by `cargo xtask bench browser` after bench.mjs, against
// the companion (cross-origin isolated), with ../shared/data.
import os from "node:os";
import { launch, waitShown, waitIdle, addFilter, filterTheImage, cancelA3dMedian, URL_ } from "./lib.mjs";

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const WORKERS = [0, 1, 2, 4];

async function appWith(context, workers) {
  const page = await context.newPage();
  await page.goto(`${URL_}?workers=${workers}`);
  await page.getByTestId("worker-status").filter({ hasText: "worker ready" }).waitFor({ timeout: 30000 });
  return page;
}

async function openOnce(page, id, layers) {
  const t0 = Date.now();
  await page.getByTestId(`dataset-${id}`).click();
  await page.waitForFunction((n) => document.querySelectorAll("[data-testid^='layer-'] .layer-name").length === n, layers, { timeout: 300000 });
  await waitIdle(page, 300000);
  await waitShown(page, 0, 300000);
  return Date.now() - t0;
}

// Click → every layer's pixels, median of `runs` fresh pages (helpers start with the page's
// first open, as a user's would).
async function timeOpen(context, workers, id, layers, runs = 3) {
  const times = [];
  for (let i = 0; i < runs; i++) {
    const page = await appWith(context, workers);
    times.push(await openOnce(page, id, layers));
    await page.close();
  }
  return median(times);
}

// The same files through fetch + createImageBitmap, all at once, as a plain JavaScript viewer
// would load them (same HTTP cache state as our opens: both run after a warm-up).
async function timeNativeDecode(context, id) {
  const page = await appWith(context, 0);
  const ms = await page.evaluate(async (id) => {
    const list = await (await fetch("api/datasets")).json();
    const d = list.find((x) => x.id === id);
    const urls = d.layers.flatMap((l) => l.files.map((f) => `datasets/${d.id}/${l.path ? l.path + "/" : ""}${f}`));
    const t0 = performance.now();
    const bitmaps = await Promise.all(urls.map(async (u) => createImageBitmap(await (await fetch(u)).blob())));
    const t = performance.now() - t0;
    bitmaps.forEach((b) => b.close());
    return t;
  }, id);
  await page.close();
  return ms;
}

// A filter over flyem-medulla-fib's image (250 × 250²), per slice or (`threeD`) in 3D: the
// worker's compute time.
async function timeFilter(context, workers, label, params, threeD = false) {
  const page = await appWith(context, workers);
  await openOnce(page, "flyem-medulla-fib", 2);
  await page.getByTestId("tab-filters").click();
  const times = [];
  for (let run = 0; run < 3; run++) {
    if (run === 0) {
      await addFilter(page, label);
      if (threeD) await page.getByTestId("filter-3d").check();
      for (const [id, v] of Object.entries(params)) {
        await page.getByTestId(id).fill(String(v));
        await page.getByTestId(id).dispatchEvent("change");
      }
    }
    await filterTheImage(page);
    await page.getByTestId("filters-apply").click();
    await page.waitForFunction((n) => document.querySelectorAll("[data-testid^='layer-'] .layer-name").length === n, 3 + run, { timeout: 300000 });
    await waitIdle(page, 300000);
    times.push(Number(await page.getByTestId("filters-result").getAttribute("data-compute-ms")));
  }
  await page.close();
  return median(times);
}

// The Postprocess panel over flyem-medulla-fib's image: Otsu threshold, a distance watershed
// (min distance 8, objects of 500 voxels and more) in blocks of `blockDepth` slices (`"auto"`:
// what the panel proposes, one per helper; `null`: the whole volume at once). The worker's
// compute time, median of 3.
async function timeWatershed(context, workers, blockDepth) {
  const page = await appWith(context, workers);
  await openOnce(page, "flyem-medulla-fib", 2);
  await page.getByTestId("tab-postprocess").click();
  await page.getByTestId("post-source").selectOption({ index: 0 });
  await page.getByTestId("post-otsu").check();
  await page.getByTestId("post-method").selectOption("distance");
  for (const [id, v] of [["post-min-distance", 8], ["post-min-size", 500]]) {
    await page.getByTestId(id).fill(String(v));
    await page.getByTestId(id).dispatchEvent("change");
  }
  await page.getByTestId("post-blocks").setChecked(blockDepth !== null);
  if (blockDepth !== null && blockDepth !== "auto") {
    await page.getByTestId("post-block-depth").fill(String(blockDepth));
    await page.getByTestId("post-block-depth").dispatchEvent("change");
  }
  const times = [];
  for (let run = 0; run < 3; run++) {
    await page.getByTestId("post-run").click();
    await page.waitForFunction((n) => document.querySelectorAll("[data-testid^='layer-'] .layer-name").length === n, 3 + run, { timeout: 300000 });
    await waitIdle(page, 300000);
    times.push(Number(await page.getByTestId("post-result").getAttribute("data-compute-ms")));
  }
  await page.close();
  return median(times);
}

// A 3D median (15³ window) over the 250³ image, cancelled once it has started: Cancel → job gone.
async function cancelLatency(context) {
  const page = await appWith(context, 2);
  await openOnce(page, "flyem-medulla-fib", 2);
  const isolated = await page.evaluate(() => self.crossOriginIsolated);
  const { fraction, ranMs, stopMs } = await cancelA3dMedian(page, 15);
  await page.close();
  return { isolated, stop: stopMs, rest: ranMs / Math.max(fraction, 1e-3) - ranMs };
}

const context = await launch();
// Warm-up: the HTTP cache holds every file for every run below, ours and the browser's.
await timeOpen(context, 0, "flyem-medulla-fib", 2, 1);
await timeOpen(context, 0, "isbi2012", 4, 1);
const open = {};
for (const w of WORKERS) {
  open[w] = { fib: await timeOpen(context, w, "flyem-medulla-fib", 2), isbi: await timeOpen(context, w, "isbi2012", 4) };
}
const native = {
  fib: median([await timeNativeDecode(context, "flyem-medulla-fib"), await timeNativeDecode(context, "flyem-medulla-fib"), await timeNativeDecode(context, "flyem-medulla-fib")]),
  isbi: median([await timeNativeDecode(context, "isbi2012"), await timeNativeDecode(context, "isbi2012"), await timeNativeDecode(context, "isbi2012")]),
};
const gauss = {};
const med = {};
const gauss3 = {};
const med3 = {};
for (const w of WORKERS) {
  gauss[w] = await timeFilter(context, w, "Gaussian blur", { "param-sigma-0": 2, "param-sigma-1": 2 });
  med[w] = await timeFilter(context, w, "Median", { "param-size-0": 7, "param-size-1": 7 });
  gauss3[w] = await timeFilter(context, w, "Gaussian blur", { "param-sigma-0": 2, "param-sigma-1": 2, "param-sigma-2": 2 }, true);
  med3[w] = await timeFilter(context, w, "Median", { "param-size-0": 5, "param-size-1": 5, "param-size-2": 5 }, true);
}
const blocks64 = {};
const blocksAuto = {};
for (const w of WORKERS) {
  blocks64[w] = await timeWatershed(context, w, 64);
  blocksAuto[w] = await timeWatershed(context, w, "auto");
}
const wholeWatershed = await timeWatershed(context, 0, null);
const cancel = await cancelLatency(context);
await context.close();

const machine = `${os.cpus().length} × ${os.cpus()[0]?.model?.trim() || "cpu"}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Chromium headless, ${new Date().toISOString().slice(0, 10)}`;
const row = (name, m, ref, refName) =>
  `| ${name} | ${WORKERS.map((w) => `${m[w].toFixed(0)} ms`).join(" | ")} | ${(m[0] / Math.min(...WORKERS.slice(1).map((w) => m[w]))).toFixed(2)}× | ${ref === undefined ? "—" : `${refName} ${ref.toFixed(0)} ms: ${(Math.min(...WORKERS.map((w) => m[w])) / ref).toFixed(2)}×`} |`;
const md = `
Machine: ${machine}. Helper workers set by \`?workers=N\` (0: the data worker alone); the
browser's own decoder (fetch + createImageBitmap of every file at once) is the reference; the
HTTP cache is warm for both.

| measurement | 0 helpers | 1 | 2 | 4 | speed-up (0 → best) | reference: ours (best) / theirs |
|---|---|---|---|---|---|---|
${row("open flyem-medulla-fib (250×250² image + 16-bit labels, 500 PNGs), click → pixels", Object.fromEntries(WORKERS.map((w) => [w, open[w].fib])), native.fib, "browser decode")}
${row("open isbi2012 (30×512² image + 3 label stacks, 120 PNGs), click → pixels", Object.fromEntries(WORKERS.map((w) => [w, open[w].isbi])), native.isbi, "browser decode")}
${row("Gaussian σ 2 per slice over 250×250² (worker compute time)", gauss)}
${row("median 7×7 per slice over 250×250² (worker compute time)", med)}
${row("Gaussian σ 2 in 3D over 250³ (slabs with 8 slices of reach on each side)", gauss3)}
${row("median 5³ in 3D over 250³ (slabs with 2 slices of reach on each side)", med3)}
${row("distance watershed of the Otsu mask of 250³ in 4 blocks of ≤ 64 slices, overlap 24 (the same labels for every column)", blocks64, wholeWatershed, "whole volume, one worker")}
${row("distance watershed in the blocks the panel proposes (one per helper, ≥ 64 slices: 250, 250, 125, 64)", blocksAuto, wholeWatershed, "whole volume, one worker")}

Cancel of a running 3D median (15³ window over 250³; with helpers its slabs run in them, each stopped through the cancel board) ${cancel.isolated ? "with the page cross-origin isolated (shared cancel board)" : "WITHOUT isolation"}: stopped **${cancel.stop} ms** after the click; the rest of the kernel would have taken about ${(cancel.rest / 1000).toFixed(1)} s.
`;
console.log("<!-- bench:browser-parallel -->" + md + "<!-- /bench:browser-parallel -->");
