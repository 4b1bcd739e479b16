// Browser benchmarks of the foundation: open times, slice-change latency and pan frame times
// on a 1024×1024 stack, in Debian's headless Chromium. Run by `cargo xtask bench`, which
// starts the companion with ../shared/data and a generated 1024² stack (EMSTUDIO_BENCH_SET),
// and writes the Markdown printed between the markers into BENCHMARKS.md.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { launch, openApp, waitShown, waitIdle, OUT, URL_ } from "./lib.mjs";

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const pct = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))];

async function timeOpen(context, id, layers, runs = 3) {
  const times = [];
  for (let i = 0; i < runs; i++) {
    const page = await openApp(context);
    const t0 = Date.now();
    await page.getByTestId(`dataset-${id}`).click();
    await page.waitForFunction((n) => document.querySelectorAll("[data-testid^='layer-'] .layer-name").length === n, layers, { timeout: 300000 });
    await waitIdle(page, 300000);
    await waitShown(page, 0, 300000);
    times.push(Date.now() - t0);
    await page.close();
  }
  return median(times);
}

// Reference: the same files fetched and decoded by the browser's own image decoder
// (createImageBitmap, all in parallel), as a plain JavaScript viewer would load them.
async function timeNativeDecode(context, id) {
  const page = await openApp(context);
  const ms = await page.evaluate(async (id) => {
    const list = await (await fetch("api/datasets")).json();
    const d = list.find((x) => x.id === id);
    const urls = d.layers.flatMap((l) => l.files.map((f) => `datasets/${d.id}/${l.path ? l.path + "/" : ""}${f}`));
    const t0 = performance.now();
    const bitmaps = await Promise.all(urls.map(async (u) => createImageBitmap(await (await fetch(u, { cache: "no-store" })).blob())));
    const t = performance.now() - t0;
    bitmaps.forEach((b) => b.close());
    return t;
  }, id);
  await page.close();
  return ms;
}

async function sliceAndPan(context, id, layers) {
  const page = await openApp(context);
  await page.getByTestId(`dataset-${id}`).click();
  await page.waitForFunction((n) => document.querySelectorAll("[data-testid^='layer-'] .layer-name").length === n, layers, { timeout: 300000 });
  await waitIdle(page, 300000);
  await waitShown(page, 0, 300000);
  const result = await page.evaluate(async () => {
    const canvas = document.querySelector("[data-testid=viewer]");
    const shown = (z) => new Promise((resolve) => {
      if (canvas.getAttribute("data-z-shown") === String(z)) return resolve();
      const obs = new MutationObserver(() => {
        if (canvas.getAttribute("data-z-shown") === String(z)) { obs.disconnect(); resolve(); }
      });
      obs.observe(canvas, { attributes: true });
    });
    const step = async (z) => {
      const t0 = performance.now();
      window.dispatchEvent(new KeyboardEvent("keydown", { key: "w", bubbles: true }));
      await shown(z);
      return performance.now() - t0;
    };
    // Back to back: the next key as soon as the slice is on screen (no time to prefetch).
    const slice = [];
    for (let z = 1; z < 15; z++) slice.push(await step(z));
    // At a reading pace: 150 ms between keys (neighbours are prefetched meanwhile).
    const paced = [];
    for (let z = 15; z < 29; z++) {
      await new Promise((r) => setTimeout(r, 150));
      paced.push(await step(z));
    }
    // Pan: one pointer move per animation frame for 180 frames.
    const r = canvas.getBoundingClientRect();
    const opts = (x, y) => ({ clientX: x, clientY: y, pointerId: 1, bubbles: true, buttons: 1 });
    let x = r.left + r.width / 2, y = r.top + r.height / 2;
    canvas.dispatchEvent(new PointerEvent("pointerdown", opts(x, y)));
    const frames = [], draws = [];
    let last = await new Promise(requestAnimationFrame);
    for (let i = 0; i < 180; i++) {
      x += (i % 60 < 30 ? 3 : -3); y += 1;
      canvas.dispatchEvent(new PointerEvent("pointermove", opts(x, y)));
      const now = await new Promise(requestAnimationFrame);
      frames.push(now - last);
      last = now;
      draws.push(parseFloat(canvas.getAttribute("data-draw-ms") || "0"));
    }
    canvas.dispatchEvent(new PointerEvent("pointerup", opts(x, y)));
    return { slice, paced, frames, draws, width: canvas.width, height: canvas.height };
  });
  await page.screenshot({ path: path.join(OUT, "bench-1024.png") });
  await page.close();
  return result;
}

