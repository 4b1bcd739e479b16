//! The data worker's link to the network worker (`nets-worker/`): starts it on the first
//! network request, queues messages until it is ready, sends each job the slices it needs,
//! passes its replies for the app on unchanged, and assembles inferred slices into layers.
//!
//! If the network worker cannot start (its script or wasm fails to load) or dies, every
//! network request in flight fails with that reason and the next request tries again.

use crate::compute::ComputeError;
use crate::ffn_link::{
    fill_box, image_box, proposal, segment_box, segmentation_volume, train_box, FillBox,
    MAX_FILL_STEPS,
};
use crate::nets_link::{preview_image, train_inputs, InferPlan, ModelSummary, TrainRequest};
use crate::web::{fail, finish_layer, now_ms, send, WORKSPACE};
use emstudio_protocol::nets::{
    f32_bytes, plane_f32, plane_u32, u32_bytes, FfnFillBox, FromNets, ToNets,
};
use emstudio_protocol::{
    FfnFillAt, FromWorker, LayerId, LayerKind, NetDevice, Region, RequestId, TrainControl,
    PROTOCOL_VERSION,
};
use emstudio_webmsg::{buffer_bytes, post, receive, to_buffer, Target};
use std::cell::RefCell;
use std::collections::HashMap;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{MessageEvent, Worker, WorkerOptions, WorkerType};

/// The network worker's script, next to this worker's.
const SCRIPT: &str = "./nets_worker.js";

enum Link {
    Off,
    Starting {
        worker: Worker,
        queue: Vec<(ToNets, Vec<JsValue>)>,
    },
    Ready(Worker),
}

/// A network job in flight.
enum Job {
    /// A `ProbeDevices` or `CheckModel` request: the reply passes through.
    Probe,
    /// A training run on this image layer.
    Train { image: LayerId },
    /// An FFN fill for a label layer, in this box of the stack.
    FfnFill {
        layer: LayerId,
        fill: Box<FillBox>,
        started: f64,
    },
    /// An FFN training run on this image layer.
    FfnTrain { image: LayerId },
    /// An FFN segmentation of this box of an image layer.
    FfnSegment {
        image: LayerId,
        origin: [usize; 3],
        size: [usize; 3],
        name: String,
        started: f64,
    },
    /// An inference run.
    Infer {
        plan: Box<InferPlan>,
        name: String,
        started: f64,
        model: Option<ModelSummary>,
    },
}

thread_local! {
    static LINK: RefCell<Link> = const { RefCell::new(Link::Off) };
    static JOBS: RefCell<HashMap<RequestId, Job>> = RefCell::new(HashMap::new());
}

fn js_text(v: &JsValue) -> String {
    js_sys::Reflect::get(v, &"message".into())
        .ok()
        .and_then(|m| m.as_string())
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| "its script could not be loaded".into())
}

/// Fails every job in flight and forgets the worker (the next request starts a new one).
fn lost(reason: &str) {
    LINK.with(|l| {
        if let Link::Starting { worker, .. } | Link::Ready(worker) = &*l.borrow() {
            worker.terminate();
        }
        *l.borrow_mut() = Link::Off;
    });
    let jobs: Vec<RequestId> = JOBS.with(|j| j.borrow_mut().drain().map(|(r, _)| r).collect());
    for request in jobs {
        fail(request, format!("the network worker stopped: {reason}"));
    }
}

fn start_worker() -> Result<Worker, String> {
    let options = WorkerOptions::new();
    options.set_type(WorkerType::Module);
    let worker = Worker::new_with_options(SCRIPT, &options)
        .map_err(|e| format!("could not start the network worker: {}", js_text(&e)))?;
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(|event: MessageEvent| {
        let fatal = js_sys::Reflect::get(&event.data(), &"fatal".into())
            .ok()
            .and_then(|f| f.as_string());
        if let Some(reason) = fatal {
            return lost(&format!("its module could not be loaded ({reason})"));
        }
        match receive::<FromNets>(&event) {
            Ok(env) => from_nets(env.msg, env.attachments),
            Err(e) => lost(&format!("it sent a malformed message ({e})")),
        }
    });
    worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
    let on_error = Closure::<dyn FnMut(JsValue)>::new(|event: JsValue| {
        if let Some(e) = event.dyn_ref::<web_sys::Event>() {
            e.prevent_default();
        }
        lost(&js_text(&event));
    });
    worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    on_error.forget();
    Ok(worker)
}

