//! The app's side of the worker: starts it, numbers requests, routes replies to handlers.

use emstudio_protocol::{FromWorker, RequestId, ToWorker, PROTOCOL_VERSION};
use emstudio_webmsg::{post, receive, Target};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{MessageEvent, Worker, WorkerOptions, WorkerType};

type Handler = Box<dyn FnMut(FromWorker, Vec<JsValue>)>;
type EventHandler = Box<dyn Fn(FromWorker)>;

struct Client {
    worker: Worker,
    next: Cell<u32>,
    handlers: RefCell<HashMap<RequestId, Handler>>,
}

thread_local! {
    static CLIENT: RefCell<Option<Rc<Client>>> = const { RefCell::new(None) };
    static EVENTS: RefCell<Option<EventHandler>> = const { RefCell::new(None) };
    static BOARD: RefCell<Option<js_sys::Int32Array>> = const { RefCell::new(None) };
}

/// How the worker uses the machine: its helper workers and whether a running kernel can be
/// cancelled at once (the page is cross-origin isolated, so the cancel board is shared).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parallel {
    /// Helper workers for decoding and filtering (0: the data worker alone).
    pub helpers: u32,
    /// `crossOriginIsolated`: SharedArrayBuffer exists, cancel reaches inside kernels.
    pub isolated: bool,
}

/// What this page asks for: `?workers=N` (0–16) in the page URL, else one helper per core.
pub fn parallel() -> Parallel {
    let window = web_sys::window();
    let from_url = window
        .as_ref()
        .and_then(|w| w.location().search().ok())
        .and_then(|q| web_sys::UrlSearchParams::new_with_str(&q).ok())
        .and_then(|p| p.get("workers"))
        .and_then(|n| n.parse::<u32>().ok())
        .map(|n| n.min(16));
    let cores = window
        .as_ref()
        .map(|w| w.navigator().hardware_concurrency() as usize)
        .unwrap_or(1);
    let isolated = js_sys::Reflect::get(&js_sys::global(), &"crossOriginIsolated".into())
        .ok()
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    Parallel {
        helpers: from_url.unwrap_or(emstudio_protocol::pool::default_helpers(cores) as u32),
        isolated,
    }
}

/// Tells the worker its helpers and, when the page is isolated, shares the cancel board.
fn configure() {
    let p = parallel();
    let board = if p.isolated {
        let sab = js_sys::SharedArrayBuffer::new(emstudio_protocol::CANCEL_SLOTS * 4);
        BOARD.with(|b| *b.borrow_mut() = Some(js_sys::Int32Array::new(&sab)));
        Some(JsValue::from(sab))
    } else {
        None
    };
    let msg = ToWorker::Configure {
        helpers: p.helpers,
        shared_cancel: board.is_some(),
    };
    with_client(|c| {
        let attachments: Vec<JsValue> = board.into_iter().collect();
        let _ = post(Target::Worker(&c.worker), &msg, &attachments);
    });
}

/// Cancels a request: marks it on the shared board (seen inside a running kernel) and sends
/// `Cancel` (seen between steps).
pub fn cancel(request: RequestId) {
    BOARD.with(|b| {
        if let Some(board) = b.borrow().as_ref() {
            let (slot, value) = emstudio_protocol::cancel_slot(request);
            let _ = js_sys::Atomics::store(board, slot as u32, value);
        }
    });
    notify(&ToWorker::Cancel { request });
}

/// Handles the worker's messages that answer no request (`Autosaved`).
pub fn on_event(handler: impl Fn(FromWorker) + 'static) {
    EVENTS.with(|e| *e.borrow_mut() = Some(Box::new(handler)));
}