// Painting on a new label layer of a 1024×1024 stack: stroke-to-screen latency (pointer event
// to the stroke drawn, one move per animation frame) and release → edited slice on screen;
// then merge, 3D fill and their undo on flyem-medulla-fib (worker time from the Edit panel).
async function editing(context, id) {
  const page = await openApp(context);
  await page.getByTestId(`dataset-${id}`).click();
  await page.waitForFunction(() => document.querySelectorAll("[data-testid^='layer-'] .layer-name").length === 2, null, { timeout: 300000 });
  await waitIdle(page, 300000);
  await waitShown(page, 0, 300000);
  await page.getByTestId("tab-edit").click();
  await page.getByTestId("edit-new-layer").click();
  await page.waitForFunction(() => document.querySelectorAll("[data-testid^='layer-'] .layer-name").length === 3);
  await waitIdle(page);
  await waitShown(page, 0);
  const result = await page.evaluate(async () => {
    const canvas = document.querySelector("[data-testid=viewer]");
    const panel = document.querySelector("[data-testid=edit-panel]");
    const r = canvas.getBoundingClientRect();
    const opts = (x, y) => ({ clientX: x, clientY: y, pointerId: 1, bubbles: true, buttons: 1, button: 0, pressure: 0.5 });
    const strokes = [], rounds = [];
    for (let s = 0; s < 5; s++) {
      let x = r.left + r.width * 0.2, y = r.top + r.height * (0.2 + 0.12 * s);
      canvas.dispatchEvent(new PointerEvent("pointerdown", opts(x, y)));
      await new Promise(requestAnimationFrame);
      for (let i = 0; i < 60; i++) {
        x += 6; y += (i % 20 < 10 ? 2 : -2);
        canvas.dispatchEvent(new PointerEvent("pointermove", opts(x, y)));
        await new Promise(requestAnimationFrame);
        strokes.push(parseFloat(canvas.getAttribute("data-stroke-ms")));
      }
      const before = Number(panel.dataset.replies);
      const t0 = performance.now();
      canvas.dispatchEvent(new PointerEvent("pointerup", opts(x, y)));
      await new Promise((resolve) => {
        const check = () => (Number(panel.dataset.replies) > before && canvas.getAttribute("data-z-shown") === "0" ? resolve() : requestAnimationFrame(check));
        check();
      });
      rounds.push(performance.now() - t0);
    }
    return { strokes, rounds };
  });
  await page.close();
  return result;
}

// Worker time of one edit sent by `action`, from the Edit panel's "· N ms".
async function editMs(page, action) {
  const before = Number(await page.getByTestId("edit-panel").getAttribute("data-replies"));
  await action();
  await page.waitForFunction((n) => Number(document.querySelector("[data-testid=edit-panel]").dataset.replies) > n, before, { timeout: 300000 });
  const text = await page.getByTestId("edit-result").textContent();
  const [, voxels, ms] = text.match(/· (\d+) voxels · (\d+) ms/).map(Number);
  return { voxels, ms, text };
}

