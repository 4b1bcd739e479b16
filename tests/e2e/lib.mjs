// Shared helpers for the end-to-end tests and the browser benchmarks: launching Debian's
// Chromium with WebGPU on SwiftShader, waiting for the app, reading canvas pixels.
import { chromium } from "playwright-core";
import fs from "node:fs";
import zlib from "node:zlib";
import os from "node:os";
import path from "node:path";

export const URL_ = process.env.EMSTUDIO_URL || "http://127.0.0.1:8080/";
export const OUT = path.resolve(path.dirname(new URL(import.meta.url).pathname), "out");
fs.mkdirSync(OUT, { recursive: true });

// Service workers are blocked unless asked for: with one, requests of the page and its workers
// are answered from its cache, out of reach of `context.route` and of the tests that count
// what loads. The offline tests start their own context with `{ serviceWorkers: "allow" }`.
export async function launch(options = {}) {
  const userDataDir = tmpDir("emstudio-chromium-");
  const context = await chromium.launchPersistentContext(userDataDir, {
    serviceWorkers: "block",
    ...options,
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    acceptDownloads: true,
    viewport: { width: 1280, height: 860 },
    args: [
      "--headless=new", "--no-sandbox", "--disable-gpu-sandbox", "--enable-unsafe-webgpu",
      "--enable-features=Vulkan", "--use-vulkan=swiftshader", "--use-webgpu-adapter=swiftshader",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--no-first-run", "--disable-quic",
    ],
  });
  return context;
}

export async function openApp(context, query = "") {
  const page = await context.newPage();
  const logs = [];
  page.on("console", (m) => logs.push(`[${m.type()}] ${m.text()}`));
  page.on("pageerror", (e) => logs.push(`[pageerror] ${e.message}`));
  page.logs = logs;
  await page.goto(URL_ + query);
  await page.getByTestId("worker-status").filter({ hasText: "worker ready" }).waitFor({ timeout: 30000 });
  return page;
}

export async function waitShown(page, z, timeout = 60000) {
  await page.waitForFunction(
    (z) => document.querySelector("[data-testid=viewer]")?.getAttribute("data-z-shown") === String(z),
    z,
    { timeout },
  );
}

export async function waitIdle(page, timeout = 120000) {
  await page.waitForFunction(() => document.querySelectorAll("[data-testid=progress]").length === 0, null, { timeout });
}

// Pixels of the viewer canvas: a hash and how many look like a saturated label colour.
export async function canvasStats(page) {
  return await page.evaluate(() => {
    const c = document.querySelector("[data-testid=viewer]");
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let h = 2166136261 >>> 0, colourful = 0, bright = 0;
    for (let i = 0; i < d.length; i += 4) {
      const r = d[i], g = d[i + 1], b = d[i + 2];
      h = Math.imul(h ^ r ^ (g << 8) ^ (b << 16), 16777619) >>> 0;
      if (Math.max(r, g, b) - Math.min(r, g, b) > 40) colourful++;
      if (r + g + b > 60) bright++;
    }
    return { hash: h, colourful, bright, pixels: d.length / 4 };
  });
}

export async function layerNames(page) {
  return await page.$$eval("[data-testid^='layer-'] .layer-name", (els) => els.map((e) => e.textContent));
}

// Temporary folders (browser profiles, test stacks, downloads) are removed when the process exits.
const temporary = [];
process.on("exit", () => {
  for (const d of temporary) fs.rmSync(d, { recursive: true, force: true });
});

export function tmpDir(prefix) {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  temporary.push(d);
  return d;
}

// Canvas stats once two reads 100 ms apart agree (a redraw requested by a key press or a newly
// opened stack has landed), or after 10 s.
// The canvas once it differs from `hash` (a newly added layer's slice arrives asynchronously);
// the last reading after `ms` if it never does.
export async function changedCanvas(page, hash, ms = 10000) {
  let now = await canvasStats(page);
  for (let waited = 0; now.hash === hash && waited < ms; waited += 100) {
    await page.waitForTimeout(100);
    now = await canvasStats(page);
  }
  return now;
}

