// Network worker bootstrap (started by the data worker on the first network request): loads
// the network worker's wasm module; it posts `Ready` when it listens. The same script starts
// the network worker's CPU helpers (worker name "emstudio-nets-helper"; see boot.js).
import init from "./emstudio-nets-worker.js";
import { boot } from "./boot.js";

boot(init, "emstudio-nets-helper");
