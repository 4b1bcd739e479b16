//! Browser glue of the network worker: its message loop, the training loop that streams steps
//! and previews to the app, and inference one slice at a time for the data worker.
//!
//! Replies meant for the app go out as [`FromNets::App`]; the data worker passes them on. A
//! module this size pays several milliseconds for each trip through JavaScript, so the
//! training loop yields to the event loop at most every [`TURN_MS`], not every step.

use crate::ffn::{FfnFillJob, FfnSegmentJob, FfnTrainJob, SEGMENT_BLOCK_VOXELS};
use crate::jobs::{
    cpu_description_for, cpu_description_shared, InferEngine, LabelledSlice, Prediction, TrainData,
    TrainJob,
};
use crate::{web_gpu, web_pool};
use emstudio_nets::train::GPU_LOSS_READ_EVERY;
use emstudio_nets::Device;
use emstudio_protocol::nets::{
    f32_bytes, plane_f32, plane_u32, u32_bytes, FfnFillBox, FromNets, Plane, ToNets, ToNetsHelper,
    NETS_HELPER_NAME,
};
use emstudio_protocol::{FromWorker, NetDevice, RequestId, TrainControl, PROTOCOL_VERSION};
use emstudio_webmsg::glue::{image_bitmap, scope, sleep_ms, yield_now};
use emstudio_webmsg::{buffer_bytes, post, receive, to_buffer, Target};
use ndarray::{Array2, Array3};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::spawn_local;
use web_sys::MessageEvent;

/// How often the training loop yields and reports, milliseconds.
const TURN_MS: f64 = 50.0;

thread_local! {
    static CANCELLED: RefCell<HashSet<RequestId>> = RefCell::new(HashSet::new());
    static TRAINING: RefCell<HashMap<RequestId, Steering>> = RefCell::new(HashMap::new());
    static INFERRING: RefCell<HashMap<RequestId, Inference>> = RefCell::new(HashMap::new());
}

/// How the app is steering a training run.
#[derive(Clone, Debug, Default)]
struct Steering {
    paused: bool,
    stop: bool,
    /// The slice to preview and its image.
    preview: Option<(usize, Array3<f32>)>,
    preview_now: bool,
    /// An FFN run's live fill: its box and image.
    fill: Option<Rc<(FfnFillBox, Array3<f32>)>>,
    /// The box changed: fill as soon as the last fill is far enough behind.
    fill_now: bool,
}

/// A loaded model and the device it runs on (taken out while a slice runs), and the CPU
/// helpers that loaded it too.
struct Inference {
    engine: Option<InferEngine>,
    device: Device,
    helpers: Option<Rc<web_pool::Pool>>,
}

fn send(msg: &FromNets, buffers: &[JsValue]) {
    if let Err(e) = post(Target::Scope(&scope()), msg, buffers) {
        web_sys::console::error_2(&"emstudio network worker: could not post".into(), &e);
    }
}

fn to_app(msg: FromWorker, buffers: &[JsValue]) {
    send(&FromNets::App(msg), buffers);
}

fn fail(request: RequestId, error: String) {
    to_app(FromWorker::Failed { request, error }, &[]);
}

fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// Entry point, run when the module is instantiated.
#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
    if scope().name() == NETS_HELPER_NAME {
        return crate::web_helper::start();
    }
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(|event: MessageEvent| {
        match receive::<ToNets>(&event) {
            Ok(env) => handle(env.msg, env.attachments),
            Err(e) => web_sys::console::error_1(&format!("emstudio network worker: {e}").into()),
        }
    });
    scope().set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
    send(
        &FromNets::Ready {
            version: PROTOCOL_VERSION,
        },
        &[],
    );
}

/// The bytes of attachment `i`, or an error naming it.
fn attachment(attachments: &[JsValue], i: usize, what: &str) -> Result<Vec<u8>, String> {
    attachments
        .get(i)
        .and_then(buffer_bytes)
        .ok_or_else(|| format!("{what}: the data worker attached no buffer"))
}