export async function stableCanvas(page) {
  let last = await canvasStats(page);
  for (let i = 0; i < 100; i++) {
    await page.waitForTimeout(100);
    const now = await canvasStats(page);
    if (now.hash === last.hash) return now;
    last = now;
  }
  return last;
}

// Page coordinates of data point (x, y) on the viewer (from its `data-view` transform).
export async function toPage(page, x, y) {
  const box = await page.getByTestId("viewer").boundingBox();
  const [scale, tx, ty] = (await page.getByTestId("viewer").getAttribute("data-view")).split(" ").map(Number);
  return { x: box.x + tx + (x + 0.5) * scale, y: box.y + ty + (y + 0.5) * scale };
}

// The viewer's [r, g, b] at the centre of data pixel (x, y).
export async function dataPixel(page, x, y) {
  return await page.evaluate(([x, y]) => {
    const c = document.querySelector("[data-testid=viewer]");
    const [scale, tx, ty] = c.getAttribute("data-view").split(" ").map(Number);
    const d = c.getContext("2d").getImageData(Math.floor(tx + (x + 0.5) * scale), Math.floor(ty + (y + 0.5) * scale), 1, 1).data;
    return [d[0], d[1], d[2]];
  }, [x, y]);
}

// Drags the mouse through data points [[x, y], ...] (a stroke with the active tool).
export async function dragThrough(page, points) {
  const first = await toPage(page, ...points[0]);
  await page.mouse.move(first.x, first.y);
  await page.mouse.down();
  for (const p of points.slice(1)) {
    const q = await toPage(page, ...p);
    await page.mouse.move(q.x, q.y, { steps: 8 });
  }
  await page.mouse.up();
}

// Decodes a grayscale PNG (8- or 16-bit, not interlaced), enough for the test stacks, the
// demo slices and the app's exports: { width, height, pixels } with one number per pixel.
// Anything else throws, naming what it found.
export function decodeGrayPng(bytes) {
  const sig = [137, 80, 78, 71, 13, 10, 26, 10];
  if (!sig.every((b, i) => bytes[i] === b)) throw new Error("not a PNG");
  let at = 8, width = 0, height = 0, depth = 0, colour = -1, interlace = 0;
  const idat = [];
  while (at < bytes.length) {
    const len = bytes.readUInt32BE(at);
    const type = bytes.toString("latin1", at + 4, at + 8);
    const body = bytes.subarray(at + 8, at + 8 + len);
    if (type === "IHDR") {
      width = body.readUInt32BE(0);
      height = body.readUInt32BE(4);
      [depth, colour] = [body[8], body[9]];
      interlace = body[12];
    } else if (type === "IDAT") idat.push(body);
    else if (type === "IEND") break;
    at += 12 + len;
  }
  if (colour !== 0 || ![8, 16].includes(depth) || interlace) {
    throw new Error(`PNG of colour type ${colour}, ${depth} bits, interlace ${interlace}: only 8/16-bit gray`);
  }
  const raw = zlib.inflateSync(Buffer.concat(idat));
  const bpp = depth / 8, stride = width * bpp;
  const out = Buffer.alloc(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let i = 0; i < stride; i++) {
      const a = i >= bpp ? out[y * stride + i - bpp] : 0;
      const b = y > 0 ? out[(y - 1) * stride + i] : 0;
      const c = i >= bpp && y > 0 ? out[(y - 1) * stride + i - bpp] : 0;
      const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
      const pred = [0, a, b, (a + b) >> 1, pa <= pb && pa <= pc ? a : pb <= pc ? b : c][filter];
      if (pred === undefined) throw new Error(`PNG row ${y}: unknown filter ${filter}`);
      out[y * stride + i] = (line[i] + pred) & 255;
    }
  }
  const pixels = new Uint16Array(width * height);
  for (let i = 0; i < pixels.length; i++) pixels[i] = bpp === 1 ? out[i] : out.readUInt16BE(2 * i);
  return { width, height, pixels };
}

