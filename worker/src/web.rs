//! Browser glue: the worker's message loop, reading `File`s and fetching URLs, progress and
//! cancellation. Long requests run as async tasks that yield to the event loop after every
//! file, so `Cancel` and render requests are served while a stack loads.

use crate::compute::{self, ComputeError, FilterJob};
use crate::training::{device_description, InferJob, TrainJob, TrainRequest};
use crate::web_edit;
use crate::web_gpu;
use crate::workspace::{Rendered, Workspace};
use emstudio_core::stack::{is_stack_file_name, natural_cmp, ExportFormat, Limits, StackBuilder};
use emstudio_protocol::{
    FromWorker, LayerId, LayerKind, NetDevice, RequestId, StackSource, ToWorker, TrainControl,
    PROTOCOL_VERSION,
};
use emstudio_webmsg::{post, receive, to_buffer, Target};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{spawn_local, JsFuture};
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent};

thread_local! {
    pub(crate) static WORKSPACE: RefCell<Workspace> = RefCell::new(Workspace::default());
    static CANCELLED: RefCell<HashSet<RequestId>> = RefCell::new(HashSet::new());
    static TRAINING: RefCell<HashMap<RequestId, Steering>> = RefCell::new(HashMap::new());
}

/// How the app is steering a training run (`TrainControl`).
#[derive(Clone, Copy, Debug, Default)]
struct Steering {
    paused: bool,
    stop: bool,
    preview_z: Option<usize>,
    preview_now: bool,
}

fn steering(request: RequestId) -> Steering {
    TRAINING.with(|t| t.borrow().get(&request).copied().unwrap_or_default())
}

fn scope() -> DedicatedWorkerGlobalScope {
    js_sys::global().unchecked_into()
}

pub(crate) fn send(msg: &FromWorker, buffers: &[JsValue]) {
    if let Err(e) = post(Target::Scope(&scope()), msg, buffers) {
        web_sys::console::error_2(&"emstudio worker: could not post a reply".into(), &e);
    }
}

pub(crate) fn fail(request: RequestId, error: String) {
    send(&FromWorker::Failed { request, error }, &[]);
}

/// Takes the cancel flag of `request` (true once if it was cancelled).
fn take_cancelled(request: RequestId) -> bool {
    CANCELLED.with(|c| c.borrow_mut().remove(&request))
}

/// Entry point, run when the module is instantiated.
#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(|event: MessageEvent| {
        match receive::<ToWorker>(&event) {
            Ok(env) => handle(env.msg, env.attachments),
            Err(e) => web_sys::console::error_1(&format!("emstudio worker: {e}").into()),
        }
    });
    scope().set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
    send(
        &FromWorker::Ready {
            version: PROTOCOL_VERSION,
        },
        &[],
    );
}