async function proofreading(context) {
  const page = await openApp(context);
  await page.getByTestId("dataset-flyem-medulla-fib").click();
  await page.waitForFunction(() => document.querySelectorAll("[data-testid^='layer-'] .layer-name").length === 2, null, { timeout: 300000 });
  await waitIdle(page, 300000);
  await waitShown(page, 0, 300000);
  await page.getByTestId("tab-edit").click();
  const at = async (fx, fy) => {
    const r = await page.getByTestId("viewer").boundingBox();
    const [scale, tx, ty] = (await page.getByTestId("viewer").getAttribute("data-view")).split(" ").map(Number);
    return { x: r.x + tx + fx * 250 * scale, y: r.y + ty + fy * 250 * scale };
  };
  const click = async (fx, fy, shift = false) => {
    const p = await at(fx, fy);
    if (shift) await page.keyboard.down("Shift");
    await page.mouse.click(p.x, p.y);
    if (shift) await page.keyboard.up("Shift");
  };
  // The first edit of a layer converts it to 32-bit IDs; do that first (not timed).
  await editMs(page, () => page.keyboard.press("n")).catch(() => {});
  // Merge the bodies under two points of slice 0, then undo.
  await page.keyboard.press("c");
  await click(0.3, 0.3);
  await click(0.7, 0.7, true);
  await page.waitForFunction(() => document.querySelectorAll("[data-testid=selection] .chip").length === 2);
  const merge = await editMs(page, () => page.keyboard.press("m"));
  const mergeUndo = await editMs(page, () => page.keyboard.press("Control+z"));
  // 3D fill of the body under the centre with a new ID, then undo.
  await page.keyboard.press("g");
  await page.getByTestId("fill-3d").check();
  await page.keyboard.press("n");
  await page.waitForTimeout(300);
  await page.keyboard.press("n");
  const fill = await editMs(page, () => click(0.5, 0.5));
  const fillUndo = await editMs(page, () => page.keyboard.press("Control+z"));
  await page.close();
  return { merge, mergeUndo, fill, fillUndo };
}

// Cold start: navigation → the first slice of the FlyEM demo on screen (the demo clicked as
// soon as the worker is ready), in a fresh browser profile (nothing cached), then on the next
// visits (HTTP cache and Chromium's cache of compiled wasm). Times from navigation start.
async function coldStart() {
  const fresh = await launch();
  const visit = async () => {
    const page = await fresh.newPage();
    await page.goto(URL_);
    await page.getByTestId("worker-status").filter({ hasText: "worker ready" }).waitFor({ timeout: 60000 });
    const ready = await page.evaluate(() => performance.now());
    await page.getByTestId("dataset-flyem-medulla").click();
    await page.waitForFunction(() => document.querySelectorAll("[data-testid^='layer-'] .layer-name").length === 2, null, { timeout: 60000 });
    await waitShown(page, 0);
    const shown = await page.evaluate(() => performance.now());
    await page.close();
    return { ready, shown };
  };
  const first = await visit();
  const later = [await visit(), await visit(), await visit()];
  await fresh.close();
  return { first, ready: median(later.map((v) => v.ready)), shown: median(later.map((v) => v.shown)) };
}

const cold = await coldStart();
const context = await launch();
const openIsbi = await timeOpen(context, "isbi2012", 4);
const openFlyem = await timeOpen(context, "flyem-medulla-fib", 2);
const nativeIsbi = median([await timeNativeDecode(context, "isbi2012"), await timeNativeDecode(context, "isbi2012"), await timeNativeDecode(context, "isbi2012")]);
const nativeFlyem = median([await timeNativeDecode(context, "flyem-medulla-fib"), await timeNativeDecode(context, "flyem-medulla-fib"), await timeNativeDecode(context, "flyem-medulla-fib")]);
const set = process.env.EMSTUDIO_BENCH_SET || "tiled-1024";
const sp = await sliceAndPan(context, set, 2);
const ed = await editing(context, set);
const pr = await proofreading(context);
await context.close();

