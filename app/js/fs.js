// File access glue for EM Studio: File System Access API folders, the IndexedDB "Recent" list,
// directory <input> and drag-and-drop fallbacks, and saving files. Each function returns plain
// data to Rust: entries are {path: "image/0001.png", file: File}; paths are relative to the
// opened folder.

const DB_NAME = "emstudio";
const STORE = "recent-folders";
const MAX_RECENT = 8;

export function supportsFsAccess() {
  return typeof window.showDirectoryPicker === "function";
}

export async function pickDirectory(mode) {
  return await window.showDirectoryPicker({ mode, id: "emstudio-" + mode });
}

// Lists files of a folder and of its direct subfolders.
export async function readDirectory(handle) {
  const entries = [];
  for await (const [name, child] of handle.entries()) {
    if (child.kind === "file") {
      entries.push({ path: name, file: await child.getFile() });
    } else if (child.kind === "directory") {
      for await (const [sub, grandchild] of child.entries()) {
        if (grandchild.kind === "file") {
          entries.push({ path: name + "/" + sub, file: await grandchild.getFile() });
        }
      }
    }
  }
  return entries;
}

function openDb() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB_NAME, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: "name" });
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function tx(db, mode, fn) {
  return new Promise((resolve, reject) => {
    const t = db.transaction(STORE, mode);
    const result = fn(t.objectStore(STORE));
    t.oncomplete = () => resolve(result && "result" in result ? result.result : undefined);
    t.onerror = () => reject(t.error);
  });
}

export async function listRecent() {
  const db = await openDb();
  const all = (await tx(db, "readonly", (s) => s.getAll())) || [];
  all.sort((a, b) => b.opened - a.opened);
  return all;
}

export async function saveRecent(handle) {
  const db = await openDb();
  await tx(db, "readwrite", (s) => s.put({ name: handle.name, handle, opened: Date.now() }));
  const all = await listRecent();
  for (const old of all.slice(MAX_RECENT)) {
    await tx(db, "readwrite", (s) => s.delete(old.name));
  }
}

export async function forgetRecent(name) {
  const db = await openDb();
  await tx(db, "readwrite", (s) => s.delete(name));
}

export async function recentHandle(name) {
  const all = await listRecent();
  const hit = all.find((r) => r.name === name);
  return hit ? hit.handle : null;
}

// Asks again for read-write access to a remembered folder (needs a user gesture).
export async function ensurePermission(handle) {
  const opts = { mode: "readwrite" };
  if ((await handle.queryPermission(opts)) === "granted") return true;
  return (await handle.requestPermission(opts)) === "granted";
}

export function filesFromInput(input) {
  const entries = [];
  for (const file of input.files) {
    const rel = file.webkitRelativePath || file.name;
    const parts = rel.split("/");
    // Drop the picked folder's own name.
    const path = parts.length > 1 ? parts.slice(1).join("/") : parts[0];
    entries.push({ path, file });
  }
  return entries;
}

export function folderNameFromInput(input) {
  const first = input.files[0];
  if (!first) return "";
  const rel = first.webkitRelativePath || first.name;
  return rel.includes("/") ? rel.split("/")[0] : "files";
}

function readAllEntries(reader) {
  return new Promise((resolve, reject) => {
    const out = [];
    const next = () =>
      reader.readEntries((batch) => {
        if (batch.length === 0) resolve(out);
        else {
          out.push(...batch);
          next();
        }
      }, reject);
    next();
  });
}

function entryFile(entry) {
  return new Promise((resolve, reject) => entry.file(resolve, reject));
}

// Drag-and-drop: a dropped folder (with one level of subfolders) or loose files.
export async function filesFromDrop(dataTransfer) {
  const roots = [];
  for (const item of dataTransfer.items) {
    const e = item.webkitGetAsEntry && item.webkitGetAsEntry();
    if (e) roots.push(e);
  }
  const entries = [];
  let name = "dropped files";
  const addDir = async (dir, prefix, depth) => {
    for (const child of await readAllEntries(dir.createReader())) {
      if (child.isFile) entries.push({ path: prefix + child.name, file: await entryFile(child) });
      else if (child.isDirectory && depth > 0) await addDir(child, prefix + child.name + "/", depth - 1);
    }
  };
  if (roots.length === 0) {
    // No entry API (or synthetic drops): plain files only.
    for (const f of dataTransfer.files) entries.push({ path: f.name, file: f });
    return { name, entries };
  }
  if (roots.length === 1 && roots[0].isDirectory) {
    name = roots[0].name;
    await addDir(roots[0], "", 1);
  } else {
    for (const r of roots) {
      if (r.isFile) entries.push({ path: r.name, file: await entryFile(r) });
      else if (r.isDirectory) await addDir(r, r.name + "/", 0);
    }
  }
  return { name, entries };
}

export async function writeFiles(dirHandle, names, buffers) {
  for (let i = 0; i < names.length; i++) {
    const fh = await dirHandle.getFileHandle(names[i], { create: true });
    const w = await fh.createWritable();
    await w.write(buffers[i]);
    await w.close();
  }
}

export function downloadFile(name, buffer, mime) {
  const url = URL.createObjectURL(new Blob([buffer], { type: mime }));
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// Models live in the origin-private file system (OPFS), folder "models", one file each.
async function modelsDir() {
  const root = await navigator.storage.getDirectory();
  return await root.getDirectoryHandle("models", { create: true });
}

// A model being written goes to "<name>.partial" first and is renamed when complete, so a tab
// closed mid-save leaves no half-written model behind, only a partial file that is skipped here
// and removed once it is a minute old (a younger one may be another tab's save in progress).
const PARTIAL = ".partial";
const STALE_PARTIAL_MS = 60_000;

// [{ name, buffer }] of every stored model.
export async function opfsListModels() {
  const dir = await modelsDir();
  const out = [];
  const stale = [];
  for await (const [name, handle] of dir.entries()) {
    if (handle.kind !== "file") continue;
    const file = await handle.getFile();
    if (name.endsWith(PARTIAL)) {
      if (Date.now() - file.lastModified > STALE_PARTIAL_MS) stale.push(name);
      continue;
    }
    out.push({ name, buffer: await file.arrayBuffer() });
  }
  for (const name of stale) await dir.removeEntry(name).catch(() => {});
  out.sort((a, b) => a.name.localeCompare(b.name));
  return out;
}

export async function opfsSaveModel(name, buffer) {
  const dir = await modelsDir();
  const partial = await dir.getFileHandle(name + PARTIAL, { create: true });
  const writable = await partial.createWritable();
  await writable.write(buffer);
  await writable.close();
  // move() does not replace an existing file everywhere: clear the name first.
  await dir.removeEntry(name).catch(() => {});
  await partial.move(name);
}

export async function opfsDeleteModel(name) {
  const dir = await modelsDir();
  await dir.removeEntry(name);
}

// A subfolder of a picked folder (made when missing), for saving a layer's slices.
export async function subDirectory(dirHandle, name) {
  return await dirHandle.getDirectoryHandle(name, { create: true });
}
