// Starts a worker's wasm module (imported by worker.js and nets_worker.js). A worker started
// under `helperName` is a helper: it gets its parent's compiled `WebAssembly.Module` in its
// first message and instantiates that, so nothing is downloaded or compiled a second time;
// any other instance loads the module itself. A module that cannot be loaded is reported to
// the parent as `{ fatal }` (a rejected promise in a worker reaches no error handler of its
// parent).
export function boot(init, helperName) {
  const fatal = (e) => self.postMessage({ fatal: String(e && e.message ? e.message : e) });
  if (self.name === helperName) {
    self.onmessage = (event) => {
      self.onmessage = null;
      init({ module_or_path: event.data.module }).catch(fatal);
    };
  } else {
    init().catch(fatal);
  }
}