fn handle(msg: ToWorker, attachments: Vec<JsValue>) {
    match msg {
        ToWorker::Open {
            request,
            kind,
            name,
            source,
            voxel_size,
        } => spawn_local(async move {
            match open(request, &name, source, attachments).await {
                Ok(Some(mut volume)) => {
                    if let Some(vs) = voxel_size {
                        volume.set_voxel_size(vs);
                    }
                    match WORKSPACE.with(|w| w.borrow_mut().add(&name, kind, volume)) {
                        Ok(layer) => send(&FromWorker::Opened { request, layer }, &[]),
                        Err(e) => fail(request, e),
                    }
                }
                Ok(None) => send(&FromWorker::Cancelled { request }, &[]),
                Err(e) => fail(request, e),
            }
        }),
        ToWorker::RenderSlice {
            request,
            layer,
            z,
            outline,
            highlight,
        } => match WORKSPACE.with(|w| w.borrow().render(layer, z, outline, &highlight)) {
            Ok(r) => send_rendered(request, layer, z, r),
            Err(e) => fail(request, e),
        },
        ToWorker::PreviewFilters {
            request,
            layer,
            z,
            pipeline_json,
        } => {
            let rendered = compute::parse_pipeline(&pipeline_json).and_then(|p| {
                WORKSPACE.with(|w| compute::preview_filters(&w.borrow(), layer, z, &p))
            });
            match rendered {
                Ok(r) => send_rendered(request, layer, z, r),
                Err(e) => fail(request, e),
            }
        }
        ToWorker::ApplyFilters {
            request,
            layer,
            pipeline_json,
            name,
        } => spawn_local(async move {
            let started = now_ms();
            let result = apply_filters(request, layer, &pipeline_json).await;
            finish_layer(request, &name, LayerKind::Image, started, result);
        }),
        ToWorker::Postprocess {
            request,
            layer,
            markers,
            params,
            name,
        } => spawn_local(async move {
            // Let the app show the job row before the worker is busy.
            yield_now().await;
            let started = now_ms();
            let mut progress = progress_sender(request, "labelling".into());
            let result = WORKSPACE.with(|w| {
                compute::postprocess_layer(&w.borrow(), layer, markers, &params, &mut progress)
            });
            finish_layer(request, &name, LayerKind::Label, started, result);
        }),
        ToWorker::Evaluate {
            request,
            gt,
            pred,
            params,
        } => spawn_local(async move {
            yield_now().await;
            let started = now_ms();
            let mut progress = progress_sender(request, "comparing".into());
            let result = WORKSPACE
                .with(|w| compute::evaluate_layers(&w.borrow(), gt, pred, &params, &mut progress));
            let compute_ms = now_ms() - started;
            match result {
                Ok((evaluation, map)) => {
                    let name = WORKSPACE.with(|w| {
                        let w = w.borrow();
                        let n = |id| w.layer(id).map(|l| l.info.name.clone()).unwrap_or_default();
                        format!("errors: {} vs {}", n(pred), n(gt))
                    });
                    match WORKSPACE.with(|w| w.borrow_mut().add(&name, LayerKind::Errors, map)) {
                        Ok(error_map) => send(
                            &FromWorker::Evaluated {
                                request,
                                evaluation: Box::new(evaluation),
                                error_map,
                                compute_ms,
                            },
                            &[],
                        ),
                        Err(e) => fail(request, e),
                    }
                }
                Err(ComputeError::Cancelled) => send(&FromWorker::Cancelled { request }, &[]),
                Err(ComputeError::Failed(e)) => fail(request, e),
            }
        }),
        ToWorker::Probe { request, z, y, x } => {
            let values = WORKSPACE.with(|w| w.borrow().probe(z, y, x));
            send(&FromWorker::Probe { request, values }, &[]);
        }
        ToWorker::Export {
            request,
            layer,
            options,
        } => spawn_local(async move {
            match export(request, layer, &options).await {
                Ok(Some((names, buffers))) => send(
                    &FromWorker::Exported {
                        request,
                        files: names,
                    },
                    &buffers,
                ),
                Ok(None) => send(&FromWorker::Cancelled { request }, &[]),
                Err(e) => fail(request, e),
            }
        }),
        ToWorker::EvaluateIsbi {
            request,
            gt,
            map,
            params,
        } => spawn_local(async move {
            yield_now().await;
            let started = now_ms();
            let mut progress = progress_sender(request, "ISBI sweep".into());
            let result = WORKSPACE.with(|w| {
                compute::evaluate_isbi_layers(&w.borrow(), gt, map, &params, &mut progress)
            });
            let compute_ms = now_ms() - started;
            match result {
                Ok(report) => send(
                    &FromWorker::IsbiEvaluated {
                        request,
                        report,
                        compute_ms,
                    },
                    &[],
                ),
                Err(ComputeError::Cancelled) => send(&FromWorker::Cancelled { request }, &[]),
                Err(ComputeError::Failed(e)) => fail(request, e),
            }
        }),
        ToWorker::Train {
            request,
            image,
            label,
            train_slices,
            validation_slices,
            config_json,
            ignore_label,
            preview_z,
            preview_every,
            device,
        } => {
            let init = attachments
                .first()
                .map(|b| js_sys::Uint8Array::new(b).to_vec());
            let req = TrainRequest {
                image,
                label,
                train_slices,
                validation_slices,
                config_json,
                ignore_label,
                init,
            };
            spawn_local(train(request, req, preview_z, preview_every, device));
        }
        ToWorker::TrainControl { request, control } => TRAINING.with(|t| {
            if let Some(s) = t.borrow_mut().get_mut(&request) {
                match control {
                    TrainControl::Pause => s.paused = true,
                    TrainControl::Resume => s.paused = false,
                    TrainControl::Stop => s.stop = true,
                    TrainControl::PreviewSlice(z) => {
                        s.preview_z = z;
                        s.preview_now = z.is_some();
                    }
                }
            }
        }),
        ToWorker::Infer {
            request,
            layer,
            slices,
            region,
            name,
            device,
        } => {
            let model = attachments
                .first()
                .map(|b| js_sys::Uint8Array::new(b).to_vec());
            spawn_local(async move {
                let started = now_ms();
                let result = match model {
                    Some(m) => infer(request, layer, &m, &slices, region, device).await,
                    None => Err(ComputeError::Failed("no model file was attached".into())),
                };
                finish_layer(request, &name, infer_kind(&result), started, result);
            });
        }
        ToWorker::ProbeDevices { request } => spawn_local(async move {
            let (gpu, gpu_missing) = match web_gpu::gpu().await {
                Ok((_, info)) => (Some(info), None),
                Err(e) => (None, Some(e)),
            };
            send(
                &FromWorker::Devices {
                    request,
                    gpu,
                    gpu_missing,
                    cpu: device_description(),
                },
                &[],
            );
        }),
        ToWorker::NewLabelLayer {
            request,
            like,
            name,
        } => {
            let started = now_ms();
            match WORKSPACE.with(|w| w.borrow_mut().new_label_layer(like, &name)) {
                Ok(layer) => send(
                    &FromWorker::LayerCreated {
                        request,
                        layer,
                        summary: "empty label layer".into(),
                        compute_ms: now_ms() - started,
                    },
                    &[],
                ),
                Err(e) => fail(request, e),
            }
        }
        ToWorker::EditLabels {
            request,
            layer,
            edit,
            session,
        } => web_edit::edit(request, layer, edit, &session),
        ToWorker::ListSessions { request } => web_edit::list(request),
        ToWorker::RestoreSession { request, key } => web_edit::restore(request, key),
        ToWorker::DiscardSession { request, key } => web_edit::discard(request, key),
        ToWorker::Close { layer } => web_edit::close(layer),
        ToWorker::Cancel { request } => {
            CANCELLED.with(|c| c.borrow_mut().insert(request));
        }
    }
}