fn image_plane(
    attachments: &[JsValue],
    i: usize,
    plane: Plane,
    what: &str,
) -> Result<Array3<f32>, String> {
    let values =
        plane_f32(what, plane, &attachment(attachments, i, what)?).map_err(|e| e.to_string())?;
    Array3::from_shape_vec((plane.channels, plane.height, plane.width), values)
        .map_err(|e| format!("{what}: {e}"))
}

/// The training slices of a `Train` message: image and labels of each, in order.
fn train_data(
    msg_planes: (&[Plane], &[Plane]),
    attachments: &[JsValue],
) -> Result<(Vec<LabelledSlice>, Vec<LabelledSlice>), String> {
    let mut next = 0;
    let mut take = |planes: &[Plane], kind: &str| -> Result<Vec<LabelledSlice>, String> {
        planes
            .iter()
            .enumerate()
            .map(|(k, &plane)| {
                let name = format!("{kind} slice {}", k + 1);
                let image = image_plane(attachments, next, plane, &format!("{name} image"))?;
                let what = format!("{name} labels");
                let labels_plane = Plane::single(plane.height, plane.width);
                let labels = plane_u32(
                    &what,
                    labels_plane,
                    &attachment(attachments, next + 1, &what)?,
                )
                .map_err(|e| e.to_string())?;
                next += 2;
                Ok(LabelledSlice {
                    image,
                    labels: Array2::from_shape_vec((plane.height, plane.width), labels)
                        .map_err(|e| format!("{what}: {e}"))?,
                    name,
                })
            })
            .collect()
    };
    let train = take(msg_planes.0, "training")?;
    let validation = take(msg_planes.1, "validation")?;
    Ok((train, validation))
}