/// Starts the worker. `on_ready` runs once it listens; `on_error` gets fatal problems.
pub fn start(
    on_ready: impl Fn() + 'static,
    on_error: impl Fn(String) + 'static,
) -> Result<(), String> {
    let (worker, early) = match take_early_worker() {
        Some(started) => started,
        None => {
            let options = WorkerOptions::new();
            options.set_type(WorkerType::Module);
            let worker = Worker::new_with_options("./worker.js", &options).map_err(|e| {
                format!("could not start the worker: {}", super::fsjs::js_error(&e))
            })?;
            (worker, Vec::new())
        }
    };
    let on_error = Rc::new(on_error);
    let client = Rc::new(Client {
        worker,
        next: Cell::new(0),
        handlers: RefCell::new(HashMap::new()),
    });
    let err = on_error.clone();
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
        let fatal = js_sys::Reflect::get(&event.data(), &"fatal".into())
            .ok()
            .and_then(|f| f.as_string());
        if let Some(reason) = fatal {
            return err(format!("the worker could not load its module: {reason}"));
        }
        let env = match receive::<FromWorker>(&event) {
            Ok(env) => env,
            Err(e) => return err(format!("worker sent a malformed message: {e}")),
        };
        if let FromWorker::Ready { version } = env.msg {
            if version == PROTOCOL_VERSION {
                configure();
                on_ready();
            } else {
                err(format!(
                    "worker speaks protocol {version}, the app {PROTOCOL_VERSION}: reload the page"
                ));
            }
            return;
        }
        let Some(id) = env.msg.request() else {
            EVENTS.with(|e| {
                if let Some(handler) = e.borrow().as_ref() {
                    handler(env.msg);
                }
            });
            return;
        };
        let terminal = env.msg.is_terminal();
        let handler = with_client(|c| c.handlers.borrow_mut().remove(&id)).flatten();
        if let Some(mut h) = handler {
            h(env.msg, env.attachments);
            if !terminal {
                with_client(|c| c.handlers.borrow_mut().insert(id, h));
            }
        }
    });
    client
        .worker
        .set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    // An `ErrorEvent` when the worker threw; a plain `Event` when its script could not load.
    let on_fail = Closure::<dyn FnMut(web_sys::Event)>::new(move |e: web_sys::Event| {
        let reason = e
            .dyn_ref::<web_sys::ErrorEvent>()
            .map(|e| e.message())
            .unwrap_or_else(|| "its script could not be loaded".into());
        on_error(format!("the worker stopped: {reason}"));
    });
    client
        .worker
        .set_onerror(Some(on_fail.as_ref().unchecked_ref()));
    CLIENT.with(|c| *c.borrow_mut() = Some(client));
    // What the worker said before the app listened, in order (its `Ready` among it).
    for event in early {
        let is_error = event
            .dyn_ref::<web_sys::Event>()
            .is_some_and(|e| e.type_() == "error");
        let handler: &js_sys::Function = if is_error {
            on_fail.as_ref().unchecked_ref()
        } else {
            on_message.as_ref().unchecked_ref()
        };
        let _ = handler.call1(&JsValue::NULL, &event);
    }
    on_message.forget();
    on_fail.forget();
    Ok(())
}

/// The data worker `index.html` started while the app's module downloaded
/// (`window.emstudioEarlyWorker`: the worker and the events it sent before the app listened),
/// taken over once.
fn take_early_worker() -> Option<(Worker, Vec<JsValue>)> {
    let window: JsValue = web_sys::window()?.into();
    let key = JsValue::from_str("emstudioEarlyWorker");
    let started = js_sys::Reflect::get(&window, &key).ok()?;
    let _ = js_sys::Reflect::delete_property(window.unchecked_ref::<js_sys::Object>(), &key);
    let worker = js_sys::Reflect::get(&started, &"worker".into())
        .ok()?
        .dyn_into::<Worker>()
        .ok()?;
    let early = js_sys::Reflect::get(&started, &"early".into())
        .ok()
        .and_then(|e| e.dyn_into::<js_sys::Array>().ok())
        .map(|a| a.to_vec())
        .unwrap_or_default();
    Some((worker, early))
}

fn with_client<R>(f: impl FnOnce(&Client) -> R) -> Option<R> {
    let client = CLIENT.with(|c| c.borrow().clone());
    client.as_deref().map(f)
}

/// Sends a request built from a fresh id; `handler` sees every reply until the terminal one.
pub fn request(
    make: impl FnOnce(RequestId) -> ToWorker,
    attachments: &[JsValue],
    handler: impl FnMut(FromWorker, Vec<JsValue>) + 'static,
) -> Result<RequestId, String> {
    with_client(|c| {
        let id = RequestId(c.next.get() + 1);
        c.next.set(id.0);
        c.handlers.borrow_mut().insert(id, Box::new(handler));
        post(Target::Worker(&c.worker), &make(id), attachments).map_err(|e| {
            c.handlers.borrow_mut().remove(&id);
            super::fsjs::js_error(&e)
        })?;
        Ok(id)
    })
    .unwrap_or_else(|| Err("the worker is not running".into()))
}

/// Sends a message that has no reply (close, cancel).
pub fn notify(msg: &ToWorker) {
    with_client(|c| {
        let _ = post(Target::Worker(&c.worker), msg, &[]);
    });
}