const frames = sp.frames.slice(10);
const fps = 1000 / median(frames);
const kib = (b) => (Number(b) / 1024).toFixed(0);
const machine = `${os.cpus().length} × ${os.cpus()[0]?.model?.trim() || "cpu"}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Chromium headless (SwiftShader), ${new Date().toISOString().slice(0, 10)}`;
const md = `
Machine: ${machine}

| measurement | result | target / reference | ratio |
|---|---|---|---|
| cold start: navigation → first FlyEM demo slice on screen (50×250² image + labels), first visit in a fresh profile (app ready at ${cold.first.ready.toFixed(0)} ms) | ${cold.first.shown.toFixed(0)} ms | 1000 ms (issue 20) | ${(cold.first.shown / 1000).toFixed(2)}× |
| the same on later visits (HTTP cache, compiled wasm cached), median of 3 (app ready at ${cold.ready.toFixed(0)} ms) | ${cold.shown.toFixed(0)} ms | 1000 ms | ${(cold.shown / 1000).toFixed(2)}× |
| open isbi2012 (30×512×512 image + 3 label stacks, 120 PNGs via companion), click → pixels | ${openIsbi} ms | browser-native fetch + createImageBitmap of the same files, parallel: ${nativeIsbi.toFixed(0)} ms | ${(openIsbi / nativeIsbi).toFixed(2)}× |
| open flyem-medulla-fib (250×250×250 image + 16-bit labels, 500 PNGs), click → pixels | ${openFlyem} ms | browser-native, same: ${nativeFlyem.toFixed(0)} ms | ${(openFlyem / nativeFlyem).toFixed(2)}× |
| slice change on 1024×1024 (image + labels), key → pixels, keys back to back, median / p95 | ${median(sp.slice).toFixed(1)} / ${pct(sp.slice, 0.95).toFixed(1)} ms | 16.7 ms (one 60 fps frame) | ${(median(sp.slice) / 16.7).toFixed(2)}× |
| slice change on 1024×1024, keys 150 ms apart (neighbours prefetched), median / p95 | ${median(sp.paced).toFixed(1)} / ${pct(sp.paced, 0.95).toFixed(1)} ms | 16.7 ms | ${(median(sp.paced) / 16.7).toFixed(2)}× |
| pan on 1024×1024 (image + labels): frame interval median / p95 | ${median(frames).toFixed(1)} / ${pct(frames, 0.95).toFixed(1)} ms (${fps.toFixed(0)} fps) | 16.7 ms (60 fps) | ${(median(frames) / 16.7).toFixed(2)}× |
| pan: composite time per frame, median / max | ${median(sp.draws).toFixed(2)} / ${Math.max(...sp.draws).toFixed(2)} ms | — | — |
| brush stroke on 1024×1024, pointer event → stroke on screen, median / p95 (${ed.strokes.length} moves) | ${median(ed.strokes).toFixed(1)} / ${pct(ed.strokes, 0.95).toFixed(1)} ms | 16 ms (issue 6) | ${(pct(ed.strokes, 0.95) / 16).toFixed(2)}× (p95) |
| brush stroke on 1024×1024, release → worker edit → edited slice on screen, median | ${median(ed.rounds).toFixed(0)} ms | — | — |
| merge two bodies of flyem-medulla-fib (250³) in the worker (${pr.merge.voxels} voxels) / its undo | ${pr.merge.ms} / ${pr.mergeUndo.ms} ms | 100 ms (issue 6) | ${(Math.max(pr.merge.ms, pr.mergeUndo.ms) / 100).toFixed(2)}× |
| 3D fill of a flyem-medulla-fib body with a new ID (${pr.fill.voxels} voxels) / its undo | ${pr.fill.ms} / ${pr.fillUndo.ms} ms | undo < 100 ms (issue 6) | ${(pr.fillUndo.ms / 100).toFixed(2)}× |
| wasm size: app / data worker / network worker (release; app and data worker through wasm-opt -O1; the network worker loads only for network work) | ${kib(process.env.APP_WASM_BYTES || 0)} KiB / ${kib(process.env.WORKER_WASM_BYTES || 0)} KiB / ${kib(process.env.NETS_WORKER_WASM_BYTES || 0)} KiB | — | — |
`;
fs.writeFileSync(path.join(OUT, "bench.md"), md);
console.log("<!-- bench:browser-foundation -->" + md + "<!-- /bench:browser-foundation -->");
