//! Browser glue both workers need: their global scope, yielding to the event loop, sleeping,
//! readable JavaScript errors, and `ImageBitmap`s made from RGBA pixels.

use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::DedicatedWorkerGlobalScope;

/// The worker's global scope (call only inside a dedicated worker).
pub fn scope() -> DedicatedWorkerGlobalScope {
    js_sys::global().unchecked_into()
}

/// Lets queued messages (cancel, render, steering) run. A `MessageChannel` round trip is a
/// macrotask like `setTimeout(0)` but without the browser's 4 ms clamp on nested timers, which
/// would cost seconds over hundreds of files.
pub async fn yield_now() {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        if let Ok(channel) = web_sys::MessageChannel::new() {
            channel.port1().set_onmessage(Some(resolve.unchecked_ref()));
            let _ = channel.port2().post_message(&JsValue::UNDEFINED);
        } else {
            let _ = scope().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, 0);
        }
    });
    let _ = JsFuture::from(promise).await;
}

/// Waits `ms` milliseconds.
pub async fn sleep_ms(ms: i32) {
    let _ = JsFuture::from(timer(ms)).await;
}

/// A promise that resolves (to `undefined`) after `ms` milliseconds.
pub fn timer(ms: i32) -> js_sys::Promise {
    js_sys::Promise::new(&mut |resolve, _| {
        let _ = scope().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
    })
}

/// The message of a thrown JavaScript value.
pub fn js_error(e: &JsValue) -> String {
    e.as_string()
        .or_else(|| {
            e.dyn_ref::<js_sys::Error>()
                .map(|err| String::from(err.message()))
        })
        .unwrap_or_else(|| format!("{e:?}"))
}

/// An `ImageBitmap` of `width × height` RGBA pixels (decoded here, so the UI thread only draws
/// it), ready to be transferred.
pub async fn image_bitmap(rgba: &[u8], width: usize, height: usize) -> Result<JsValue, String> {
    let image = web_sys::ImageData::new_with_u8_clamped_array_and_sh(
        wasm_bindgen::Clamped(rgba),
        width as u32,
        height as u32,
    )
    .map_err(|e| js_error(&e))?;
    let promise = scope()
        .create_image_bitmap_with_image_data(&image)
        .map_err(|e| js_error(&e))?;
    JsFuture::from(promise).await.map_err(|e| js_error(&e))
}
