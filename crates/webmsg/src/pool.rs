//! A pool of helper workers that run more instances of the calling wasm module: the data
//! worker's helpers (decode, filter) and the network worker's (forward passes on the CPU)
//! both use it.
//!
//! [`Pool::start`] starts `size` module workers of a bootstrap script under a worker name and
//! sends each the caller's compiled `WebAssembly.Module` in its first message (`{ module }`),
//! so nothing is downloaded or compiled again; the script instantiates it and the module,
//! seeing its worker name, answers jobs instead of acting as the parent. Each helper says
//! `Ready` once ([`PoolReply::ready_version`]); every job ends with exactly one reply that
//! carries its job number ([`PoolReply::job`]).
//!
//! [`Pool::submit`] gives a promise per job that resolves to the helper's reply (read it with
//! [`reply`]); callers keep a window of jobs in flight and await them in order, so results are
//! used in order while every helper stays busy. A helper that cannot load, stops, or speaks
//! another protocol version is lost alone: its jobs in flight fail with the reason (and
//! [`Pool::take_lost`] says so of each, so the caller does that job itself) while the other
//! helpers' jobs go on and new jobs go to them. When the last helper is lost the pool fails
//! ([`Pool::failure`]): callers then do all the work themselves.

use crate::glue::{js_error, sleep_ms};
use crate::{post, receive, Envelope, Target};
use emstudio_protocol::nets::FromNetsHelper;
use emstudio_protocol::pool::FromHelper;
use emstudio_protocol::PROTOCOL_VERSION;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::marker::PhantomData;
use std::rc::{Rc, Weak};
use std::thread::LocalKey;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{MessageEvent, Worker, WorkerOptions, WorkerType};

/// What the pool needs to know of a helper's replies.
pub trait PoolReply: DeserializeOwned + 'static {
    /// The protocol version of a `Ready` message; `None` for every other reply.
    fn ready_version(&self) -> Option<u8>;
    /// The job a reply is about; `None` for `Ready`.
    fn job(&self) -> Option<u32>;
    /// `(done, total)` of a progress report, which does not end its job; `None` for replies
    /// that do.
    fn progress(&self) -> Option<(u64, u64)> {
        None
    }
}

impl PoolReply for FromHelper {
    fn ready_version(&self) -> Option<u8> {
        match self {
            FromHelper::Ready { version } => Some(*version),
            _ => None,
        }
    }
    fn job(&self) -> Option<u32> {
        FromHelper::job(self)
    }
    fn progress(&self) -> Option<(u64, u64)> {
        match self {
            FromHelper::Progress { done, total, .. } => Some((*done, *total)),
            _ => None,
        }
    }
}

impl PoolReply for FromNetsHelper {
    fn ready_version(&self) -> Option<u8> {
        match self {
            FromNetsHelper::Ready { version } => Some(*version),
            _ => None,
        }
    }
    fn job(&self) -> Option<u32> {
        FromNetsHelper::job(self)
    }
}

/// A helper and the jobs it has in flight.
struct Helper {
    worker: Worker,
    in_flight: Cell<usize>,
    ready: Cell<bool>,
    /// False once lost (terminated; it gets no more jobs).
    alive: Cell<bool>,
}

/// A waiting job's promise callbacks and its helper.
type Settle = (js_sys::Function, js_sys::Function, usize);

/// Helper workers and the jobs waiting for their replies.
pub struct Pool<R: PoolReply> {
    helpers: Vec<Helper>,
    next_job: Cell<u32>,
    /// Job → (resolve, reject, helper index).
    waiting: RefCell<HashMap<u32, Settle>>,
    failure: RefCell<Option<String>>,
    /// The last progress report of each running job.
    progress: RefCell<HashMap<u32, (u64, u64)>>,
    /// Jobs that failed because their helper was lost (see [`Pool::take_lost`]).
    lost_jobs: RefCell<HashSet<u32>>,
    replies: PhantomData<R>,
}

