//! The data worker's pool of helper workers (browser side): started on first use, sized by the
//! app's `Configure`, and the shared cancel board the app writes into.
//!
//! Helpers are more instances of this module ([`crate::web_helper`]); each answers jobs
//! ([`ToHelper`]) one reply per job. [`Pool::submit`] gives a promise per job that resolves to
//! the helper's reply; callers keep a window of jobs in flight and await them in order, so
//! results enter the stack in order while every helper stays busy. A helper that cannot start
//! (its module fails to load, or no `Ready` within [`START_TIMEOUT_MS`]) turns the pool off:
//! the work then runs in the data worker as before, with a note in the console.

use emstudio_protocol::pool::{FromHelper, ToHelper, HELPER_NAME};
use emstudio_protocol::{cancel_slot, RequestId, PROTOCOL_VERSION};
use emstudio_webmsg::glue::{js_error, sleep_ms};
use emstudio_webmsg::{post, receive, Envelope, Target};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{MessageEvent, Worker, WorkerOptions, WorkerType};

/// The script that starts a worker of this module.
const SCRIPT: &str = "./worker.js";
/// How long helpers may take to start before the pool is given up.
const START_TIMEOUT_MS: i32 = 20_000;

/// The pool's state.
enum State {
    /// Not started yet (or configured to 0 helpers).
    Idle,
    /// Started; ready once every helper said so.
    Running(Rc<Pool>),
    /// Could not start: work stays in the data worker.
    Broken,
}

thread_local! {
    static WANTED: Cell<usize> = const { Cell::new(0) };
    static STATE: RefCell<State> = const { RefCell::new(State::Idle) };
    static BOARD: RefCell<Option<js_sys::Int32Array>> = const { RefCell::new(None) };
}

/// Applies the app's `Configure`: the number of helpers (0: none) and the cancel board.
pub(crate) fn configure(helpers: u32, board: Option<JsValue>) {
    WANTED.with(|w| w.set(helpers.min(16) as usize));
    let board = board.and_then(|b| {
        b.dyn_into::<js_sys::SharedArrayBuffer>()
            .ok()
            .map(|sab| js_sys::Int32Array::new(&sab))
    });
    BOARD.with(|b| *b.borrow_mut() = board);
}

/// Whether the app marked `request` cancelled on the shared board (read while a kernel runs).
pub(crate) fn cancelled_on_board(request: RequestId) -> bool {
    BOARD.with(|b| {
        b.borrow().as_ref().is_some_and(|board| {
            let (slot, value) = cancel_slot(request);
            js_sys::Atomics::load(board, slot as u32).is_ok_and(|v| v == value)
        })
    })
}

/// The running pool, starting it on first use; `None` when configured without helpers or
/// when they could not start.
pub(crate) async fn pool() -> Option<Rc<Pool>> {
    let wanted = WANTED.with(Cell::get);
    let existing = STATE.with(|s| match &*s.borrow() {
        State::Running(p) => Some(Some(p.clone())),
        State::Broken => Some(None),
        State::Idle => None,
    });
    let pool = match existing {
        // Started by a request beside this one (the layers of a dataset open together): wait
        // for it too.
        Some(Some(p)) => p,
        Some(None) => return None,
        None if wanted == 0 => return None,
        None => match Pool::start(wanted) {
            Ok(p) => {
                let p = Rc::new(p);
                STATE.with(|s| *s.borrow_mut() = State::Running(p.clone()));
                p
            }
            Err(e) => return give_up(&e),
        },
    };
    let mut waited = 0;
    while !pool.ready.get() {
        let failure = pool.failure.borrow().clone();
        if let Some(e) = failure {
            return give_up(&e);
        }
        if waited >= START_TIMEOUT_MS {
            return give_up("the helper workers did not start in time");
        }
        sleep_ms(10).await;
        waited += 10;
        if STATE.with(|s| matches!(&*s.borrow(), State::Broken)) {
            return None;
        }
    }
    Some(pool)
}

fn give_up(reason: &str) -> Option<Rc<Pool>> {
    web_sys::console::warn_1(
        &format!("emstudio worker: working without helper workers: {reason}").into(),
    );
    STATE.with(|s| {
        if let State::Running(p) = &*s.borrow() {
            p.stop();
        }
        *s.borrow_mut() = State::Broken;
    });
    None
}

/// A helper and the jobs it has in flight.
struct Helper {
    worker: Worker,
    in_flight: Cell<usize>,
    ready: Cell<bool>,
}

type Settle = (js_sys::Function, js_sys::Function, usize);

/// Helper workers and the jobs waiting for their replies.
pub(crate) struct Pool {
    helpers: Vec<Helper>,
    next_job: Cell<u32>,
    /// Job → (resolve, reject, helper index).
    waiting: RefCell<HashMap<u32, Settle>>,
    ready: Cell<bool>,
    failure: RefCell<Option<String>>,
}