/// Sends a rendered slice as an `ImageBitmap` (decoded here, so the UI thread only draws it).
fn send_rendered(request: RequestId, layer: LayerId, z: usize, r: Rendered) {
    spawn_local(async move {
        match to_image_bitmap(&r).await {
            Ok(bitmap) => send(
                &FromWorker::Slice {
                    request,
                    layer,
                    z,
                    width: r.width,
                    height: r.height,
                },
                &[bitmap],
            ),
            Err(e) => fail(request, format!("could not draw slice {z}: {e}")),
        }
    });
}

fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// Forwards kernel progress as protocol events, at most every 50 ms. A kernel runs
/// synchronously, so `Cancel` messages queue behind it; they are honoured between slabs.
fn progress_sender(request: RequestId, message: String) -> impl FnMut(u64, u64) -> ControlFlow<()> {
    let mut last = f64::NEG_INFINITY;
    move |done, total| {
        let now = now_ms();
        if now - last >= 50.0 || done >= total {
            last = now;
            send(
                &FromWorker::Progress {
                    request,
                    done,
                    total,
                    message: message.clone(),
                },
                &[],
            );
        }
        ControlFlow::Continue(())
    }
}

/// Runs a filter pipeline slab by slab, yielding between slabs so `Cancel` is seen.
async fn apply_filters(
    request: RequestId,
    layer: LayerId,
    pipeline_json: &str,
) -> Result<(emstudio_core::AnyVolume, String), ComputeError> {
    let pipeline = compute::parse_pipeline(pipeline_json)?;
    let mut job = WORKSPACE.with(|w| FilterJob::new(&w.borrow(), layer, pipeline))?;
    let steps = job.describe();
    let mut progress = progress_sender(request, format!("filtering: {steps}"));
    loop {
        yield_now().await;
        if take_cancelled(request) {
            return Err(ComputeError::Cancelled);
        }
        if !WORKSPACE.with(|w| job.step(&w.borrow(), &mut progress))? {
            return Ok((job.finish(), steps));
        }
    }
}