/// Sends `msg` to the network worker, starting it first if needed.
fn to_nets(request: RequestId, msg: ToNets, attachments: Vec<JsValue>) {
    let started = LINK.with(|l| -> Result<(), String> {
        let mut link = l.borrow_mut();
        match &mut *link {
            Link::Ready(worker) => post(Target::Worker(worker), &msg, &attachments)
                .map_err(|e| format!("could not reach the network worker: {}", js_text(&e))),
            Link::Starting { queue, .. } => {
                queue.push((msg, attachments));
                Ok(())
            }
            Link::Off => {
                let worker = start_worker()?;
                *link = Link::Starting {
                    worker,
                    queue: vec![(msg, attachments)],
                };
                Ok(())
            }
        }
    });
    if let Err(e) = started {
        JOBS.with(|j| j.borrow_mut().remove(&request));
        fail(request, e);
    }
}

/// `ProbeDevices`: the network worker looks for WebGPU.
pub fn probe(request: RequestId) {
    JOBS.with(|j| j.borrow_mut().insert(request, Job::Probe));
    let helpers = crate::web_pool::wanted() as u32;
    to_nets(request, ToNets::ProbeDevices { request, helpers }, vec![]);
}

/// `CheckModel`: the network worker reads the attached model file.
pub fn check_model(request: RequestId, name: String, model: Option<JsValue>) {
    let Some(model) = model else {
        return fail(request, format!("{name}: no model file was attached"));
    };
    JOBS.with(|j| j.borrow_mut().insert(request, Job::Probe));
    to_nets(request, ToNets::CheckModel { request, name }, vec![model]);
}

/// `Train`: checks the layers, then sends the slices (and the model to fine-tune).
#[allow(clippy::too_many_arguments)]
pub fn train(
    request: RequestId,
    req: TrainRequest,
    config_json: String,
    ignore_label: Option<u32>,
    init: Option<JsValue>,
    preview_z: Option<usize>,
    preview_every: u32,
    device: NetDevice,
) {
    let inputs = match WORKSPACE.with(|w| train_inputs(&w.borrow(), &req)) {
        Ok(i) => i,
        Err(e) => return fail(request, e),
    };
    let mut buffers = Vec::new();
    for s in inputs.train.iter().chain(&inputs.validation) {
        buffers.push(to_buffer(&f32_bytes(&s.image)));
        buffers.push(to_buffer(&u32_bytes(&s.labels)));
    }
    let has_init = init.is_some();
    buffers.extend(init);
    JOBS.with(|j| {
        j.borrow_mut()
            .insert(request, Job::Train { image: req.image })
    });
    to_nets(
        request,
        ToNets::Train {
            request,
            train: inputs.train.iter().map(|s| s.plane).collect(),
            validation: inputs.validation.iter().map(|s| s.plane).collect(),
            config_json,
            ignore_label,
            data_names: inputs.data_names,
            init: has_init,
            preview_every,
            device,
        },
        buffers,
    );
    set_preview(request, preview_z, false);
}