// IoU of `pred(i)` against the mask `truth(i)` over pixel indices `pixels`.
export function iouOver(pixels, pred, truth) {
  let inter = 0, union = 0;
  for (const i of pixels) {
    const p = pred(i), t = truth(i);
    inter += p && t ? 1 : 0;
    union += p || t ? 1 : 0;
  }
  return union ? inter / union : NaN;
}

// The best IoU a plain intensity threshold reaches on `pixels` (either polarity, every
// threshold): the baseline a trained network must clearly beat on the same pixels.
export function bestThresholdIoU(image, truth, pixels) {
  // Counts per intensity of foreground and of all pixels, then a sweep over cut points.
  const levels = 65536;
  const all = new Float64Array(levels), fg = new Float64Array(levels);
  let totalFg = 0;
  for (const i of pixels) {
    all[image[i]]++;
    if (truth(i)) { fg[image[i]]++; totalFg++; }
  }
  let best = 0, belowAll = 0, belowFg = 0;
  for (let t = 0; t < levels; t++) {
    belowAll += all[t];
    belowFg += fg[t];
    // Dark objects: value <= t; bright objects: value > t.
    const dark = belowFg / (belowAll + totalFg - belowFg);
    const bright = (totalFg - belowFg) / (pixels.length - belowAll + belowFg);
    for (const v of [dark, bright]) if (v > best) best = v;
  }
  return best;
}

// Infer panel: opens it, checks the stored model whose name contains `name` and picks the CPU.
export async function chooseModelOnCpu(page, name) {
  await page.getByTestId("tab-infer").click();
  const names = page.locator("[data-testid=model-list] .model-name");
  await names.filter({ hasText: name }).first().waitFor({ timeout: 30000 });
  const listed = (await names.allTextContents()).map((n) => n.trim());
  await page.locator("[data-testid=model-list] li input").nth(listed.findIndex((n) => n.includes(name))).check();
  await page.getByTestId("infer-device-choice").selectOption("cpu");
}

// Filters panel: adds a step by its label in the menu ("Median", "Gaussian blur").
export async function addFilter(page, label) {
  const options = await page.getByTestId("filter-add-choice").locator("option").allTextContents();
  await page.getByTestId("filter-add-choice").selectOption(String(options.indexOf(label)));
  await page.getByTestId("filter-add").click();
}

// Filters panel: picks the dataset's image layer as the source.
export async function filterTheImage(page) {
  const sources = await page.getByTestId("filters-source").locator("option").allTextContents();
  await page.getByTestId("filters-source").selectOption({ label: sources.find((t) => /(^|\/)image$/.test(t)) });
}

// Starts a 3D median (a size³ window, one synchronous kernel) over the image layer, presses
// Cancel once its progress shows and waits until the job is gone: how far it had got, how long
// it had run and how soon it stopped after Cancel (ms).
export async function cancelA3dMedian(page, size = 15) {
  await page.getByTestId("tab-filters").click();
  await addFilter(page, "Median");
  await page.getByTestId("filter-3d").check();
  for (const i of [0, 1, 2]) {
    await page.getByTestId(`param-size-${i}`).fill(String(size));
    await page.getByTestId(`param-size-${i}`).dispatchEvent("change");
  }
  await filterTheImage(page);
  const started = Date.now();
  await page.getByTestId("filters-apply").click();
  await page.waitForFunction(() => Number(document.querySelector("[data-testid=progress]")?.getAttribute("value") || 0) > 0, null, { timeout: 60000 });
  const progress = page.getByTestId("progress").first();
  const fraction = Number(await progress.getAttribute("value")) / Number(await progress.getAttribute("max"));
  const ranMs = Date.now() - started;
  const cancelAt = Date.now();
  await page.locator(".job button").first().click();
  await waitIdle(page, 300000);
  return { fraction, ranMs, stopMs: Date.now() - cancelAt };
}