fn handle(msg: ToNets, attachments: Vec<JsValue>) {
    match msg {
        ToNets::ProbeDevices { request, helpers } => spawn_local(async move {
            let (gpu, gpu_missing) = match web_gpu::gpu().await {
                Ok((_, info)) => (Some(info), None),
                Err(e) => (None, Some(e)),
            };
            to_app(
                FromWorker::Devices {
                    request,
                    gpu,
                    gpu_missing,
                    cpu: cpu_description_for(helpers as usize),
                },
                &[],
            );
        }),
        ToNets::Train {
            request,
            train,
            validation,
            config_json,
            ignore_label,
            data_names,
            init,
            preview_every,
            device,
        } => {
            let slices = train_data((&train, &validation), &attachments);
            let init = init
                .then(|| {
                    attachment(
                        &attachments,
                        2 * (train.len() + validation.len()),
                        "model to fine-tune",
                    )
                })
                .transpose();
            let data = slices.and_then(|(train, validation)| {
                Ok(TrainData {
                    train,
                    validation,
                    config_json,
                    ignore_label,
                    data_names,
                    init: init?,
                })
            });
            match data {
                Ok(data) => {
                    TRAINING.with(|t| t.borrow_mut().insert(request, Steering::default()));
                    spawn_local(train_loop(request, data, preview_every, device));
                }
                Err(e) => fail(request, e),
            }
        }
        ToNets::Preview {
            request,
            slice,
            now,
        } => {
            let preview = match slice {
                Some((z, plane)) => match image_plane(&attachments, 0, plane, "preview image") {
                    Ok(image) => Some((z, image)),
                    Err(e) => {
                        web_sys::console::warn_1(&e.into());
                        None
                    }
                },
                None => None,
            };
            TRAINING.with(|t| {
                if let Some(s) = t.borrow_mut().get_mut(&request) {
                    s.preview_now = now && preview.is_some();
                    s.preview = preview;
                }
            });
        }
        ToNets::FfnFillBox { request, fill } => {
            let fill = match fill {
                Some(b) => match attachment(&attachments, 0, "live fill box")
                    .and_then(|bytes| box_f32(&bytes, b.size))
                {
                    Ok(image) => Some(Rc::new((b, image))),
                    Err(e) => {
                        web_sys::console::warn_1(&format!("FFN live fill: {e}").into());
                        None
                    }
                },
                None => None,
            };
            TRAINING.with(|t| {
                if let Some(s) = t.borrow_mut().get_mut(&request) {
                    s.fill_now = fill.is_some();
                    s.fill = fill;
                }
            });
        }
        ToNets::Control { request, control } => TRAINING.with(|t| {
            if let Some(s) = t.borrow_mut().get_mut(&request) {
                match control {
                    TrainControl::Pause => s.paused = true,
                    TrainControl::Resume => s.paused = false,
                    TrainControl::Stop => s.stop = true,
                    TrainControl::PreviewSlice(_) | TrainControl::FfnFillAt(_) => {}
                }
            }
        }),
        ToNets::Cancel { request } => CANCELLED.with(|c| {
            c.borrow_mut().insert(request);
        }),
        ToNets::CheckModel { request, name } => {
            let checked = attachment(&attachments, 0, "model").and_then(|bytes| {
                crate::jobs::check_model(&bytes).map_err(|e| format!("{name}: {e}"))
            });
            match checked {
                Ok(()) => to_app(FromWorker::ModelChecked { request, name }, &[]),
                Err(e) => fail(request, e),
            }
        }
        ToNets::InferStart {
            request,
            device,
            views,
            helpers,
        } => {
            let model = attachment(&attachments, 0, "model");
            spawn_local(async move {
                let model = match model {
                    Ok(m) => m,
                    Err(e) => return fail(request, e),
                };
                let chosen = match web_gpu::choose(device).await {
                    Ok(c) => c,
                    Err(e) => return fail(request, e),
                };
                match InferEngine::new(&model, &chosen.device, chosen.max_binding)
                    .map(|engine| engine.with_views(views.into()))
                {
                    Ok(engine) => {
                        // On the CPU the tiles are shared with helpers, one per core.
                        let on_cpu = chosen.max_binding.is_none();
                        let pool = match on_cpu && helpers > 0 {
                            true => web_pool::load(request, &model, helpers as usize).await,
                            false => None,
                        };
                        let description = match &pool {
                            Some(p) => cpu_description_shared(p.size()),
                            None => chosen.description.clone(),
                        };
                        let header = engine.header();
                        let ready = FromNets::InferReady {
                            request,
                            arch: header.arch.name().to_string(),
                            steps: header.provenance.steps,
                            classes: engine.classes(),
                            device: description,
                        };
                        INFERRING.with(|i| {
                            i.borrow_mut().insert(
                                request,
                                Inference {
                                    engine: Some(engine),
                                    device: chosen.device,
                                    helpers: pool,
                                },
                            )
                        });
                        send(&ready, &[]);
                    }
                    Err(e) => fail(request, e),
                }
            });
        }
        ToNets::InferSlice {
            request,
            index,
            plane,
        } => {
            let image = image_plane(&attachments, 0, plane, "slice to infer");
            spawn_local(async move {
                let image = match image {
                    Ok(i) => i,
                    Err(e) => return fail(request, e),
                };
                let taken = INFERRING.with(|i| {
                    i.borrow_mut().get_mut(&request).and_then(|inf| {
                        let device = inf.device.clone();
                        inf.engine.take().map(|e| (e, device, inf.helpers.clone()))
                    })
                });
                let Some((engine, device, helpers)) = taken else {
                    return fail(
                        request,
                        "inference: the model is not loaded (or busy)".into(),
                    );
                };
                let shared = match &helpers {
                    Some(pool) => match web_pool::predict(pool, request, &engine, &image).await {
                        Ok(p) => Some(p),
                        Err(e) => {
                            // The slice is computed here instead; later runs start without
                            // helpers (the pool turned itself off when its last was lost).
                            web_sys::console::warn_1(
                                &format!("emstudio network worker: helpers failed: {e}").into(),
                            );
                            None
                        }
                    },
                    None => None,
                };
                let result = match engine.work(plane.height, plane.width) {
                    Ok(work) => match shared {
                        Some(p) => Ok((p, work)),
                        None => engine
                            .predict_async(&image, &device)
                            .await
                            .map(|p| (p, work)),
                    },
                    Err(e) => Err(e),
                };
                INFERRING.with(|i| {
                    if let Some(inf) = i.borrow_mut().get_mut(&request) {
                        inf.engine = Some(engine);
                    }
                });
                match result {
                    Ok((p, work)) => {
                        let bytes = match &p {
                            Prediction::Probability(a) => {
                                f32_bytes(&a.iter().copied().collect::<Vec<_>>())
                            }
                            Prediction::Classes(a) => {
                                u32_bytes(&a.iter().copied().collect::<Vec<_>>())
                            }
                        };
                        send(
                            &FromNets::Inferred {
                                request,
                                index,
                                plane: Plane::single(plane.height, plane.width),
                                tiles: work.tiles,
                                tile_side: work.side,
                            },
                            &[to_buffer(&bytes)],
                        );
                    }
                    Err(e) => fail(request, e),
                }
            });
        }
        ToNets::FfnFill {
            request,
            size,
            seed,
            max_steps,
            move_threshold,
            device,
        } => {
            let image = attachment(&attachments, 0, "FFN fill box").and_then(|b| box_f32(&b, size));
            let model = attachment(&attachments, 1, "FFN model");
            match image.and_then(|i| model.map(|m| (i, m))) {
                Ok((image, model)) => spawn_local(ffn_fill_loop(
                    request,
                    image,
                    model,
                    seed,
                    max_steps as usize,
                    f64::from(move_threshold),
                    device,
                )),
                Err(e) => fail(request, e),
            }
        }
        ToNets::FfnTrain {
            request,
            size,
            config_json,
            data_name,
            init,
            device,
        } => {
            let image =
                attachment(&attachments, 0, "FFN training image").and_then(|b| box_f32(&b, size));
            let init = init
                .then(|| attachment(&attachments, 2, "FFN model to fine-tune"))
                .transpose();
            let labels = attachment(&attachments, 1, "FFN training labels").and_then(|b| {
                let what = "FFN training labels";
                let plane = Plane::single(size[0] * size[1], size[2]);
                let v = plane_u32(what, plane, &b).map_err(|e| e.to_string())?;
                Array3::from_shape_vec((size[0], size[1], size[2]), v)
                    .map_err(|e| format!("{what}: {e}"))
            });
            match image.and_then(|i| Ok((i, labels?, init?))) {
                Ok((image, labels, init)) => {
                    TRAINING.with(|t| t.borrow_mut().insert(request, Steering::default()));
                    spawn_local(ffn_train_loop(
                        request,
                        image,
                        labels,
                        data_name,
                        config_json,
                        init,
                        device,
                    ));
                }
                Err(e) => fail(request, e),
            }
        }
        ToNets::FfnSegment {
            request,
            size,
            device,
        } => {
            let image =
                attachment(&attachments, 0, "FFN segmentation box").and_then(|b| box_f32(&b, size));
            let model = attachment(&attachments, 1, "FFN model");
            match image.and_then(|i| model.map(|m| (i, m))) {
                Ok((image, model)) => spawn_local(ffn_segment_loop(request, image, model, device)),
                Err(e) => fail(request, e),
            }
        }
        ToNets::InferEnd { request } => {
            let ended = INFERRING.with(|i| i.borrow_mut().remove(&request));
            if let Some(pool) = ended.and_then(|inf| inf.helpers) {
                pool.post_all(&ToNetsHelper::Unload { run: request });
            }
        }
    }
}