impl<R: PoolReply> Pool<R> {
    /// Starts `size` helpers: module workers of `script` named `name`, each sent this module.
    pub fn start(script: &str, name: &str, size: usize) -> Result<Rc<Self>, String> {
        let mut helpers = Vec::with_capacity(size);
        for _ in 0..size {
            let options = WorkerOptions::new();
            options.set_type(WorkerType::Module);
            options.set_name(name);
            let worker = Worker::new_with_options(script, &options)
                .map_err(|e| format!("could not start a helper worker: {}", js_error(&e)))?;
            let first = js_sys::Object::new();
            if let Err(e) = js_sys::Reflect::set(&first, &"module".into(), &wasm_bindgen::module())
                .and_then(|_| worker.post_message(&first))
            {
                worker.terminate();
                helpers.iter().for_each(|h: &Helper| h.worker.terminate());
                return Err(format!("could not start a helper worker: {}", js_error(&e)));
            }
            helpers.push(Helper {
                worker,
                in_flight: Cell::new(0),
                ready: Cell::new(false),
                alive: Cell::new(true),
            });
        }
        let pool = Rc::new(Pool {
            helpers,
            next_job: Cell::new(0),
            waiting: RefCell::new(HashMap::new()),
            failure: RefCell::new(None),
            progress: RefCell::new(HashMap::new()),
            lost_jobs: RefCell::new(HashSet::new()),
            replies: PhantomData,
        });
        for (index, helper) in pool.helpers.iter().enumerate() {
            let weak: Weak<Self> = Rc::downgrade(&pool);
            let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
                if let Some(p) = weak.upgrade() {
                    p.on_message(index, &event);
                }
            });
            helper
                .worker
                .set_onmessage(Some(on_message.as_ref().unchecked_ref()));
            on_message.forget();
            let weak: Weak<Self> = Rc::downgrade(&pool);
            let on_error = Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
                if let Some(e) = event.dyn_ref::<web_sys::Event>() {
                    e.prevent_default();
                }
                let reason = event
                    .dyn_ref::<web_sys::ErrorEvent>()
                    .map(|e| e.message())
                    .unwrap_or_else(|| "it stopped".into());
                if let Some(p) = weak.upgrade() {
                    p.lost(index, &reason);
                }
            });
            helper
                .worker
                .set_onerror(Some(on_error.as_ref().unchecked_ref()));
            on_error.forget();
        }
        Ok(pool)
    }

    /// Waits until every helper said `Ready`: an error when one failed or `timeout_ms` passed
    /// (the pool is then stopped).
    pub async fn wait_ready(&self, timeout_ms: i32) -> Result<(), String> {
        let mut waited = 0;
        while !self.ready() {
            if let Some(e) = self.failure() {
                return Err(e);
            }
            if waited >= timeout_ms {
                let reason = "the helper workers did not start in time".to_string();
                *self.failure.borrow_mut() = Some(reason.clone());
                self.stop();
                return Err(reason);
            }
            sleep_ms(10).await;
            waited += 10;
        }
        Ok(())
    }

    /// Whether every helper not lost said `Ready` (and one is left).
    pub fn ready(&self) -> bool {
        self.failure.borrow().is_none()
            && self.helpers.iter().all(|h| h.ready.get() || !h.alive.get())
    }

    /// Why the pool stopped, once its last helper was lost.
    pub fn failure(&self) -> Option<String> {
        self.failure.borrow().clone()
    }

    /// Helpers in the pool that were not lost.
    pub fn size(&self) -> usize {
        self.helpers.iter().filter(|h| h.alive.get()).count()
    }

    /// The indices (for [`Pool::submit_to`]) of the helpers not lost.
    pub fn helper_indices(&self) -> Vec<usize> {
        (0..self.helpers.len())
            .filter(|&i| self.helpers[i].alive.get())
            .collect()
    }

    /// Whether `job` failed because its helper was lost while the pool went on (asked once:
    /// the answer is forgotten). The caller does that job itself, or submits it again.
    pub fn take_lost(&self, job: u32) -> bool {
        self.lost_jobs.borrow_mut().remove(&job)
    }

    /// Sends a job to the least busy helper; the promise resolves to its reply's
    /// `MessageEvent` (read it with [`reply`]) or rejects with why the helper was lost.
    pub fn submit<M: Serialize>(
        &self,
        make: impl FnOnce(u32) -> M,
        attachments: &[JsValue],
    ) -> js_sys::Promise {
        self.submit_tracked(make, attachments).1
    }

    /// [`Pool::submit`], also giving the job number (for [`Pool::progress`]).
    pub fn submit_tracked<M: Serialize>(
        &self,
        make: impl FnOnce(u32) -> M,
        attachments: &[JsValue],
    ) -> (u32, js_sys::Promise) {
        let index = self
            .helper_indices()
            .into_iter()
            .min_by_key(|&i| self.helpers[i].in_flight.get())
            .unwrap_or(0);
        self.send(index, make, attachments)
    }

    /// Sends a job to helper `index` (e.g. to load a model into every helper).
    pub fn submit_to<M: Serialize>(
        &self,
        index: usize,
        make: impl FnOnce(u32) -> M,
        attachments: &[JsValue],
    ) -> js_sys::Promise {
        self.send(index, make, attachments).1
    }

    /// The last `(done, total)` a running job reported.
    pub fn progress(&self, job: u32) -> Option<(u64, u64)> {
        self.progress.borrow().get(&job).copied()
    }

    fn send<M: Serialize>(
        &self,
        index: usize,
        make: impl FnOnce(u32) -> M,
        attachments: &[JsValue],
    ) -> (u32, js_sys::Promise) {
        let job = self.next_job.get().wrapping_add(1);
        let Some(helper) = self.helpers.get(index) else {
            return (
                job,
                js_sys::Promise::reject(&format!("there is no helper {index}").into()),
            );
        };
        if let Some(e) = self.failure() {
            return (job, js_sys::Promise::reject(&e.into()));
        }
        if !helper.alive.get() {
            return (
                job,
                js_sys::Promise::reject(&format!("helper worker {} was lost", index + 1).into()),
            );
        }
        self.next_job.set(job);
        let msg = make(job);
        let mut settle = None;
        let promise = js_sys::Promise::new(&mut |resolve, reject| settle = Some((resolve, reject)));
        let Some((resolve, reject)) = settle else {
            return (
                job,
                js_sys::Promise::reject(&"internal error: no promise".into()),
            );
        };
        if let Err(e) = post(Target::Worker(&helper.worker), &msg, attachments) {
            let _ = reject.call1(&JsValue::NULL, &e);
            return (job, promise);
        }
        helper.in_flight.set(helper.in_flight.get() + 1);
        self.waiting
            .borrow_mut()
            .insert(job, (resolve, reject, index));
        (job, promise)
    }

    /// Posts a message that has no reply (e.g. "forget this model") to every helper not lost.
    pub fn post_all<M: Serialize>(&self, msg: &M) {
        for h in self.helpers.iter().filter(|h| h.alive.get()) {
            if let Err(e) = post(Target::Worker(&h.worker), msg, &[]) {
                web_sys::console::warn_1(&format!("helper worker: {}", js_error(&e)).into());
            }
        }
    }

    fn on_message(&self, index: usize, event: &MessageEvent) {
        let fatal = js_sys::Reflect::get(&event.data(), &"fatal".into())
            .ok()
            .and_then(|f| f.as_string());
        if let Some(reason) = fatal {
            return self.lost(index, &format!("its module could not be loaded ({reason})"));
        }
        match receive::<R>(event) {
            Ok(env) => {
                if let Some(version) = env.msg.ready_version() {
                    if version != PROTOCOL_VERSION {
                        return self.lost(index, "it is a different build: reload the page");
                    }
                    self.helpers[index].ready.set(true);
                    return;
                }
                let Some(job) = env.msg.job() else { return };
                if let Some(report) = env.msg.progress() {
                    self.progress.borrow_mut().insert(job, report);
                    return;
                }
                self.progress.borrow_mut().remove(&job);
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

    /// A helper stopped: it is terminated and its jobs in flight fail with the reason (each
    /// marked for [`Pool::take_lost`]); the others go on. Losing the last one fails the pool
    /// (the caller's next request works without it).
    fn lost(&self, index: usize, reason: &str) {
        let helper = &self.helpers[index];
        if !helper.alive.replace(false) {
            return;
        }
        helper.worker.terminate();
        helper.ready.set(false);
        helper.in_flight.set(0);
        let message = format!("helper worker {} stopped: {reason}", index + 1);
        let last = self.size() == 0;
        if last {
            *self.failure.borrow_mut() = Some(message.clone());
        }
        let failed: Vec<(u32, Settle)> = {
            let mut waiting = self.waiting.borrow_mut();
            let jobs: Vec<u32> = waiting
                .iter()
                .filter(|(_, (_, _, i))| *i == index)
                .map(|(&job, _)| job)
                .collect();
            jobs.into_iter()
                .filter_map(|job| waiting.remove(&job).map(|s| (job, s)))
                .collect()
        };
        for (job, (_, reject, _)) in failed {
            self.progress.borrow_mut().remove(&job);
            if !last {
                self.lost_jobs.borrow_mut().insert(job);
            }
            let _ = reject.call1(&JsValue::NULL, &JsValue::from_str(&message));
        }
        if last {
            self.stop();
        }
    }

    /// Terminates every helper.
    pub fn stop(&self) {
        for h in &self.helpers {
            h.worker.terminate();
            h.ready.set(false);
        }
    }
}

/// A pool started on first use ([`started`]) and given up for good once it fails: the work
/// then stays in the caller. Keep one in a `thread_local!`.
pub struct LazyPool<R: PoolReply> {
    state: RefCell<Lazy<R>>,
}

enum Lazy<R: PoolReply> {
    /// Not started yet.
    Idle,
    /// Started (ready once every helper said so).
    Running(Rc<Pool<R>>),
    /// Could not start or lost a helper.
    Broken,
}

impl<R: PoolReply> LazyPool<R> {
    /// A pool not started yet.
    pub const fn new() -> Self {
        Self {
            state: RefCell::new(Lazy::Idle),
        }
    }
}

impl<R: PoolReply> Default for LazyPool<R> {
    fn default() -> Self {
        Self::new()
    }
}

/// The running pool in `slot`, starting `size` helpers of `script` named `name` on first use
/// and waiting up to `timeout_ms` for them; `None` when `size` is 0 or the pool could not start
/// or lost a helper (said once in the console).
pub async fn started<R: PoolReply>(
    slot: &'static LocalKey<LazyPool<R>>,
    script: &str,
    name: &str,
    size: usize,
    timeout_ms: i32,
) -> Option<Rc<Pool<R>>> {
    let existing = slot.with(|s| match &*s.state.borrow() {
        Lazy::Running(p) => Some(Some(p.clone())),
        Lazy::Broken => Some(None),
        Lazy::Idle => None,
    });
    let pool = match existing {
        // Started by a request beside this one: wait for it too.
        Some(Some(p)) => p,
        Some(None) => return None,
        None if size == 0 => return None,
        None => match Pool::start(script, name, size) {
            Ok(p) => {
                slot.with(|s| *s.state.borrow_mut() = Lazy::Running(p.clone()));
                p
            }
            Err(e) => return give_up(slot, &e),
        },
    };
    match pool.wait_ready(timeout_ms).await {
        Ok(()) => Some(pool),
        Err(e) => give_up(slot, &e),
    }
}

fn give_up<R: PoolReply>(
    slot: &'static LocalKey<LazyPool<R>>,
    reason: &str,
) -> Option<Rc<Pool<R>>> {
    slot.with(|s| {
        let mut state = s.state.borrow_mut();
        if let Lazy::Running(p) = &*state {
            p.stop();
        }
        if !matches!(&*state, Lazy::Broken) {
            web_sys::console::warn_1(&format!("working without helper workers: {reason}").into());
        }
        *state = Lazy::Broken;
    });
    None
}

/// Awaits a job's promise and reads the helper's reply.
pub async fn reply<R: PoolReply>(promise: js_sys::Promise) -> Result<Envelope<R>, String> {
    let event = JsFuture::from(promise).await.map_err(|e| js_error(&e))?;
    let event: MessageEvent = event
        .dyn_into()
        .map_err(|_| "a helper's reply was not a message".to_string())?;
    receive::<R>(&event)
}