/// Label volumes (class maps) become label layers, the rest image layers.
fn infer_kind(result: &Result<(emstudio_core::AnyVolume, String), ComputeError>) -> LayerKind {
    match result {
        Ok((v, _)) if v.dtype() != emstudio_core::DType::F32 => LayerKind::Label,
        _ => LayerKind::Image,
    }
}

/// Runs a model over an image layer slice by slice, yielding between slices.
async fn infer(
    request: RequestId,
    layer: LayerId,
    model: &[u8],
    slices: &[usize],
    region: Option<emstudio_protocol::Region>,
    choice: NetDevice,
) -> Result<(emstudio_core::AnyVolume, String), ComputeError> {
    yield_now().await;
    let chosen = web_gpu::choose(choice).await?;
    let device = chosen.device;
    let mut job = WORKSPACE.with(|w| {
        InferJob::new(
            &w.borrow(),
            layer,
            model,
            slices,
            region,
            &device,
            chosen.max_binding,
        )
    })?;
    let mut progress = progress_sender(request, format!("inferring on {}", chosen.description));
    loop {
        let (done, total) = job.done_of();
        let _ = progress(done as u64, total as u64);
        yield_now().await;
        if take_cancelled(request) {
            return Err(ComputeError::Cancelled);
        }
        let Some(image) = WORKSPACE.with(|w| job.next_image(&w.borrow()))? else {
            break;
        };
        if !job.step_async(&image, &device).await? {
            break;
        }
    }
    let (volume, summary) = WORKSPACE.with(|w| job.finish(&w.borrow()))?;
    Ok((volume, format!("{summary} on {}", chosen.description)))
}

/// Today's date and time, ISO 8601 (for model provenance).
fn iso_now() -> String {
    String::from(js_sys::Date::new_0().to_iso_string())
}

/// Waits `ms` milliseconds (a paused run polls its steering).
pub(crate) async fn sleep_ms(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let _ = scope().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
    });
    let _ = JsFuture::from(promise).await;
}

/// Sends the prediction of slice `z` as `TrainPreview`; returns the time it took (ms).
async fn send_preview(request: RequestId, job: &TrainJob, z: usize) -> f64 {
    let started = now_ms();
    let rendered = match WORKSPACE.with(|w| job.preview_image(&w.borrow(), z)) {
        Ok(image) => job.preview_async(&image).await,
        Err(e) => Err(e),
    };
    match rendered {
        Ok(r) => {
            if let Ok(bitmap) = to_image_bitmap(&r).await {
                send(
                    &FromWorker::TrainPreview {
                        request,
                        z,
                        step: job.steps_done(),
                        width: r.width,
                        height: r.height,
                    },
                    &[bitmap],
                );
            }
        }
        Err(e) => web_sys::console::warn_1(&format!("training preview: {e}").into()),
    }
    now_ms() - started
}