/// An FFN job's image box: `size` (z, y, x) little-endian `f32`s.
fn box_f32(bytes: &[u8], size: [usize; 3]) -> Result<Array3<f32>, String> {
    let n = size.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    if n.and_then(|n| n.checked_mul(4)) != Some(bytes.len()) {
        return Err(format!(
            "FFN image box: {} bytes attached for {}×{}×{} values",
            bytes.len(),
            size[0],
            size[1],
            size[2]
        ));
    }
    let values = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Array3::from_shape_vec((size[0], size[1], size[2]), values)
        .map_err(|e| format!("FFN image box: {e}"))
}

/// Runs an FFN fill, yielding every [`TURN_MS`] for progress and cancel.
async fn ffn_fill_loop(
    request: RequestId,
    image: Array3<f32>,
    model: Vec<u8>,
    seed: [usize; 3],
    max_steps: usize,
    move_threshold: f64,
    device: NetDevice,
) {
    let chosen = match web_gpu::choose(device).await {
        Ok(c) => c,
        Err(e) => return fail(request, e),
    };
    let mut job = match FfnFillJob::new(
        &model,
        &chosen.device,
        image,
        seed,
        max_steps,
        move_threshold,
    ) {
        Ok(j) => j,
        Err(e) => return fail(request, e),
    };
    let mut last_turn = now_ms();
    while let Some(input) = job.next_fov() {
        if let Err(e) = job.step_async(input, &chosen.device).await {
            CANCELLED.with(|c| c.borrow_mut().remove(&request));
            return fail(request, e);
        }
        let (done, total) = job.progress();
        let message = || format!("FFN fill on {}: {done} fields of view", chosen.description);
        if ffn_turn(request, &mut last_turn, (done, total), message).await {
            return to_app(FromWorker::Cancelled { request }, &[]);
        }
    }
    let result = job.finish();
    send(
        &FromNets::FfnFilled {
            request,
            steps: result.steps,
            seed_probability: result.seed_probability,
            kept: result.kept,
            device: chosen.description,
        },
        &[to_buffer(&result.mask)],
    );
}

