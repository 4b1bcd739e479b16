//! The data worker's pool of helper workers (browser side): started on first use, sized by the
//! app's `Configure`, and the shared cancel board the app writes into.
//!
//! Helpers are more instances of this module ([`crate::web_helper`]); each answers jobs
//! ([`emstudio_protocol::pool::ToHelper`]) one reply per job, through the shared
//! [`emstudio_webmsg::pool::Pool`]. A helper that stops is lost alone: the data worker does its
//! jobs in flight and the others go on. One that cannot start (its module fails to load, or no
//! `Ready` within [`START_TIMEOUT_MS`]), or the loss of the last one, turns the pool off: the
//! work then runs in the data worker as before, with a note in the console.

use emstudio_protocol::pool::{FromHelper, HELPER_NAME};
use emstudio_protocol::{cancel_slot, RequestId};
use emstudio_webmsg::pool::{started, LazyPool};
use emstudio_webmsg::Envelope;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

/// The data worker's helpers ([`crate::web_helper`] answers their jobs).
pub(crate) type Pool = emstudio_webmsg::pool::Pool<FromHelper>;

/// The script that starts a worker of this module.
const SCRIPT: &str = "./worker.js";
/// How long helpers may take to start before the pool is given up.
const START_TIMEOUT_MS: i32 = 20_000;

thread_local! {
    static WANTED: Cell<usize> = const { Cell::new(0) };
    static POOL: LazyPool<FromHelper> = const { LazyPool::new() };
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
        b.borrow()
            .as_ref()
            .is_some_and(|board| marked(board, request))
    })
}

/// Whether `board` marks `request` cancelled.
pub(crate) fn marked(board: &js_sys::Int32Array, request: RequestId) -> bool {
    let (slot, value) = cancel_slot(request);
    js_sys::Atomics::load(board, slot as u32).is_ok_and(|v| v == value)
}

/// The shared cancel board, to attach to a helper's job (none when not isolated).
pub(crate) fn board() -> Option<JsValue> {
    BOARD.with(|b| b.borrow().as_ref().map(|board| board.buffer().into()))
}

/// The running pool, starting it on first use; `None` when configured without helpers or
/// when they could not start.
pub(crate) async fn pool() -> Option<Rc<Pool>> {
    started(&POOL, SCRIPT, HELPER_NAME, wanted(), START_TIMEOUT_MS).await
}

/// Awaits a job's promise and reads the helper's reply.
pub(crate) async fn reply(promise: js_sys::Promise) -> Result<Envelope<FromHelper>, String> {
    emstudio_webmsg::pool::reply(promise).await
}

/// The helpers the app asked for (0: none); the network worker gets as many for forward passes
/// on the CPU.
pub(crate) fn wanted() -> usize {
    WANTED.with(Cell::get)
}
