// Data worker bootstrap: loads the worker's wasm module; it posts `Ready` when it listens. The
// same script starts the data worker's helpers (worker name "emstudio-helper"), which get the
// data worker's compiled module in their first message instead of downloading and compiling
// it again. A module that cannot be loaded is reported to the parent as `{ fatal }` (a
// rejected promise in a worker reaches no error handler of its parent).
import init from "./emstudio_worker.js";

const fatal = (e) => self.postMessage({ fatal: String(e && e.message ? e.message : e) });
if (self.name === "emstudio-helper") {
  self.onmessage = (event) => {
    self.onmessage = null;
    init({ module_or_path: event.data.module }).catch(fatal);
  };
} else {
  init().catch(fatal);
}