/// Every [`TURN_MS`]: reports progress and yields. True when the request was cancelled.
async fn ffn_turn(
    request: RequestId,
    last_turn: &mut f64,
    (done, total): (u64, u64),
    message: impl FnOnce() -> String,
) -> bool {
    if now_ms() - *last_turn >= TURN_MS {
        to_app(
            FromWorker::Progress {
                request,
                done,
                total,
                message: message(),
            },
            &[],
        );
        yield_now().await;
        *last_turn = now_ms();
    }
    CANCELLED.with(|c| c.borrow_mut().remove(&request))
}

/// Runs an FFN segmentation, yielding every [`TURN_MS`] for progress and cancel.
async fn ffn_segment_loop(
    request: RequestId,
    image: Array3<f32>,
    model: Vec<u8>,
    device: NetDevice,
) {
    let chosen = match web_gpu::choose(device).await {
        Ok(c) => c,
        Err(e) => return fail(request, e),
    };
    let mut job = match FfnSegmentJob::new(&model, &chosen.device, image, SEGMENT_BLOCK_VOXELS) {
        Ok(j) => j,
        Err(e) => return fail(request, e),
    };
    let mut last_turn = now_ms();
    loop {
        let input = match job.next_fov() {
            Ok(Some(input)) => input,
            Ok(None) => break,
            Err(e) => {
                CANCELLED.with(|c| c.borrow_mut().remove(&request));
                return fail(request, e);
            }
        };
        if let Err(e) = job.step_async(input, &chosen.device).await {
            CANCELLED.with(|c| c.borrow_mut().remove(&request));
            return fail(request, e);
        }
        let message = || {
            format!(
                "FFN segmentation on {}: {}",
                chosen.description,
                job.describe()
            )
        };
        if ffn_turn(request, &mut last_turn, job.progress(), message).await {
            return to_app(FromWorker::Cancelled { request }, &[]);
        }
    }
    let result = match job.finish() {
        Ok(r) => r,
        Err(e) => return fail(request, e),
    };
    send(
        &FromNets::FfnSegmented {
            request,
            objects: result.objects,
            seeds: result.seeds,
            steps: result.steps,
            blocks: job.blocks() as u32,
            device: chosen.description,
        },
        &[to_buffer(&u32_bytes(&result.labels))],
    );
}

/// Training speed: steps per second over the last second (over the run until a second has
/// passed), restarted after a pause.
struct Speed {
    started: f64,
    first: u64,
    since: f64,
    since_step: u64,
    per_s: f64,
}

impl Speed {
    fn new(started: f64, first: u64) -> Self {
        Self {
            started,
            first,
            since: started,
            since_step: first,
            per_s: 0.0,
        }
    }

