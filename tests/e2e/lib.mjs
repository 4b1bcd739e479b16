// Shared helpers for the end-to-end tests and the browser benchmarks: launching Debian's
// Chromium with WebGPU on SwiftShader, waiting for the app, reading canvas pixels.
import { chromium } from "playwright-core";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

export const URL_ = process.env.EMSTUDIO_URL || "http://127.0.0.1:8080/";
export const OUT = path.resolve(path.dirname(new URL(import.meta.url).pathname), "out");
fs.mkdirSync(OUT, { recursive: true });

export async function launch() {
  const userDataDir = tmpDir("emstudio-chromium-");
  const context = await chromium.launchPersistentContext(userDataDir, {
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

export async function openApp(context) {
  const page = await context.newPage();
  const logs = [];
  page.on("console", (m) => logs.push(`[${m.type()}] ${m.text()}`));
  page.on("pageerror", (e) => logs.push(`[pageerror] ${e.message}`));
  page.logs = logs;
  await page.goto(URL_);
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
