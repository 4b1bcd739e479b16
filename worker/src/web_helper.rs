//! A helper worker's loop: this module started under the worker name
//! [`emstudio_protocol::pool::HELPER_NAME`] answers decode, filter and label jobs
//! ([`emstudio_protocol::pool::ToHelper`]) with the platform-free functions of
//! [`crate::pool`], one reply per job, and holds no layers.

use crate::labelling::{label_job, BlockInput};
use crate::pool::{decode_job, filter_job, page_bytes, page_shape, slab_from_bytes};
use crate::web::{fetch_buffer, read_attached};
use emstudio_protocol::nets::f32_bytes;
use emstudio_protocol::pool::{FromHelper, ToHelper};
use emstudio_protocol::{RequestId, PROTOCOL_VERSION};
use emstudio_webmsg::glue::scope;
use emstudio_webmsg::{buffer_bytes, buffer_u32, post, receive, to_buffer, u32_buffer, Target};
use std::ops::ControlFlow;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::spawn_local;
use web_sys::MessageEvent;

fn reply(msg: &FromHelper, buffers: &[JsValue]) {
    if let Err(e) = post(Target::Scope(&scope()), msg, buffers) {
        web_sys::console::error_2(&"emstudio helper: could not post a reply".into(), &e);
    }
}

/// Listens for jobs and says `Ready`.
pub(crate) fn start() {
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(|event: MessageEvent| {
        match receive::<ToHelper>(&event) {
            Ok(env) => spawn_local(run(env.msg, env.attachments)),
            Err(e) => web_sys::console::error_1(&format!("emstudio helper: {e}").into()),
        }
    });
    scope().set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
    reply(
        &FromHelper::Ready {
            version: PROTOCOL_VERSION,
        },
        &[],
    );
}

async fn run(msg: ToHelper, attachments: Vec<JsValue>) {
    match msg {
        ToHelper::Decode {
            job,
            name,
            url,
            limits,
        } => {
            let read = match (&url, attachments.first()) {
                (Some(url), _) => fetch_buffer(url).await,
                (None, Some(file)) => read_attached(file).await,
                (None, None) => Err("the file was not attached".to_string()),
            };
            let bytes = match read {
                Ok(buffer) => js_sys::Uint8Array::new(&buffer).to_vec(),
                Err(e) => {
                    let error = format!("{name}: could not read the file ({e})");
                    return reply(&FromHelper::Failed { job, error }, &[]);
                }
            };
            match decode_job(&name, &bytes, &limits) {
                Ok((format, pages)) => {
                    let shapes = pages.iter().map(page_shape).collect();
                    let buffers: Vec<JsValue> = pages
                        .iter()
                        .map(|p| to_buffer(&page_bytes(&p.pixels)))
                        .collect();
                    reply(
                        &FromHelper::Decoded {
                            job,
                            format,
                            pages: shapes,
                        },
                        &buffers,
                    );
                }
                Err(error) => reply(&FromHelper::Failed { job, error }, &[]),
            }
        }
        ToHelper::Filter {
            job,
            request,
            pipeline_json,
            keep_from,
            keep,
            depth,
            height,
            width,
        } => {
            let mut stop = progress_reporter(job, request, &attachments);
            let result = attachments
                .first()
                .and_then(buffer_bytes)
                .ok_or_else(|| "the slab was not attached".to_string())
                .and_then(|bytes| slab_from_bytes(&bytes, depth, height, width))
                .and_then(|slab| filter_job(&pipeline_json, slab, keep_from, keep, &mut stop));
            match result {
                Ok(out) => {
                    let values = out
                        .as_slice()
                        .map(f32_bytes)
                        .unwrap_or_else(|| f32_bytes(&out.iter().copied().collect::<Vec<f32>>()));
                    reply(&FromHelper::Filtered { job }, &[to_buffer(&values)]);
                }
                Err(error) => reply(&FromHelper::Failed { job, error }, &[]),
            }
        }
        ToHelper::Label {
            job,
            request,
            how,
            markers,
            send_from,
            send,
            depth,
            height,
            width,
        } => {
            let mut stop = progress_reporter(job, request, &attachments);
            let mask = attachments.first().and_then(buffer_bytes);
            let marker_ids = match markers {
                true => attachments
                    .get(1)
                    .and_then(buffer_u32)
                    .map(Some)
                    .ok_or_else(|| "the marker block was not attached".to_string()),
                false => Ok(None),
            };
            let result = match (mask, marker_ids) {
                (None, _) => Err("the mask block was not attached".to_string()),
                (_, Err(e)) => Err(e),
                (Some(mask), Ok(marker_ids)) => {
                    let input = BlockInput {
                        mask,
                        markers: marker_ids,
                        depth,
                        send: send_from..send_from + send,
                    };
                    label_job(&how, input, height, width, &mut stop)
                }
            };
            match result {
                Ok(labels) => reply(&FromHelper::Labelled { job }, &[u32_buffer(&labels)]),
                Err(error) => reply(&FromHelper::Failed { job, error }, &[]),
            }
        }
    }
}

/// A job's progress callback: stops the kernel once the app marks `request` on the shared
/// cancel board (attached when the page is isolated), and reports how far it has got at most
/// every 100 ms, so the data worker can move its progress bar.
fn progress_reporter(
    job: u32,
    request: RequestId,
    attachments: &[JsValue],
) -> impl FnMut(u64, u64) -> ControlFlow<()> {
    let board = attachments.iter().find_map(|b| {
        b.dyn_ref::<js_sys::SharedArrayBuffer>()
            .map(|sab| js_sys::Int32Array::new(sab))
    });
    let mut last = f64::NEG_INFINITY;
    move |done: u64, total: u64| {
        if board
            .as_ref()
            .is_some_and(|board| crate::web_pool::marked(board, request))
        {
            return ControlFlow::Break(());
        }
        let now = js_sys::Date::now();
        if now - last >= 100.0 {
            last = now;
            reply(&FromHelper::Progress { job, done, total }, &[]);
        }
        ControlFlow::Continue(())
    }
}