/// A training run: one step per turn of the event loop, so steering, cancel and rendering
/// are served in between; progress at most every 100 ms and with every validation loss.
async fn train(
    request: RequestId,
    req: TrainRequest,
    preview_z: Option<usize>,
    every: u32,
    choice: NetDevice,
) {
    yield_now().await;
    let chosen = match web_gpu::choose(choice).await {
        Ok(c) => c,
        Err(e) => return fail(request, e),
    };
    let device = chosen.device.clone().autodiff();
    let mut job = match WORKSPACE.with(|w| TrainJob::new(&w.borrow(), req, &device)) {
        Ok(j) => j,
        Err(e) => return fail(request, e),
    };
    job.set_max_binding(chosen.max_binding);
    TRAINING.with(|t| {
        t.borrow_mut().insert(
            request,
            Steering {
                preview_z,
                ..Steering::default()
            },
        )
    });
    let first = job.steps_done();
    let started = now_ms();
    send(
        &FromWorker::TrainStarted {
            request,
            device: chosen.description.clone(),
            total: job.total_steps(),
            patch: job.patch(),
        },
        &[],
    );
    let (mut sum, mut n, mut last_sent) = (0.0f64, 0u32, f64::NEG_INFINITY);
    // Previews (a whole-slice inference) may take at most a fifth of the time: the next
    // is due no sooner than four times the last one's duration after it.
    let mut preview_due = f64::NEG_INFINITY;
    let (mut speed_t, mut speed_step) = (started, first);
    let mut steps_per_s = 0.0;
    loop {
        yield_now().await;
        if take_cancelled(request) {
            TRAINING.with(|t| t.borrow_mut().remove(&request));
            return send(&FromWorker::Cancelled { request }, &[]);
        }
        let steer = steering(request);
        if steer.preview_now {
            TRAINING.with(|t| {
                if let Some(s) = t.borrow_mut().get_mut(&request) {
                    s.preview_now = false;
                }
            });
            if let Some(z) = steer.preview_z {
                let took = send_preview(request, &job, z).await;
                preview_due = now_ms() + 4.0 * took;
            }
        }
        if steer.stop || job.finished() {
            break;
        }
        if steer.paused {
            sleep_ms(100).await;
            // Speed restarts after a pause.
            (speed_t, speed_step) = (now_ms(), job.steps_done());
            continue;
        }
        let r = match job.step_async().await {
            Ok(r) => r,
            Err(e) => {
                TRAINING.with(|t| t.borrow_mut().remove(&request));
                return fail(request, format!("training stopped: {e}"));
            }
        };
        sum += f64::from(r.loss);
        n += 1;
        let now = now_ms();
        if now - speed_t >= 1000.0 {
            steps_per_s = (r.step - speed_step) as f64 / ((now - speed_t) / 1000.0);
            (speed_t, speed_step) = (now, r.step);
        } else if steps_per_s == 0.0 && now > started {
            steps_per_s = (r.step - first) as f64 / ((now - started) / 1000.0);
        }
        if now - last_sent >= 100.0 || r.validation.is_some() || job.finished() {
            send(
                &FromWorker::TrainStep {
                    request,
                    step: r.step,
                    total: r.total,
                    loss: (sum / f64::from(n.max(1))) as f32,
                    validation: r.validation,
                    learning_rate: r.learning_rate,
                    steps_per_s,
                },
                &[],
            );
            (sum, n, last_sent) = (0.0, 0, now);
        }
        if let Some(z) = steer.preview_z {
            if every > 0 && r.step % u64::from(every) == 0 && now_ms() >= preview_due {
                let took = send_preview(request, &job, z).await;
                preview_due = now_ms() + 4.0 * took;
            }
        }
    }
    let steer = steering(request);
    TRAINING.with(|t| t.borrow_mut().remove(&request));
    if let Some(z) = steer.preview_z {
        send_preview(request, &job, z).await;
    }
    match job.model_bytes_async(&iso_now()).await {
        Ok(bytes) => send(
            &FromWorker::Trained {
                request,
                steps: job.steps_done(),
                summary: format!(
                    "{}{}",
                    job.summary((now_ms() - started) / 1000.0),
                    if steer.stop { " (stopped early)" } else { "" }
                ),
            },
            &[to_buffer(&bytes)],
        ),
        Err(e) => fail(request, format!("could not save the model: {e}")),
    }
}