impl Pool {
    fn start(size: usize) -> Result<Pool, String> {
        let mut helpers = Vec::with_capacity(size);
        for _ in 0..size {
            let options = WorkerOptions::new();
            options.set_type(WorkerType::Module);
            options.set_name(HELPER_NAME);
            let worker = Worker::new_with_options(SCRIPT, &options)
                .map_err(|e| format!("could not start a helper worker: {}", js_error(&e)))?;
            // The bootstrap (`worker.js`) instantiates this compiled module: nothing is
            // downloaded or compiled again.
            let first = js_sys::Object::new();
            js_sys::Reflect::set(&first, &"module".into(), &wasm_bindgen::module())
                .and_then(|_| worker.post_message(&first))
                .map_err(|e| format!("could not start a helper worker: {}", js_error(&e)))?;
            helpers.push(Helper {
                worker,
                in_flight: Cell::new(0),
                ready: Cell::new(false),
            });
        }
        let pool = Pool {
            helpers,
            next_job: Cell::new(0),
            waiting: RefCell::new(HashMap::new()),
            ready: Cell::new(false),
            failure: RefCell::new(None),
        };
        for (index, helper) in pool.helpers.iter().enumerate() {
            let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
                with_pool(|p| p.on_message(index, &event));
            });
            helper
                .worker
                .set_onmessage(Some(on_message.as_ref().unchecked_ref()));
            on_message.forget();
            let on_error = Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
                if let Some(e) = event.dyn_ref::<web_sys::Event>() {
                    e.prevent_default();
                }
                let reason = event
                    .dyn_ref::<web_sys::ErrorEvent>()
                    .map(|e| e.message())
                    .unwrap_or_else(|| "it stopped".into());
                with_pool(|p| p.lost(index, &reason));
            });
            helper
                .worker
                .set_onerror(Some(on_error.as_ref().unchecked_ref()));
            on_error.forget();
        }
        Ok(pool)
    }

    /// Helpers in the pool.
    pub(crate) fn size(&self) -> usize {
        self.helpers.len()
    }

    /// Sends a job to the least busy helper; the promise resolves to its reply's
    /// `MessageEvent` (read it with [`reply`]) or rejects with why the helper was lost.
    pub(crate) fn submit(
        &self,
        make: impl FnOnce(u32) -> ToHelper,
        attachments: &[JsValue],
    ) -> js_sys::Promise {
        let job = self.next_job.get().wrapping_add(1);
        self.next_job.set(job);
        let index = (0..self.helpers.len())
            .min_by_key(|&i| self.helpers[i].in_flight.get())
            .unwrap_or(0);
        let helper = &self.helpers[index];
        let msg = make(job);
        let mut settle = None;
        let promise = js_sys::Promise::new(&mut |resolve, reject| settle = Some((resolve, reject)));
        let Some((resolve, reject)) = settle else {
            return js_sys::Promise::reject(&"internal error: no promise".into());
        };
        if let Err(e) = post(Target::Worker(&helper.worker), &msg, attachments) {
            let _ = reject.call1(&JsValue::NULL, &e);
            return promise;
        }
        helper.in_flight.set(helper.in_flight.get() + 1);
        self.waiting
            .borrow_mut()
            .insert(job, (resolve, reject, index));
        promise
    }

    fn on_message(&self, index: usize, event: &MessageEvent) {
        let fatal = js_sys::Reflect::get(&event.data(), &"fatal".into())
            .ok()
            .and_then(|f| f.as_string());
        if let Some(reason) = fatal {
            return self.lost(index, &format!("its module could not be loaded ({reason})"));
        }
        match receive::<FromHelper>(event) {
            Ok(Envelope {
                msg: FromHelper::Ready { version },
                ..
            }) => {
                if version != PROTOCOL_VERSION {
                    return self.lost(index, "it is a different build: reload the page");
                }
                self.helpers[index].ready.set(true);
                self.ready.set(self.helpers.iter().all(|h| h.ready.get()));
            }
            Ok(env) => {
                let Some(job) = env.msg.job() else { return };
                let settle = self.waiting.borrow_mut().remove(&job);
                if let Some((resolve, _, i)) = settle {
                    let h = &self.helpers[i];
                    h.in_flight.set(h.in_flight.get().saturating_sub(1));
                    let _ = resolve.call1(&JsValue::NULL, event);
                }
            }
            Err(e) => self.lost(index, &format!("it sent a malformed message ({e})")),
        }
    }

    /// A helper stopped: every job in flight fails with the reason and the pool is not used
    /// again (the next request works in the data worker).
    fn lost(&self, index: usize, reason: &str) {
        let message = format!("helper worker {} stopped: {reason}", index + 1);
        *self.failure.borrow_mut() = Some(message.clone());
        let failed: Vec<Settle> = self.waiting.borrow_mut().drain().map(|(_, s)| s).collect();
        for (_, reject, _) in failed {
            let _ = reject.call1(&JsValue::NULL, &JsValue::from_str(&message));
        }
        if self.ready.get() {
            STATE.with(|s| *s.borrow_mut() = State::Broken);
            self.stop();
        }
    }

    fn stop(&self) {
        for h in &self.helpers {
            h.worker.terminate();
        }
        self.ready.set(false);
    }
}

fn with_pool(f: impl FnOnce(&Pool)) {
    let pool = STATE.with(|s| match &*s.borrow() {
        State::Running(p) => Some(p.clone()),
        _ => None,
    });
    if let Some(p) = pool {
        f(&p);
    }
}

/// Awaits a job's promise and reads the helper's reply.
pub(crate) async fn reply(promise: js_sys::Promise) -> Result<Envelope<FromHelper>, String> {
    let event = JsFuture::from(promise).await.map_err(|e| js_error(&e))?;
    let event: MessageEvent = event
        .dyn_into()
        .map_err(|_| "a helper's reply was not a message".to_string())?;
    receive::<FromHelper>(&event)
}