/// Sends the image of preview slice `z` (or stops previews); `now`: preview it at once.
fn set_preview(request: RequestId, z: Option<usize>, now: bool) {
    let Some(image) = JOBS.with(|j| match j.borrow().get(&request) {
        Some(Job::Train { image }) => Some(*image),
        _ => None,
    }) else {
        return;
    };
    let (slice, buffers) = match z.map(|z| WORKSPACE.with(|w| preview_image(&w.borrow(), image, z)))
    {
        Some(Ok((plane, values))) => (z.map(|z| (z, plane)), vec![to_buffer(&f32_bytes(&values))]),
        Some(Err(e)) => {
            web_sys::console::warn_1(&format!("training preview: {e}").into());
            (None, vec![])
        }
        None => (None, vec![]),
    };
    to_nets(
        request,
        ToNets::Preview {
            request,
            slice,
            now,
        },
        buffers,
    );
}

/// Cuts the box of an FFN run's live fill around `at` and sends it (none: stop the fills).
/// A box that cannot be cut is said in the console; the run goes on.
fn set_live_fill(request: RequestId, at: Option<FfnFillAt>) {
    let Some(image) = JOBS.with(|j| match j.borrow().get(&request) {
        Some(Job::FfnTrain { image }) => Some(*image),
        _ => None,
    }) else {
        return;
    };
    let cut = at.map(|at| WORKSPACE.with(|w| image_box(&w.borrow(), image, at.voxel, at.radius)));
    let (fill, buffers) = match cut {
        Some(Ok(b)) => (
            Some(FfnFillBox {
                origin: b.origin,
                size: b.size,
                seed: b.seed,
            }),
            vec![to_buffer(&f32_bytes(&b.values))],
        ),
        Some(Err(e)) => {
            web_sys::console::warn_1(&format!("FFN live fill: {e}").into());
            (None, vec![])
        }
        None => (None, vec![]),
    };
    to_nets(request, ToNets::FfnFillBox { request, fill }, buffers);
}

/// `TrainControl`.
pub fn control(request: RequestId, control: TrainControl) {
    match control {
        TrainControl::PreviewSlice(z) => set_preview(request, z, true),
        TrainControl::FfnFillAt(at) => set_live_fill(request, at),
        other => to_nets(
            request,
            ToNets::Control {
                request,
                control: other,
            },
            vec![],
        ),
    }
}

/// `Infer`: checks the layer, then loads the model in the network worker; `views`
/// orientations are averaged per tile.
#[allow(clippy::too_many_arguments)]
pub fn infer(
    request: RequestId,
    layer: LayerId,
    model: Option<JsValue>,
    slices: &[usize],
    region: Option<Region>,
    name: String,
    device: NetDevice,
    views: u8,
) {
    let Some(model) = model else {
        return fail(request, "no model file was attached".into());
    };
    let plan = match WORKSPACE.with(|w| InferPlan::new(&w.borrow(), layer, slices, region)) {
        Ok(p) => p.averaged_over(views),
        Err(e) => return fail(request, e),
    };
    send(
        &FromWorker::Progress {
            request,
            done: 0,
            total: plan.done_of().1 as u64,
            message: "loading the model".into(),
        },
        &[],
    );
    JOBS.with(|j| {
        j.borrow_mut().insert(
            request,
            Job::Infer {
                plan: Box::new(plan),
                name,
                started: now_ms(),
                model: None,
            },
        )
    });
    to_nets(
        request,
        ToNets::InferStart {
            request,
            device,
            views,
            helpers: crate::web_pool::wanted() as u32,
        },
        vec![model],
    );
}

/// Where and how an FFN fill runs.
pub struct FillAt {
    /// The clicked voxel.
    pub seed: [usize; 3],
    /// The box's half-size.
    pub radius: [usize; 3],
    /// The field of view's move threshold.
    pub move_threshold: f32,
}

