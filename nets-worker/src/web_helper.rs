//! A CPU helper's loop: this module started under the worker name
//! [`emstudio_protocol::nets::NETS_HELPER_NAME`] loads the models of inference runs and runs
//! batches of tiles through them on burn's flex CPU backend ([`ToNetsHelper`]), one reply per
//! job. It holds no layers and never touches WebGPU.

use crate::jobs::InferEngine;
use emstudio_nets::Device;
use emstudio_protocol::nets::{f32_bytes, plane_f32, FromNetsHelper, Plane, ToNetsHelper};
use emstudio_protocol::{RequestId, PROTOCOL_VERSION};
use emstudio_webmsg::glue::scope;
use emstudio_webmsg::{buffer_bytes, post, receive, to_buffer, Target};
use std::cell::RefCell;
use std::collections::HashMap;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::MessageEvent;

thread_local! {
    static MODELS: RefCell<HashMap<RequestId, InferEngine>> = RefCell::new(HashMap::new());
}

fn reply(msg: &FromNetsHelper, buffers: &[JsValue]) {
    if let Err(e) = post(Target::Scope(&scope()), msg, buffers) {
        web_sys::console::error_2(&"emstudio network helper: could not post".into(), &e);
    }
}

/// Listens for jobs and says `Ready`.
pub(crate) fn start() {
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(|event: MessageEvent| {
        match receive::<ToNetsHelper>(&event) {
            Ok(env) => run(env.msg, &env.attachments),
            Err(e) => web_sys::console::error_1(&format!("emstudio network helper: {e}").into()),
        }
    });
    scope().set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
    reply(
        &FromNetsHelper::Ready {
            version: PROTOCOL_VERSION,
        },
        &[],
    );
}

fn run(msg: ToNetsHelper, attachments: &[JsValue]) {
    match msg {
        ToNetsHelper::Load { job, run } => {
            let loaded = attachments
                .first()
                .and_then(buffer_bytes)
                .ok_or_else(|| "the model file was not attached".to_string())
                .and_then(|model| InferEngine::new(&model, &Device::flex(), None));
            match loaded {
                Ok(engine) => {
                    MODELS.with(|m| m.borrow_mut().insert(run, engine));
                    reply(&FromNetsHelper::Loaded { job }, &[]);
                }
                Err(error) => reply(&FromNetsHelper::Failed { job, error }, &[]),
            }
        }
        ToNetsHelper::Forward { job, run, shape } => {
            let values = attachments
                .first()
                .and_then(buffer_bytes)
                .ok_or_else(|| "the batch was not attached".to_string())
                .and_then(|bytes| {
                    let plane = Plane {
                        height: shape[2],
                        width: shape[3],
                        channels: shape[0].saturating_mul(shape[1]),
                    };
                    plane_f32("batch", plane, &bytes).map_err(|e| e.to_string())
                });
            let result = values.and_then(|values| {
                MODELS.with(|m| match m.borrow().get(&run) {
                    Some(engine) => engine.forward(values, shape, &Device::flex()),
                    None => Err("the model of this run is not loaded".into()),
                })
            });
            match result {
                Ok(probs) => reply(
                    &FromNetsHelper::Forwarded { job },
                    &[to_buffer(&f32_bytes(&probs))],
                ),
                Err(error) => reply(&FromNetsHelper::Failed { job, error }, &[]),
            }
        }
        ToNetsHelper::Unload { run } => MODELS.with(|m| {
            m.borrow_mut().remove(&run);
        }),
    }
}