/// Adds a computed volume as a layer and sends the terminal reply.
fn finish_layer(
    request: RequestId,
    name: &str,
    kind: LayerKind,
    started: f64,
    result: Result<(emstudio_core::AnyVolume, String), ComputeError>,
) {
    let compute_ms = now_ms() - started;
    match result {
        Ok((volume, summary)) => match WORKSPACE.with(|w| w.borrow_mut().add(name, kind, volume)) {
            Ok(layer) => send(
                &FromWorker::LayerCreated {
                    request,
                    layer,
                    summary: format!("{summary} · {:.1} s", compute_ms / 1000.0),
                    compute_ms,
                },
                &[],
            ),
            Err(e) => fail(request, e),
        },
        Err(ComputeError::Cancelled) => send(&FromWorker::Cancelled { request }, &[]),
        Err(ComputeError::Failed(e)) => fail(request, e),
    }
}

async fn to_image_bitmap(r: &Rendered) -> Result<JsValue, String> {
    let image = web_sys::ImageData::new_with_u8_clamped_array_and_sh(
        wasm_bindgen::Clamped(&r.rgba),
        r.width as u32,
        r.height as u32,
    )
    .map_err(|e| js_error(&e))?;
    let promise = scope()
        .create_image_bitmap_with_image_data(&image)
        .map_err(|e| js_error(&e))?;
    JsFuture::from(promise).await.map_err(|e| js_error(&e))
}