/// `FfnFill`: cuts the image box around the click and sends it with the model.
pub fn ffn_fill(
    request: RequestId,
    layer: LayerId,
    image: LayerId,
    at: FillAt,
    device: NetDevice,
    model: Option<JsValue>,
) {
    let FillAt {
        seed,
        radius,
        move_threshold,
    } = at;
    let Some(model) = model else {
        return fail(request, "FFN fill: no model file was attached".into());
    };
    let fill = match WORKSPACE.with(|w| fill_box(&w.borrow(), layer, image, seed, radius)) {
        Ok(f) => f,
        Err(e) => return fail(request, e),
    };
    let msg = ToNets::FfnFill {
        request,
        size: fill.size,
        seed: fill.seed,
        max_steps: MAX_FILL_STEPS,
        move_threshold,
        device,
    };
    let image = to_buffer(&f32_bytes(&fill.values));
    send(
        &FromWorker::Progress {
            request,
            done: 0,
            total: 0,
            message: "FFN fill: loading the model".into(),
        },
        &[],
    );
    JOBS.with(|j| {
        j.borrow_mut().insert(
            request,
            Job::FfnFill {
                layer,
                fill: Box::new(FillBox {
                    values: Vec::new(),
                    ..fill
                }),
                started: now_ms(),
            },
        )
    });
    to_nets(request, msg, vec![image, model]);
}

/// Makes the proposal of a finished FFN fill and answers `FfnProposed`.
fn ffn_filled(
    request: RequestId,
    steps: u32,
    seed_probability: f32,
    kept: bool,
    device: String,
    mask: &[u8],
) {
    let Some(Job::FfnFill {
        layer,
        fill,
        started,
    }) = JOBS.with(|j| j.borrow_mut().remove(&request))
    else {
        return;
    };
    let made = if kept {
        proposal(&fill, mask)
    } else {
        Ok(None)
    };
    let made = match made {
        Ok(p) => p,
        Err(e) => return fail(request, e),
    };
    let (voxels, bounds) = match &made {
        Some(p) => (p.voxels, p.bounds()),
        None => (0, [fill.origin, fill.origin]),
    };
    if let Some(p) = made {
        WORKSPACE.with(|w| w.borrow_mut().set_proposal(layer, p));
    }
    send(
        &FromWorker::FfnProposed {
            request,
            layer,
            voxels,
            bounds,
            steps,
            seed_probability,
            device,
            compute_ms: now_ms() - started,
        },
        &[],
    );
}

/// `FfnTrain`: cuts the box of image and labels and starts the run (from `init`, a model
/// file to fine-tune, when given).
pub fn ffn_train(
    request: RequestId,
    image: LayerId,
    label: LayerId,
    region: Option<[[usize; 3]; 2]>,
    config_json: String,
    device: NetDevice,
    init: Option<JsValue>,
) {
    let b = match WORKSPACE.with(|w| train_box(&w.borrow(), image, label, region)) {
        Ok(b) => b,
        Err(e) => return fail(request, e),
    };
    JOBS.with(|j| j.borrow_mut().insert(request, Job::FfnTrain { image }));
    let mut buffers = vec![
        to_buffer(&f32_bytes(&b.image)),
        to_buffer(&u32_bytes(&b.labels)),
    ];
    let has_init = init.is_some();
    buffers.extend(init);
    to_nets(
        request,
        ToNets::FfnTrain {
            request,
            size: b.size,
            config_json,
            data_name: b.name,
            init: has_init,
            device,
        },
        buffers,
    );
}

/// `FfnSegment`: cuts the box and sends it with the model.
pub fn ffn_segment(
    request: RequestId,
    image: LayerId,
    region: Option<[[usize; 3]; 2]>,
    name: String,
    device: NetDevice,
    model: Option<JsValue>,
) {
    let Some(model) = model else {
        return fail(
            request,
            "FFN segmentation: no model file was attached".into(),
        );
    };
    let b = match WORKSPACE.with(|w| segment_box(&w.borrow(), image, region)) {
        Ok(b) => b,
        Err(e) => return fail(request, e),
    };
    let (origin, size) = (b.origin, b.size);
    send(
        &FromWorker::Progress {
            request,
            done: 0,
            total: 0,
            message: "FFN segmentation: loading the model, finding seeds".into(),
        },
        &[],
    );
    JOBS.with(|j| {
        j.borrow_mut().insert(
            request,
            Job::FfnSegment {
                image,
                origin,
                size,
                name,
                started: now_ms(),
            },
        )
    });
    let boxed = to_buffer(&f32_bytes(&b.values));
    to_nets(
        request,
        ToNets::FfnSegment {
            request,
            size,
            device,
        },
        vec![boxed, model],
    );
}

