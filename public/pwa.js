// Offline start and updates: registers the service worker (sw.js) and tells the user, in a
// note at the bottom of the page, when a new version is ready (with a button to switch now)
// and, on the first visit after a switch, that the app was updated.
// Without service workers (an insecure origin, some private modes) the app works as before.

function showNote(text, action) {
  document.querySelector("[data-testid=app-note]")?.remove();
  const note = document.createElement("div");
  note.className = "app-note";
  note.dataset.testid = "app-note";
  note.setAttribute("role", "status");
  const span = document.createElement("span");
  span.textContent = text;
  note.append(span);
  if (action) {
    const button = document.createElement("button");
    button.className = "primary";
    button.dataset.testid = "app-note-action";
    button.textContent = action.label;
    button.onclick = action.run;
    note.append(button);
  }
  const close = document.createElement("button");
  close.textContent = "×";
  close.title = "Dismiss";
  close.onclick = () => note.remove();
  note.append(close);
  document.body.append(note);
}

export function registerServiceWorker() {
  if (!("serviceWorker" in navigator) || !window.isSecureContext) return;
  const sw = navigator.serviceWorker;
  let switching = false;
  const offer = (worker) =>
    showNote("A new version of EM Studio is ready; it starts on your next visit.", {
      label: "Use it now",
      run: () => {
        switching = true;
        worker.postMessage("activate");
      },
    });
  sw.addEventListener("controllerchange", () => {
    // The first install also takes control (clients.claim): only a switch asked for reloads.
    if (switching) location.reload();
  });
  sw.addEventListener("message", (event) => {
    const version = event.data?.version;
    if (!version) return;
    const last = localStorage.getItem("emstudio-version");
    localStorage.setItem("emstudio-version", version);
    document.documentElement.dataset.swVersion = version;
    if (last && last !== version) showNote(`EM Studio was updated (version ${version.slice(0, 8)}).`);
  });
  sw.register("sw.js")
    .then((registration) => {
      if (!registration) return;
      const watch = (worker) =>
        worker?.addEventListener("statechange", () => {
          if (worker.state === "installed" && sw.controller) offer(worker);
        });
      if (registration.waiting && sw.controller) offer(registration.waiting);
      watch(registration.installing);
      registration.addEventListener("updatefound", () => watch(registration.installing));
      sw.controller?.postMessage("version");
      sw.ready.then(() => {
        document.documentElement.dataset.offlineReady = "true";
      });
    })
    .catch((e) => console.warn(`EM Studio works, but not offline: the service worker was not registered (${e})`));
}
