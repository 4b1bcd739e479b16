// Data worker bootstrap: loads the worker's wasm module; it posts `Ready` when it listens. The
// same script starts the data worker's helpers (worker name "emstudio-helper"; see boot.js).
import init from "./emstudio-worker.js";
import { boot } from "./boot.js";

boot(init, "emstudio-helper");
