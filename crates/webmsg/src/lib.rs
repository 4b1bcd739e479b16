//! The envelope that carries protocol messages between the UI thread and the workers, and the
//! small browser glue the workers share ([`glue`]).
//!
//! An envelope is a plain JS object `{ msg: Uint8Array, att: [..] }`: `msg` is the
//! [`emstudio_protocol::encode`]d message and `att` its attachments: `File` objects from the
//! app (structured clone of a `File` copies a handle, not the bytes) or `ArrayBuffer`s and `ImageBitmap`s from the
//! worker, which are *transferred* (moved without copying). The message itself says what each
//! attachment is.

pub mod glue;
pub mod pool;

use serde::{de::DeserializeOwned, Serialize};
use wasm_bindgen::{JsCast, JsValue};

/// Who receives a message.
#[derive(Clone, Copy)]
pub enum Target<'a> {
    /// From the app to its worker.
    Worker(&'a web_sys::Worker),
    /// From inside the worker to the app.
    Scope(&'a web_sys::DedicatedWorkerGlobalScope),
}

/// A received message with its attachments.
pub struct Envelope<T> {
    /// The decoded message.
    pub msg: T,
    /// Attached `File`s or `ArrayBuffer`s, in order.
    pub attachments: Vec<JsValue>,
}

/// Posts `msg` with `attachments`; `ArrayBuffer` and `ImageBitmap` attachments are
/// transferred, not copied.
pub fn post<T: Serialize>(
    target: Target<'_>,
    msg: &T,
    attachments: &[JsValue],
) -> Result<(), JsValue> {
    let bytes = emstudio_protocol::encode(msg).map_err(|e| JsValue::from_str(&e.to_string()))?;
    let msg_array = js_sys::Uint8Array::from(bytes.as_slice());
    let att = js_sys::Array::new();
    let transfer = js_sys::Array::new();
    transfer.push(&msg_array.buffer());
    for a in attachments {
        att.push(a);
        if a.is_instance_of::<js_sys::ArrayBuffer>() || a.is_instance_of::<web_sys::ImageBitmap>() {
            transfer.push(a);
        }
    }
    let envelope = js_sys::Object::new();
    js_sys::Reflect::set(&envelope, &"msg".into(), &msg_array)?;
    js_sys::Reflect::set(&envelope, &"att".into(), &att)?;
    match target {
        Target::Worker(w) => w.post_message_with_transfer(&envelope, &transfer),
        Target::Scope(s) => s.post_message_with_transfer(&envelope, &transfer),
    }
}

/// Decodes an envelope; a malformed one is an error message, never a panic.
pub fn receive<T: DeserializeOwned>(event: &web_sys::MessageEvent) -> Result<Envelope<T>, String> {
    let data = event.data();
    let msg = js_sys::Reflect::get(&data, &"msg".into())
        .ok()
        .and_then(|m| m.dyn_into::<js_sys::Uint8Array>().ok())
        .ok_or_else(|| "malformed message: no `msg` bytes".to_string())?;
    let msg = emstudio_protocol::decode(&msg.to_vec()).map_err(|e| e.to_string())?;
    let attachments = js_sys::Reflect::get(&data, &"att".into())
        .ok()
        .and_then(|a| a.dyn_into::<js_sys::Array>().ok())
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    Ok(Envelope { msg, attachments })
}

/// Copies a `Uint8Array`'s bytes out of an `ArrayBuffer` attachment.
pub fn buffer_bytes(value: &JsValue) -> Option<Vec<u8>> {
    value
        .dyn_ref::<js_sys::ArrayBuffer>()
        .map(|b| js_sys::Uint8Array::new(b).to_vec())
}

/// Copies the `u32` values (platform byte order, little-endian in wasm) out of an
/// `ArrayBuffer` attachment in one step; `None` when it is not one or its length is not a
/// multiple of 4.
pub fn buffer_u32(value: &JsValue) -> Option<Vec<u32>> {
    value
        .dyn_ref::<js_sys::ArrayBuffer>()
        .filter(|b| b.byte_length() % 4 == 0)
        .map(|b| js_sys::Uint32Array::new(b).to_vec())
}

/// Copies `values` into a fresh `ArrayBuffer` ready to be transferred, in one step.
pub fn u32_buffer(values: &[u32]) -> JsValue {
    js_sys::Uint32Array::from(values).buffer().into()
}

/// Moves `bytes` into a fresh `ArrayBuffer` ready to be transferred.
pub fn to_buffer(bytes: &[u8]) -> JsValue {
    js_sys::Uint8Array::from(bytes).buffer().into()
}