/// Lets queued messages (cancel, render, probe) run. A `MessageChannel` round trip is a
/// macrotask like `setTimeout(0)` but without the browser's 4 ms clamp on nested timers, which
/// would cost seconds over hundreds of files.
async fn yield_now() {
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

fn js_error(e: &JsValue) -> String {
    e.as_string()
        .or_else(|| {
            e.dyn_ref::<js_sys::Error>()
                .map(|err| String::from(err.message()))
        })
        .unwrap_or_else(|| format!("{e:?}"))
}

/// How many files are read ahead of the decoder (network and disk overlap decoding).
const READ_AHEAD: usize = 16;

async fn array_buffer(promise: js_sys::Promise) -> Result<JsValue, String> {
    JsFuture::from(promise).await.map_err(|e| js_error(&e))
}

async fn read_attached(file: &JsValue) -> Result<JsValue, String> {
    let blob = file
        .dyn_ref::<web_sys::Blob>()
        .ok_or_else(|| "the attachment is not a file".to_string())?;
    array_buffer(blob.array_buffer()).await
}

async fn fetch_buffer(url: &str) -> Result<JsValue, String> {
    let response = JsFuture::from(scope().fetch_with_str(url))
        .await
        .map_err(|e| js_error(&e))?;
    let response: web_sys::Response = response.dyn_into().map_err(|e| js_error(&e))?;
    if !response.ok() {
        return Err(format!(
            "HTTP {} {}",
            response.status(),
            response.status_text()
        ));
    }
    array_buffer(response.array_buffer().map_err(|e| js_error(&e))?).await
}

/// One file to read.
enum ReadJob {
    File(JsValue),
    Url(String),
    Missing,
}

/// Starts reading file `i` now; the promise resolves to its `ArrayBuffer`.
fn start_read(source: &StackSource, attachments: &[JsValue], i: usize) -> js_sys::Promise {
    let job = match source {
        StackSource::Attached { .. } => attachments.get(i).cloned().map(ReadJob::File),
        StackSource::Urls { urls, .. } => urls.get(i).cloned().map(ReadJob::Url),
    }
    .unwrap_or(ReadJob::Missing);
    wasm_bindgen_futures::future_to_promise(async move {
        let result = match job {
            ReadJob::File(f) => read_attached(&f).await,
            ReadJob::Url(u) => fetch_buffer(&u).await,
            ReadJob::Missing => Err("the file was not attached".to_string()),
        };
        result.map_err(|e| JsValue::from_str(&e))
    })
}

/// Reads and decodes a stack; `Ok(None)` when cancelled. Files are read up to
/// [`READ_AHEAD`] ahead of the decoder.
/// How often a long loop reports progress and yields to the event loop, milliseconds.
const TURN_MS: f64 = 50.0;

async fn open(
    request: RequestId,
    layer_name: &str,
    source: StackSource,
    attachments: Vec<JsValue>,
) -> Result<Option<emstudio_core::AnyVolume>, String> {
    let names: Vec<String> = match &source {
        StackSource::Attached { names } | StackSource::Urls { names, .. } => names.clone(),
    };
    let mut order: Vec<usize> = (0..names.len())
        .filter(|&i| is_stack_file_name(&names[i]))
        .collect();
    order.sort_by(|&a, &b| natural_cmp(&names[a], &names[b]));
    if order.is_empty() {
        return Err(format!("{layer_name}: no PNG or TIFF files found"));
    }
    let total = order.len() as u64;
    let mut builder = StackBuilder::new(order.len(), Limits::default());
    let mut reading: std::collections::VecDeque<js_sys::Promise> = order
        .iter()
        .take(READ_AHEAD)
        .map(|&i| start_read(&source, &attachments, i))
        .collect();
    // Each message and each yield costs the worker a few milliseconds when its module is large
    // (BENCHMARKS.md), so both happen at most every `TURN_MS`, not per file.
    let mut last_turn = now_ms();
    for (done, &i) in order.iter().enumerate() {
        if take_cancelled(request) {
            return Ok(None);
        }
        let name = &names[i];
        let promise = reading
            .pop_front()
            .ok_or_else(|| format!("{name}: internal error, no read in flight"))?;
        if let Some(&next) = order.get(done + READ_AHEAD) {
            reading.push_back(start_read(&source, &attachments, next));
        }
        let buffer = JsFuture::from(promise)
            .await
            .map_err(|e| format!("{name}: could not read the file ({})", js_error(&e)))?;
        let bytes = js_sys::Uint8Array::new(&buffer).to_vec();
        builder.push(name, &bytes).map_err(|e| e.to_string())?;
        if now_ms() - last_turn >= TURN_MS || done + 1 == order.len() {
            send(
                &FromWorker::Progress {
                    request,
                    done: done as u64 + 1,
                    total,
                    message: format!("{layer_name}: read {name}"),
                },
                &[],
            );
            yield_now().await;
            last_turn = now_ms();
        }
    }
    builder.finish().map(Some).map_err(|e| e.to_string())
}

/// Encodes a layer; `Ok(None)` when cancelled.
async fn export(
    request: RequestId,
    layer: LayerId,
    options: &emstudio_core::stack::ExportOptions,
) -> Result<Option<(Vec<String>, Vec<JsValue>)>, String> {
    let mut names = Vec::new();
    let mut buffers = Vec::new();
    if options.format == ExportFormat::MultiPageTiff {
        for (name, bytes) in WORKSPACE.with(|w| w.borrow().export_all(layer, options))? {
            names.push(name);
            buffers.push(to_buffer(&bytes));
        }
        return Ok(Some((names, buffers)));
    }
    let depth = WORKSPACE.with(|w| w.borrow().layer(layer).map(|l| l.info.shape.z))?;
    for z in 0..depth {
        if take_cancelled(request) {
            return Ok(None);
        }
        let (name, bytes) = WORKSPACE.with(|w| w.borrow().export_slice(layer, z, options))?;
        names.push(name);
        buffers.push(to_buffer(&bytes));
        send(
            &FromWorker::Progress {
                request,
                done: z as u64 + 1,
                total: depth as u64,
                message: format!("encoded slice {z}"),
            },
            &[],
        );
        yield_now().await;
    }
    Ok(Some((names, buffers)))
}