/// Adds the label layer of a finished FFN segmentation.
fn ffn_segmented(request: RequestId, summary: String, labels: &[u8]) {
    let Some(Job::FfnSegment {
        image,
        origin,
        size,
        name,
        started,
    }) = JOBS.with(|j| j.borrow_mut().remove(&request))
    else {
        return;
    };
    let made = emstudio_protocol::nets::plane_u32(
        "FFN segmentation labels",
        emstudio_protocol::nets::Plane::single(size[0] * size[1], size[2]),
        labels,
    )
    .map_err(|e| e.to_string())
    .and_then(|ids| WORKSPACE.with(|w| segmentation_volume(&w.borrow(), image, origin, size, &ids)))
    .map(|volume| (volume, summary))
    .map_err(ComputeError::from);
    finish_layer(request, &name, LayerKind::Label, started, made);
}

/// `Cancel` of a network job; false when `request` is not one.
pub fn cancel(request: RequestId) -> bool {
    let job = JOBS.with(|j| {
        let mut jobs = j.borrow_mut();
        match jobs.get(&request) {
            Some(
                Job::Train { .. }
                | Job::FfnTrain { .. }
                | Job::FfnFill { .. }
                | Job::FfnSegment { .. },
            ) => Some(false),
            Some(Job::Infer { .. }) => {
                jobs.remove(&request);
                Some(true)
            }
            Some(Job::Probe) | None => None,
        }
    });
    match job {
        // The training loop and the fill answer `Cancelled` themselves.
        Some(false) => to_nets(request, ToNets::Cancel { request }, vec![]),
        Some(true) => {
            to_nets(request, ToNets::InferEnd { request }, vec![]);
            send(&FromWorker::Cancelled { request }, &[]);
        }
        None => return false,
    }
    true
}