    fn restart(&mut self, step: u64) {
        (self.since, self.since_step) = (now_ms(), step);
    }

    /// The speed after step `step` ended at `now` (ms).
    fn update(&mut self, now: f64, step: u64) -> f64 {
        if now - self.since >= 1000.0 {
            self.per_s = (step - self.since_step) as f64 / ((now - self.since) / 1000.0);
            (self.since, self.since_step) = (now, step);
        } else if self.per_s == 0.0 && now > self.started {
            self.per_s = (step - self.first) as f64 / ((now - self.started) / 1000.0);
        }
        self.per_s
    }
}

/// The reply when a training step fails.
fn stopped_by(request: RequestId, e: &str) -> FromWorker {
    FromWorker::Failed {
        request,
        error: format!("training stopped: {e}"),
    }
}

/// Runs an FFN training run: steered like a 2D run (pause, resume, stop, cancel), steps
/// and mask scores reported every 100 ms, the model sent at the end.
async fn ffn_train_loop(
    request: RequestId,
    image: Array3<f32>,
    labels: Array3<u32>,
    data_name: String,
    config_json: String,
    init: Option<Vec<u8>>,
    choice: NetDevice,
) {
    let finish = |msg: FromWorker, buffers: &[JsValue]| {
        TRAINING.with(|t| t.borrow_mut().remove(&request));
        CANCELLED.with(|c| c.borrow_mut().remove(&request));
        to_app(msg, buffers);
    };
    let chosen = match web_gpu::choose(choice).await {
        Ok(c) => c,
        Err(error) => return finish(FromWorker::Failed { request, error }, &[]),
    };
    let device = chosen.device.clone().autodiff();
    let job = FfnTrainJob::new(
        image,
        labels,
        &data_name,
        &config_json,
        init.as_deref(),
        &device,
    );
    let mut job = match job {
        Ok(j) => j,
        Err(error) => return finish(FromWorker::Failed { request, error }, &[]),
    };
    let started = now_ms();
    let (first, total) = job.steps();
    to_app(
        FromWorker::TrainStarted {
            request,
            device: chosen.description.clone(),
            total,
            patch: 0,
            fill_radius: Some(job.fill_radius()),
        },
        &[],
    );
    let mut window = (
        0.0f64,
        0u32,
        emstudio_nets::ffn::train::MaskCounts::default(),
    );
    let (mut last_sent, mut last_turn) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
    let mut last_fill = f64::NEG_INFINITY;
    let mut speed = Speed::new(started, first);
    let stopped = loop {
        if now_ms() - last_turn >= TURN_MS {
            yield_now().await;
            last_turn = now_ms();
        }
        if CANCELLED.with(|c| c.borrow().contains(&request)) {
            return finish(FromWorker::Cancelled { request }, &[]);
        }
        let steer = steering(request);
        if steer.stop || job.finished() {
            break steer.stop;
        }
        if steer.paused {
            // Paused, a new place to look at is still filled (the network does not change).
            if let Some(fill) = steer.fill.filter(|_| steer.fill_now) {
                if !live_fill(request, &job, &fill, &chosen.device).await {
                    return finish(FromWorker::Cancelled { request }, &[]);
                }
                last_fill = now_ms();
            }
            sleep_ms(100).await;
            speed.restart(job.steps().0);
            continue;
        }
        let r = match job.step_async().await {
            Ok(r) => r,
            Err(e) => return finish(stopped_by(request, &e), &[]),
        };
        window.0 += f64::from(r.loss);
        window.1 += 1;
        window.2.merge(&r.counts);
        let now = now_ms();
        let steps_per_s = speed.update(now, r.step);
        if now - last_sent >= 100.0 || job.finished() {
            let (sum, n, counts) = std::mem::take(&mut window);
            to_app(
                FromWorker::FfnTrainStep {
                    request,
                    step: r.step,
                    total: r.total,
                    loss: (sum / f64::from(n.max(1))) as f32,
                    precision: counts.precision() as f32,
                    recall: counts.recall() as f32,
                    steps_per_s,
                    preview: job.preview(),
                },
                &[],
            );
            last_sent = now;
        }
        let since = now_ms() - last_fill;
        if let Some(fill) = steer.fill.filter(|_| {
            (steer.fill_now && since >= LIVE_FILL_GAP_MS) || since >= LIVE_FILL_EVERY_MS
        }) {
            if !live_fill(request, &job, &fill, &chosen.device).await {
                return finish(FromWorker::Cancelled { request }, &[]);
            }
            last_fill = now_ms();
            speed.restart(job.steps().0);
        }
    };
    match job.model_bytes_async(&iso_now()).await {
        Ok(bytes) => finish(
            FromWorker::Trained {
                request,
                steps: job.steps().0,
                summary: format!(
                    "{}{}",
                    job.summary((now_ms() - started) / 1000.0),
                    if stopped { " (stopped early)" } else { "" }
                ),
            },
            &[to_buffer(&bytes)],
        ),
        Err(e) => finish(
            FromWorker::Failed {
                request,
                error: format!("could not save the model: {e}"),
            },
            &[],
        ),
    }
}

