// Web Worker bootstrap: loads the worker's wasm module; it posts `Ready` when it listens.
import init from "./emstudio_worker.js";
init();
