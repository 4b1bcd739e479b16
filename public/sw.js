// EM Studio's service worker: the app starts offline after the first visit.
//
// `cargo xtask build` fills in the three constants below (this file is a template in
// public/): VERSION (a hash of the build), SHELL (what the first visit stores: page, styles,
// app and data worker, catalogue, manifest, icons) and DEMO (the demo dataset ids).
// - The shell is served from this version's cache first; the network worker (tens of MB) and
//   the demo datasets' files and models are stored the first time they are fetched.
// - `api/` requests (the companion's live API) always go to the network.
// - Responses it serves carry the cross-origin isolation headers (see `isolated`).
// - A new build installs beside the running one and waits, so a page never mixes two
//   versions' files; the page offers to switch now (message "activate") and otherwise the
//   next visit starts the new version. The page asks "version" to tell the user it changed.
const VERSION = "__VERSION__";
const SHELL = __SHELL__;
const DEMO = __DEMO__;
const CACHE = `emstudio-${VERSION}`;
const SCOPE = new URL(self.registration.scope).pathname;

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys().then((keys) => Promise.all(keys.filter((k) => k.startsWith("emstudio-") && k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("message", (event) => {
  if (event.data === "activate") self.skipWaiting();
  if (event.data === "version") event.source?.postMessage({ version: VERSION });
});

// What is stored when first fetched: the network worker and the demo datasets (never a
// companion's own datasets, which may be gigabytes).
function storedOnFirstUse(path) {
  if (path.startsWith("emstudio-nets-worker") || path === "nets_worker.js") return true;
  const m = path.match(/^datasets\/([^/]+)\//);
  return Boolean(m && DEMO.includes(decodeURIComponent(m[1])));
}

// Cross-origin isolation for hosts that cannot send headers (GitHub Pages, a plain file
// server): the pages and worker scripts this worker serves carry COOP and COEP, so from the visit after
// the one that installed it the page is isolated and its workers can share memory (the cancel
// board that stops a running 3D step). Everything the app loads is same-origin.
// Only pages and worker scripts need the headers; data (the 30 MB network worker's wasm
// among it) passes untouched.
function isolated(request, response) {
  const needs = request.mode === "navigate" || request.destination === "worker" || request.destination === "script";
  if (!needs || !response || response.type === "opaque" || response.status === 0) return response;
  const headers = new Headers(response.headers);
  headers.set("Cross-Origin-Opener-Policy", "same-origin");
  headers.set("Cross-Origin-Embedder-Policy", "require-corp");
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin || !url.pathname.startsWith(SCOPE)) return;
  const path = url.pathname.slice(SCOPE.length);
  if (path.startsWith("api/")) return;
  // Pages (the app's one page, whatever query it carries) come from the stored index.html.
  const key = request.mode === "navigate" ? new URL("index.html", self.registration.scope).href : url.href;
  event.respondWith(
    caches.open(CACHE).then(async (cache) => {
      const hit = await cache.match(key, { ignoreSearch: request.mode === "navigate" });
      if (hit) return isolated(request, hit);
      const response = await fetch(request);
      if (response.ok && response.status === 200 && storedOnFirstUse(path)) {
        // A full disk (the browser refuses to store) must not fail the request itself: the
        // file is then only not kept offline.
        await cache.put(key, response.clone()).catch((e) => console.warn(`EM Studio could not keep ${path} offline: ${e}`));
      }
      return isolated(request, response);
    }),
  );
});