/// A live fill every this many ms while an FFN run steps (it costs the light preset about
/// 0.8 s on the CPU: a tenth of the run's time).
const LIVE_FILL_EVERY_MS: f64 = 8000.0;
/// At least this long between live fills when the user moves the view.
const LIVE_FILL_GAP_MS: f64 = 1500.0;

/// Fills the object at the live fill box's seed with the run's network as it is now and
/// sends the seed's plane as `FfnTrainFill` (a failure is said in the console: the run goes
/// on). False when the run was cancelled meanwhile.
async fn live_fill(
    request: RequestId,
    job: &FfnTrainJob,
    fill: &(FfnFillBox, Array3<f32>),
    device: &Device,
) -> bool {
    let started = now_ms();
    TRAINING.with(|t| {
        if let Some(s) = t.borrow_mut().get_mut(&request) {
            s.fill_now = false;
        }
    });
    let (at, image) = fill;
    let mut filling = match job.live_fill(image.clone(), at.seed) {
        Ok(f) => f,
        Err(e) => {
            web_sys::console::warn_1(&format!("FFN live fill: {e}").into());
            return true;
        }
    };
    while let Some(input) = filling.next_fov() {
        if let Err(e) = filling.step_async(input, device).await {
            web_sys::console::warn_1(&format!("FFN live fill: {e}").into());
            return true;
        }
        yield_now().await;
        if CANCELLED.with(|c| c.borrow().contains(&request)) {
            return false;
        }
    }
    to_app(
        FromWorker::FfnTrainFill {
            request,
            step: job.steps().0,
            seed: [0, 1, 2].map(|a| at.origin[a] + at.seed[a]),
            origin: at.origin,
            size: at.size,
            probability: filling.plane_probability(at.seed[0]),
            fovs: filling.progress().0 as u32,
            compute_ms: now_ms() - started,
        },
        &[],
    );
    true
}

/// Today's date and time, ISO 8601 (for model provenance).
fn iso_now() -> String {
    String::from(js_sys::Date::new_0().to_iso_string())
}

fn steering(request: RequestId) -> Steering {
    TRAINING.with(|t| t.borrow().get(&request).cloned().unwrap_or_default())
}

/// Sends the prediction of the preview slice as `TrainPreview`; returns the time it took (ms).
async fn send_preview(request: RequestId, job: &TrainJob, z: usize, image: &Array3<f32>) -> f64 {
    let started = now_ms();
    match job.preview_async(image).await {
        Ok(p) => {
            if let Ok(bitmap) = image_bitmap(&p.rgba, p.width, p.height).await {
                to_app(
                    FromWorker::TrainPreview {
                        request,
                        z,
                        step: job.steps_done(),
                        width: p.width,
                        height: p.height,
                    },
                    &[bitmap],
                );
            }
        }
        Err(e) => web_sys::console::warn_1(&format!("training preview: {e}").into()),
    }
    now_ms() - started
}