fn from_nets(msg: FromNets, attachments: Vec<JsValue>) {
    match msg {
        FromNets::Ready { version } => {
            if version != PROTOCOL_VERSION {
                return lost(&format!(
                    "it speaks protocol {version}, this worker {PROTOCOL_VERSION}: reload the page"
                ));
            }
            let failed = LINK.with(|l| {
                let link = std::mem::replace(&mut *l.borrow_mut(), Link::Off);
                let Link::Starting { worker, queue } = link else {
                    *l.borrow_mut() = link;
                    return None;
                };
                let mut failed = None;
                for (msg, att) in queue {
                    if let Err(e) = post(Target::Worker(&worker), &msg, &att) {
                        failed = Some(js_text(&e));
                    }
                }
                *l.borrow_mut() = Link::Ready(worker);
                failed
            });
            if let Some(e) = failed {
                lost(&e);
            }
        }
        FromNets::App(msg) => {
            if msg.is_terminal() {
                if let Some(request) = msg.request() {
                    JOBS.with(|j| j.borrow_mut().remove(&request));
                }
            }
            send(&msg, &attachments);
        }
        FromNets::FfnFilled {
            request,
            steps,
            seed_probability,
            kept,
            device,
        } => {
            let mask = attachments
                .first()
                .and_then(buffer_bytes)
                .unwrap_or_default();
            ffn_filled(request, steps, seed_probability, kept, device, &mask);
        }
        FromNets::FfnSegmented {
            request,
            objects,
            seeds,
            steps,
            blocks,
            device,
        } => {
            let labels = attachments
                .first()
                .and_then(buffer_bytes)
                .unwrap_or_default();
            let in_blocks = match blocks {
                0 | 1 => String::new(),
                n => format!(" in {n} blocks along z"),
            };
            let summary = format!(
                "{objects} objects from {seeds} seeds ({steps} fields of view){in_blocks} on {device}"
            );
            ffn_segmented(request, summary, &labels);
        }
        FromNets::InferReady {
            request,
            arch,
            steps,
            classes,
            device,
        } => {
            let known = JOBS.with(|j| match j.borrow_mut().get_mut(&request) {
                Some(Job::Infer { model, .. }) => {
                    *model = Some(ModelSummary {
                        arch,
                        steps,
                        classes,
                        device,
                    });
                    true
                }
                _ => false,
            });
            if known {
                next_slice(request);
            } else {
                to_nets(request, ToNets::InferEnd { request }, vec![]);
            }
        }
        FromNets::Inferred {
            request,
            index: _,
            plane,
            tiles,
            tile_side,
        } => {
            let bytes = attachments
                .first()
                .and_then(buffer_bytes)
                .unwrap_or_default();
            let stored = JOBS.with(|j| match j.borrow_mut().get_mut(&request) {
                Some(Job::Infer { plan, model, .. }) => {
                    let classes = model.as_ref().is_some_and(|m| m.classes);
                    let what = "predicted slice";
                    plan.count_tiles(tiles, tile_side);
                    Some(if classes {
                        plane_u32(what, plane, &bytes)
                            .map_err(|e| e.to_string())
                            .and_then(|v| plan.store_classes(v))
                    } else {
                        plane_f32(what, plane, &bytes)
                            .map_err(|e| e.to_string())
                            .and_then(|v| plan.store_probability(v))
                    })
                }
                _ => None,
            });
            match stored {
                // Cancelled meanwhile.
                None => {}
                Some(Ok(true)) => next_slice(request),
                Some(Ok(false)) => finish_infer(request),
                Some(Err(e)) => {
                    JOBS.with(|j| j.borrow_mut().remove(&request));
                    to_nets(request, ToNets::InferEnd { request }, vec![]);
                    fail(request, e);
                }
            }
        }
    }
}

/// Sends the next slice of an inference run, with progress.
fn next_slice(request: RequestId) {
    let next = JOBS.with(|j| match j.borrow().get(&request) {
        Some(Job::Infer { plan, model, .. }) => {
            let (done, total) = plan.done_of();
            let device = model.as_ref().map_or(String::new(), |m| m.device.clone());
            Some((
                WORKSPACE.with(|w| plan.next_image(&w.borrow())),
                plan.image_plane(),
                done,
                total,
                device,
            ))
        }
        _ => None,
    });
    let Some((image, plane, done, total, device)) = next else {
        return;
    };
    send(
        &FromWorker::Progress {
            request,
            done: done as u64,
            total: total as u64,
            message: format!("inferring on {device}"),
        },
        &[],
    );
    match image {
        Ok(Some(values)) => to_nets(
            request,
            ToNets::InferSlice {
                request,
                index: done,
                plane,
            },
            vec![to_buffer(&f32_bytes(&values))],
        ),
        Ok(None) => finish_infer(request),
        Err(e) => {
            JOBS.with(|j| j.borrow_mut().remove(&request));
            to_nets(request, ToNets::InferEnd { request }, vec![]);
            fail(request, e);
        }
    }
}

/// Adds the inferred layer and sends the terminal reply.
fn finish_infer(request: RequestId) {
    to_nets(request, ToNets::InferEnd { request }, vec![]);
    let Some(Job::Infer {
        plan,
        name,
        started,
        model: Some(model),
    }) = JOBS.with(|j| j.borrow_mut().remove(&request))
    else {
        return;
    };
    let result = WORKSPACE
        .with(|w| plan.finish(&w.borrow(), &model))
        .map(|(volume, summary)| (volume, format!("{summary} on {}", model.device)))
        .map_err(ComputeError::from);
    let kind = if model.classes {
        LayerKind::Label
    } else {
        LayerKind::Image
    };
    finish_layer(request, &name, kind, started, result);
}
