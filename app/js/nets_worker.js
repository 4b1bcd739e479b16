// Network worker bootstrap (started by the data worker on the first network request): loads
// the network worker's wasm module; it posts `Ready` when it listens. A module that cannot be
// loaded is reported to the data worker as `{ fatal }` (a rejected promise in a worker reaches
// no error handler of its parent).
import init from "./emstudio_nets_worker.js";
init().catch((e) => self.postMessage({ fatal: String(e && e.message ? e.message : e) }));