/// A training run: steps with a yield to the event loop at most every [`TURN_MS`], so steering
/// and cancel are served in between; progress at most every 100 ms and with every validation
/// loss.
async fn train_loop(request: RequestId, data: TrainData, every: u32, choice: NetDevice) {
    let finish = |msg: FromWorker, buffers: &[JsValue]| {
        TRAINING.with(|t| t.borrow_mut().remove(&request));
        CANCELLED.with(|c| c.borrow_mut().remove(&request));
        to_app(msg, buffers);
    };
    let chosen = match web_gpu::choose(choice).await {
        Ok(c) => c,
        Err(error) => return finish(FromWorker::Failed { request, error }, &[]),
    };
    let device = chosen.device.clone().autodiff();
    let mut job = match TrainJob::new(data, &device) {
        Ok(j) => j,
        Err(error) => return finish(FromWorker::Failed { request, error }, &[]),
    };
    job.set_max_binding(chosen.max_binding);
    if chosen.max_binding.is_some() {
        // On a GPU every read drains the queue: read the losses in batches.
        job.read_losses_every(GPU_LOSS_READ_EVERY);
    }
    let first = job.steps_done();
    let started = now_ms();
    to_app(
        FromWorker::TrainStarted {
            request,
            device: chosen.description.clone(),
            total: job.total_steps(),
            patch: job.patch(),
            fill_radius: None,
        },
        &[],
    );
    let (mut sum, mut n, mut last_sent, mut last_turn) =
        (0.0f64, 0u32, f64::NEG_INFINITY, f64::NEG_INFINITY);
    // Previews (a whole-slice inference) may take at most a fifth of the time: the next
    // is due no sooner than four times the last one's duration after it.
    let mut preview_due = f64::NEG_INFINITY;
    let mut speed = Speed::new(started, first);
    loop {
        if now_ms() - last_turn >= TURN_MS {
            yield_now().await;
            last_turn = now_ms();
        }
        if CANCELLED.with(|c| c.borrow().contains(&request)) {
            return finish(FromWorker::Cancelled { request }, &[]);
        }
        let steer = steering(request);
        if steer.preview_now {
            TRAINING.with(|t| {
                if let Some(s) = t.borrow_mut().get_mut(&request) {
                    s.preview_now = false;
                }
            });
            if let Some((z, image)) = &steer.preview {
                let took = send_preview(request, &job, *z, image).await;
                preview_due = now_ms() + 4.0 * took;
            }
        }
        if steer.stop || job.finished() {
            break;
        }
        if steer.paused {
            sleep_ms(100).await;
            speed.restart(job.steps_done());
            continue;
        }
        let r = match job.step_async().await {
            Ok(r) => r,
            Err(e) => return finish(stopped_by(request, &e), &[]),
        };
        sum += r.losses.iter().map(|&l| f64::from(l)).sum::<f64>();
        n += r.losses.len() as u32;
        let now = now_ms();
        let steps_per_s = speed.update(now, r.step);
        // Validation points and the last step always carry read losses (n > 0).
        if n > 0 && (now - last_sent >= 100.0 || r.validation.is_some() || job.finished()) {
            to_app(
                FromWorker::TrainStep {
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
        if let Some((z, image)) = &steer.preview {
            if every > 0 && r.step % u64::from(every) == 0 && now_ms() >= preview_due {
                let took = send_preview(request, &job, *z, image).await;
                preview_due = now_ms() + 4.0 * took;
            }
        }
    }
    // Stopped between two reads: the summary and the saved history count those steps too.
    if let Err(e) = job.read_unread_async().await {
        web_sys::console::warn_1(&format!("reading the last losses: {e}").into());
    }
    let steer = steering(request);
    if let Some((z, image)) = &steer.preview {
        send_preview(request, &job, *z, image).await;
    }
    match job.model_bytes_async(&iso_now()).await {
        Ok(bytes) => finish(
            FromWorker::Trained {
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
        Err(e) => finish(
            FromWorker::Failed {
                request,
                error: format!("could not save the model: {e}"),
            },
            &[],
        ),
    }
}
