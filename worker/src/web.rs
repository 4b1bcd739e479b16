//! Browser glue: the worker's message loop, reading `File`s and fetching URLs, progress and
//! cancellation. Long requests run as async tasks that yield to the event loop after every
//! file, so `Cancel` and render requests are served while a stack loads.

use crate::compute::{self, ComputeError, FilterJob};
use crate::memory::stack_limits;
use crate::nets_link::TrainRequest;
use crate::web_edit;
use crate::web_nets;
use crate::web_pool;
use crate::workspace::{Rendered, Workspace};
use emstudio_core::progress::Progress;
use emstudio_core::stack::{is_stack_file_name, natural_cmp, ExportFormat, Limits, StackBuilder};
use emstudio_protocol::pool::{FromHelper, ToHelper, HELPER_NAME};
use emstudio_protocol::{
    FromWorker, LayerId, LayerKind, RequestId, StackSource, ToWorker, PROTOCOL_VERSION,
};
use emstudio_webmsg::glue::{image_bitmap, js_error, scope, timer, yield_now};
use emstudio_webmsg::{post, receive, to_buffer, Target};
use std::cell::RefCell;
use std::collections::HashSet;
use std::ops::ControlFlow;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{spawn_local, JsFuture};
use web_sys::MessageEvent;

thread_local! {
    pub(crate) static WORKSPACE: RefCell<Workspace> = RefCell::new(Workspace::default());
    static CANCELLED: RefCell<HashSet<RequestId>> = RefCell::new(HashSet::new());
}

pub(crate) fn send(msg: &FromWorker, buffers: &[JsValue]) {
    if let Err(e) = post(Target::Scope(&scope()), msg, buffers) {
        web_sys::console::error_2(&"emstudio worker: could not post a reply".into(), &e);
    }
}

pub(crate) fn fail(request: RequestId, error: String) {
    send(&FromWorker::Failed { request, error }, &[]);
}

/// Takes the cancel flag of `request` (true once if it was cancelled), from the `Cancel`
/// messages seen so far or the shared cancel board.
pub(crate) fn take_cancelled(request: RequestId) -> bool {
    CANCELLED.with(|c| c.borrow_mut().remove(&request)) || web_pool::cancelled_on_board(request)
}

/// Entry point, run when the module is instantiated.
#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
    if scope().name() == HELPER_NAME {
        return crate::web_helper::start();
    }
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
            let started = now_ms();
            match open(request, &name, source, attachments).await {
                Ok(Some(Decoded {
                    mut volume,
                    by: decoded_by,
                    here: decoded_here,
                })) => {
                    if let Some(vs) = voxel_size {
                        volume.set_voxel_size(vs);
                    }
                    match WORKSPACE.with(|w| w.borrow_mut().add(&name, kind, volume)) {
                        Ok(layer) => send(
                            &FromWorker::Opened {
                                request,
                                layer,
                                decoded_by,
                                decoded_here,
                                open_ms: now_ms() - started,
                            },
                            &[],
                        ),
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
            let result = crate::web_label::postprocess(request, layer, markers, params).await;
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
            let req = TrainRequest {
                image,
                label,
                train_slices,
                validation_slices,
            };
            let init = attachments.into_iter().next();
            web_nets::train(
                request,
                req,
                config_json,
                ignore_label,
                init,
                preview_z,
                preview_every,
                device,
            );
        }
        ToWorker::TrainControl { request, control } => web_nets::control(request, control),
        ToWorker::Infer {
            request,
            layer,
            slices,
            region,
            name,
            device,
            views,
        } => {
            let model = attachments.into_iter().next();
            web_nets::infer(request, layer, model, &slices, region, name, device, views);
        }
        ToWorker::FfnFill {
            request,
            layer,
            image,
            seed,
            radius,
            move_threshold,
            device,
        } => {
            let model = attachments.into_iter().next();
            let at = web_nets::FillAt {
                seed,
                radius,
                move_threshold,
            };
            web_nets::ffn_fill(request, layer, image, at, device, model);
        }
        ToWorker::FfnSegment {
            request,
            image,
            region,
            name,
            device,
        } => {
            let model = attachments.into_iter().next();
            web_nets::ffn_segment(request, image, region, name, device, model);
        }
        ToWorker::FfnTrain {
            request,
            image,
            label,
            region,
            config_json,
            device,
        } => {
            let init = attachments.into_iter().next();
            web_nets::ffn_train(request, image, label, region, config_json, device, init);
        }
        ToWorker::FfnPartitions {
            request,
            label,
            lom_radius,
            min_size,
            name,
        } => spawn_local(async move {
            yield_now().await;
            let started = now_ms();
            let mut progress = progress_sender(request, "partitions".into());
            let result = WORKSPACE.with(|w| {
                crate::ffn_link::partitions_volume(
                    &w.borrow(),
                    label,
                    lom_radius,
                    min_size,
                    &mut progress,
                )
            });
            finish_layer(request, &name, LayerKind::Label, started, result);
        }),
        ToWorker::ProbeDevices { request } => web_nets::probe(request),
        ToWorker::CheckModel { request, name } => {
            web_nets::check_model(request, name, attachments.into_iter().next())
        }
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
        ToWorker::Configure {
            helpers,
            shared_cancel,
        } => web_pool::configure(
            helpers,
            shared_cancel
                .then(|| attachments.into_iter().next())
                .flatten(),
        ),
        ToWorker::Cancel { request } => {
            if !web_nets::cancel(request) {
                CANCELLED.with(|c| c.borrow_mut().insert(request));
            }
        }
    }
}

/// Sends a rendered slice as an `ImageBitmap` (decoded here, so the UI thread only draws it).
fn send_rendered(request: RequestId, layer: LayerId, z: usize, r: Rendered) {
    spawn_local(async move {
        match image_bitmap(&r.rgba, r.width, r.height).await {
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

pub(crate) fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// Forwards kernel progress as protocol events, at most every 50 ms. A kernel runs
/// synchronously, so `Cancel` messages queue behind it; when the page is cross-origin
/// isolated the app also marks the request on the shared cancel board, which this reads at
/// every report and stops the kernel there.
pub(crate) fn progress_sender(
    request: RequestId,
    message: String,
) -> impl FnMut(u64, u64) -> ControlFlow<()> {
    let mut last = f64::NEG_INFINITY;
    move |done, total| {
        if web_pool::cancelled_on_board(request) {
            return ControlFlow::Break(());
        }
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
    // A pipeline whose steps each read a bounded number of slices (all of a per-slice one) can
    // go to the helpers in slabs with those neighbours, which gives the same voxels as the
    // whole volume (`FilterJob::split_for`); one that reads the whole volume stays here. The
    // first slab runs here and is timed: a pipeline cheaper than copying its slabs to a helper
    // and back stays here too, and a 3D one then does the rest in one slab.
    let helpers = web_pool::wanted();
    let three_d = !job.per_slice();
    let splittable = job.done_of().1 > 1
        && (job.per_slice() || (job.reach().is_some() && job.split_for(helpers)));
    if splittable {
        // A 3D pipeline is timed on a thin slab (its reach re-read by every slab makes a
        // thick first one costly), per slice read.
        let read = if three_d { job.thin_next_slab() } else { 0 };
        yield_now().await;
        let (more, ms) = WORKSPACE.with(|w| job.step_timed(&w.borrow(), &mut progress, &now_ms))?;
        let slices = if three_d { read } else { job.done_of().0 };
        let voxels = slices * job.shape().slice_len();
        let ms_per_megavoxel = ms / (voxels.max(1) as f64 / 1e6);
        if !more {
            return Ok((job.finish(), steps));
        }
        if ms_per_megavoxel >= POOL_MIN_MS_PER_MEGAVOXEL {
            if let Some(pool) = web_pool::pool().await {
                return filter_in_pool(&pool, request, job, steps).await;
            }
        }
        if three_d {
            job.rest_in_one_slab();
        }
    }
    filter_here(request, job, steps, &mut progress).await
}

/// The rest of a filter run in the data worker, slab by slab, yielding between slabs so
/// `Cancel` is seen.
async fn filter_here(
    request: RequestId,
    mut job: FilterJob,
    steps: String,
    progress: &mut dyn Progress,
) -> Result<(emstudio_core::AnyVolume, String), ComputeError> {
    loop {
        yield_now().await;
        if take_cancelled(request) {
            return Err(ComputeError::Cancelled);
        }
        if !WORKSPACE.with(|w| job.step(&w.borrow(), progress))? {
            return Ok((job.finish(), steps));
        }
    }
}

/// Below this cost a pipeline stays in the data worker: sending a slab to a helper and back
/// costs about 5–8 ms per million voxels on a 2-core laptop-class machine (BENCHMARKS.md,
/// "Parallel work in the browser": a 2D Gaussian at ~10 ms per megavoxel and a 3D Gaussian
/// σ 2 at 7–11 got slower in the pool, a 7×7 median at ~40 and a 5³ median at ~80 faster).
/// The first run of a kernel in a page is timed on V8's baseline code, before its optimised
/// code arrives, and costs 2–3 times more (the 3D Gaussian: 27–33 ms per megavoxel), so the
/// bar sits above that.
const POOL_MIN_MS_PER_MEGAVOXEL: f64 = 35.0;

/// [`apply_filters`] with the pool: slabs go to the helpers, a window of them in flight, and
/// are stored as they come back; `Cancel` is seen between slabs.
async fn filter_in_pool(
    pool: &web_pool::Pool,
    request: RequestId,
    mut job: FilterJob,
    steps: String,
) -> Result<(emstudio_core::AnyVolume, String), ComputeError> {
    job.split_for(pool.size());
    let pipeline_json = job.pipeline_json();
    let total = job.done_of().1 as u64;
    let window = pool.size() * 2;
    let mut in_flight = std::collections::VecDeque::new();
    let mut progress = progress_sender(request, format!("filtering: {steps}"));
    let mut done = job.done_of().0 as u64;
    loop {
        while in_flight.len() < window {
            let Some(slab) = WORKSPACE.with(|w| job.next_slab(&w.borrow()))? else {
                break;
            };
            let (depth, height, width) = slab.input.dim();
            let bytes = match slab.input.as_slice() {
                Some(values) => emstudio_protocol::nets::f32_bytes(values),
                None => emstudio_protocol::nets::f32_bytes(
                    &slab.input.iter().copied().collect::<Vec<f32>>(),
                ),
            };
            let mut attached = vec![to_buffer(&bytes)];
            attached.extend(web_pool::board());
            let (id, promise) = pool.submit_tracked(
                |job| ToHelper::Filter {
                    job,
                    request,
                    pipeline_json: pipeline_json.clone(),
                    keep_from: slab.first,
                    keep: slab.keep.len(),
                    depth,
                    height,
                    width,
                },
                &attached,
            );
            in_flight.push_back(Out {
                weight: slab.keep.len() as f64,
                unit: slab.keep,
                id,
                promise,
            });
        }
        let Some(((id, zs), reply)) = next_reply(
            request,
            &mut in_flight,
            done as f64,
            total as f64,
            &mut progress,
        )
        .await?
        else {
            let helpers = crate::pool::helpers_phrase(pool.size());
            return Ok((job.finish(), format!("{steps} · {helpers}")));
        };
        // A helper stopped by the cancel board answers "cancelled": that is a Cancel.
        if take_cancelled(request) {
            return Err(ComputeError::Cancelled);
        }
        match lost_with_helper(pool, &reply, (id, zs.clone()), &mut in_flight, "filtering") {
            // The lost helper's slab is filtered here; the others' go on.
            Some(LostWork::One(keep)) => {
                done += keep.len() as u64;
                WORKSPACE.with(|w| job.redo(&w.borrow(), keep, &mut progress))?;
                yield_now().await;
                continue;
            }
            // The slabs that were out are filtered here, then the rest.
            Some(LostWork::All(lost)) => {
                for keep in lost {
                    yield_now().await;
                    if take_cancelled(request) {
                        return Err(ComputeError::Cancelled);
                    }
                    WORKSPACE.with(|w| job.redo(&w.borrow(), keep, &mut progress))?;
                }
                return filter_here(request, job, steps, &mut progress).await;
            }
            None => {}
        }
        let reply = reply?;
        let (depth, height, width) = (zs.len(), job.shape().y, job.shape().x);
        match reply.msg {
            FromHelper::Filtered { .. } => {
                let bytes = reply
                    .attachments
                    .first()
                    .and_then(emstudio_webmsg::buffer_bytes)
                    .unwrap_or_default();
                let slab = crate::pool::slab_from_bytes(&bytes, depth, height, width)?;
                job.store(zs, slab.view())?;
            }
            FromHelper::Failed { error, .. } => return Err(ComputeError::Failed(error)),
            other => return Err(format!("a helper answered {other:?}").into()),
        }
        done += depth as u64;
        if progress(done * 1000, total * 1000).is_break() || take_cancelled(request) {
            return Err(ComputeError::Cancelled);
        }
        yield_now().await;
    }
}

/// A job out with a helper: the work it covers (`unit`), its share of the progress bar, its
/// job number and the promise of its reply.
pub(crate) struct Out<U> {
    pub(crate) unit: U,
    pub(crate) weight: f64,
    pub(crate) id: u32,
    pub(crate) promise: js_sys::Promise,
}

/// Work that failed with a lost helper, to be done in the data worker.
pub(crate) enum LostWork<U> {
    /// The lost helper's job: the other helpers go on with theirs.
    One(U),
    /// The last helper was lost: the failed job's work and the rest of what was out.
    All(Vec<U>),
}

/// When `reply` (of job `id`, covering `first`) failed because its helper was lost: says so in
/// the console and returns the work to do in the data worker — that job's alone while other
/// helpers are left, else everything that was out (`first` and the rest of `out`).
pub(crate) fn lost_with_helper<U>(
    pool: &web_pool::Pool,
    reply: &Result<emstudio_webmsg::Envelope<FromHelper>, String>,
    (id, first): (u32, U),
    out: &mut std::collections::VecDeque<Out<U>>,
    doing: &str,
) -> Option<LostWork<U>> {
    let Err(e) = reply else { return None };
    if pool.failure().is_some() {
        web_sys::console::warn_1(&format!("{e}; {doing} the rest in the data worker").into());
        return Some(LostWork::All(
            std::iter::once(first)
                .chain(out.drain(..).map(|o| o.unit))
                .collect(),
        ));
    }
    if !pool.take_lost(id) {
        return None;
    }
    let left = crate::pool::helpers_phrase(pool.size());
    web_sys::console::warn_1(
        &format!("{e}; {doing} its part in the data worker ({left} left)").into(),
    );
    Some(LostWork::One(first))
}

/// Takes the oldest job out with the helpers and waits for its reply, meanwhile moving the
/// progress bar (`done` of `total` weight finished before these jobs) by the helpers' own
/// reports every 100 ms, so a long block shows how far it has got: the job's number and work
/// with its reply. `None` when no job is out; `Err(Cancelled)` when the request is cancelled
/// while it waits.
pub(crate) async fn next_reply<U>(
    request: RequestId,
    out: &mut std::collections::VecDeque<Out<U>>,
    done: f64,
    total: f64,
    progress: &mut dyn Progress,
) -> Result<
    Option<(
        (u32, U),
        Result<emstudio_webmsg::Envelope<FromHelper>, String>,
    )>,
    ComputeError,
> {
    let Some(front) = out.pop_front() else {
        return Ok(None);
    };
    let pool = web_pool::pool().await;
    loop {
        let tick = js_sys::Promise::race(&js_sys::Array::of2(&front.promise, &timer(100)));
        if !matches!(JsFuture::from(tick).await, Ok(v) if v.is_undefined()) {
            break;
        }
        let share = |o: &Out<U>| match pool.as_ref().and_then(|p| p.progress(o.id)) {
            Some((d, t)) if t > 0 => o.weight * (d as f64 / t as f64).min(1.0),
            _ => 0.0,
        };
        let running = share(&front) + out.iter().map(share).sum::<f64>();
        let at = ((done + running) / total.max(1e-9) * 1e6) as u64;
        if progress.report(at, 1_000_000).is_break() || take_cancelled(request) {
            return Err(ComputeError::Cancelled);
        }
    }
    Ok(Some((
        (front.id, front.unit),
        web_pool::reply(front.promise).await,
    )))
}

/// Adds a computed volume as a layer and sends the terminal reply (the summary gets the
/// seconds since `started`).
pub(crate) fn finish_layer(
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

/// How many files are read ahead of the decoder (network and disk overlap decoding).
const READ_AHEAD: usize = 16;

async fn array_buffer(promise: js_sys::Promise) -> Result<JsValue, String> {
    JsFuture::from(promise).await.map_err(|e| js_error(&e))
}

pub(crate) async fn read_attached(file: &JsValue) -> Result<JsValue, String> {
    let blob = file
        .dyn_ref::<web_sys::Blob>()
        .ok_or_else(|| "the attachment is not a file".to_string())?;
    array_buffer(blob.array_buffer()).await
}

pub(crate) async fn fetch_buffer(url: &str) -> Result<JsValue, String> {
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

/// The limits a stack opened now must keep ([`crate::memory`]): measured from this worker's
/// wasm memory and, where the browser tells, the device's RAM.
pub(crate) fn browser_stack_limits() -> Limits {
    let used = wasm_bindgen::memory()
        .dyn_into::<js_sys::WebAssembly::Memory>()
        .map(|m| {
            m.buffer()
                .dyn_into::<js_sys::ArrayBuffer>()
                .map_or(0, |b| b.byte_length())
        })
        .unwrap_or(0);
    let device_gib = js_sys::Reflect::get(&js_sys::global(), &"navigator".into())
        .and_then(|n| js_sys::Reflect::get(&n, &"deviceMemory".into()))
        .ok()
        .and_then(|v| v.as_f64());
    stack_limits(u64::from(used), device_gib)
}

/// How often a long loop reports progress and yields to the event loop, milliseconds.
const TURN_MS: f64 = 50.0;

/// An opened stack and who decoded it.
struct Decoded {
    volume: emstudio_core::AnyVolume,
    /// Helper workers that decoded files (0: the data worker alone).
    by: u32,
    /// Files the data worker decoded after a helper stopped.
    here: u32,
}

/// Reads and decodes a stack; `Ok(None)` when cancelled. Files are read up to
/// [`READ_AHEAD`] ahead of the decoder.
async fn open(
    request: RequestId,
    layer_name: &str,
    source: StackSource,
    attachments: Vec<JsValue>,
) -> Result<Option<Decoded>, String> {
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
    // One file gains nothing from a helper (its pages would only be copied once more).
    if order.len() > 1 {
        if let Some(pool) = web_pool::pool().await {
            let files = OpenFiles {
                names: &names,
                order: &order,
                source: &source,
                attachments: &attachments,
            };
            return open_in_pool(&pool, request, layer_name, files).await;
        }
    }
    let files = OpenFiles {
        names: &names,
        order: &order,
        source: &source,
        attachments: &attachments,
    };
    // Made at the first file, so the memory left is measured after any stack opened beside this
    // one has allocated (opens of a dataset's layers run at the same time).
    let mut builder: Option<StackBuilder> = None;
    let mut turns = OpenTurns::new(request, layer_name, order.len());
    if !decode_here(request, &files, 0..order.len(), &mut builder, &mut turns).await? {
        return Ok(None);
    }
    finish_stack(builder).map(|volume| {
        Some(Decoded {
            volume,
            by: 0,
            here: 0,
        })
    })
}

/// Progress of an open, sent (and the event loop let in) at most every [`TURN_MS`]: each
/// message and each yield costs the worker a few milliseconds when its module is large
/// (BENCHMARKS.md).
struct OpenTurns<'a> {
    request: RequestId,
    layer_name: &'a str,
    total: usize,
    last_turn: f64,
}

impl<'a> OpenTurns<'a> {
    fn new(request: RequestId, layer_name: &'a str, total: usize) -> Self {
        Self {
            request,
            layer_name,
            total,
            last_turn: now_ms(),
        }
    }

    /// File `done` (0-based, in stack order) was added to the stack.
    async fn file_done(&mut self, done: usize, name: &str) {
        if now_ms() - self.last_turn >= TURN_MS || done + 1 == self.total {
            send(
                &FromWorker::Progress {
                    request: self.request,
                    done: done as u64 + 1,
                    total: self.total as u64,
                    message: format!("{}: read {name}", self.layer_name),
                },
                &[],
            );
            yield_now().await;
            self.last_turn = now_ms();
        }
    }
}

/// The assembled stack (the builder is made at the first file; none means no file came).
fn finish_stack(builder: Option<StackBuilder>) -> Result<emstudio_core::AnyVolume, String> {
    builder
        .unwrap_or_else(|| StackBuilder::new(0, Limits::default()))
        .finish()
        .map_err(|e| e.to_string())
}

/// The files of a stack being opened, in stack order.
struct OpenFiles<'a> {
    names: &'a [String],
    order: &'a [usize],
    source: &'a StackSource,
    attachments: &'a [JsValue],
}

impl OpenFiles<'_> {
    /// Hands file `k` (in stack order) to a helper: the `File` attached, or its URL; the job
    /// number and the promise of its reply.
    fn submit(&self, pool: &web_pool::Pool, k: usize, limits: Limits) -> (u32, js_sys::Promise) {
        let i = self.order[k];
        let name = self.names[i].clone();
        let (url, attached) = match self.source {
            StackSource::Urls { urls, .. } => (urls.get(i).cloned(), None),
            StackSource::Attached { .. } => (None, self.attachments.get(i).cloned()),
        };
        let attachments: Vec<JsValue> = attached.into_iter().collect();
        pool.submit_tracked(
            |job| ToHelper::Decode {
                job,
                name,
                url,
                limits,
            },
            &attachments,
        )
    }
}

/// Reads and decodes files `range` (in stack order) here, in the data worker, into `builder`;
/// `false` when cancelled.
async fn decode_here(
    request: RequestId,
    files: &OpenFiles<'_>,
    range: std::ops::Range<usize>,
    builder: &mut Option<StackBuilder>,
    turns: &mut OpenTurns<'_>,
) -> Result<bool, String> {
    let count = files.order.len();
    let to = range.end.min(count);
    let mut reading: std::collections::VecDeque<js_sys::Promise> = files.order[range.start..to]
        .iter()
        .take(READ_AHEAD)
        .map(|&i| start_read(files.source, files.attachments, i))
        .collect();
    for done in range.start..to {
        if take_cancelled(request) {
            return Ok(false);
        }
        let name = &files.names[files.order[done]];
        let promise = reading
            .pop_front()
            .ok_or_else(|| format!("{name}: internal error, no read in flight"))?;
        if let Some(&next) = files.order[..to].get(done + READ_AHEAD) {
            reading.push_back(start_read(files.source, files.attachments, next));
        }
        let buffer = JsFuture::from(promise)
            .await
            .map_err(|e| format!("{name}: could not read the file ({})", js_error(&e)))?;
        let bytes = js_sys::Uint8Array::new(&buffer).to_vec();
        builder
            .get_or_insert_with(|| StackBuilder::new(count, browser_stack_limits()))
            .push(name, &bytes)
            .map_err(|e| e.to_string())?;
        turns.file_done(done, name).await;
    }
    Ok(true)
}

/// Jobs per helper kept in flight (reading overlaps decoding; results are taken in order).
const JOBS_PER_HELPER: usize = 64;
/// Files in flight at least, whatever the pool's size: reading small files from the browser's
/// cache or the network is bound by requests in flight, not by decoding.
const MIN_IN_FLIGHT: usize = 128;

/// [`open`] with the pool: helpers read and decode the files in parallel, the stack takes
/// their pages in order (with the same checks as a file decoded here). A file whose helper was
/// lost is decoded here while the other helpers go on; when the last helper is lost, the files
/// from the first one not taken yet are decoded here. Files decoded here are counted.
async fn open_in_pool(
    pool: &web_pool::Pool,
    request: RequestId,
    layer_name: &str,
    files: OpenFiles<'_>,
) -> Result<Option<Decoded>, String> {
    let limits = browser_stack_limits();
    let count = files.order.len();
    let helpers = pool.size() as u32;
    // Made at the first file (see `open`).
    let mut builder: Option<StackBuilder> = None;
    let window = (pool.size() * JOBS_PER_HELPER).max(MIN_IN_FLIGHT);
    let mut jobs: std::collections::VecDeque<(u32, js_sys::Promise)> = (0..count.min(window))
        .map(|k| files.submit(pool, k, limits))
        .collect();
    let mut turns = OpenTurns::new(request, layer_name, count);
    let mut here = 0u32;
    let mut said = String::new();
    for k in 0..count {
        if take_cancelled(request) {
            return Ok(None);
        }
        let name = &files.names[files.order[k]];
        let (job, promise) = jobs
            .pop_front()
            .ok_or_else(|| format!("{name}: internal error, no job in flight"))?;
        if k + window < count {
            jobs.push_back(files.submit(pool, k + window, limits));
        }
        let reply = match web_pool::reply(promise).await {
            Err(e) if pool.failure().is_some() => {
                web_sys::console::warn_1(
                    &format!("{name}: {e}; decoding the rest in the data worker").into(),
                );
                if !decode_here(request, &files, k..count, &mut builder, &mut turns).await? {
                    return Ok(None);
                }
                return finish_stack(builder).map(|volume| {
                    Some(Decoded {
                        volume,
                        // Files the helpers decoded before it count only when taken.
                        by: if k as u32 == here { 0 } else { helpers },
                        here: here + (count - k) as u32,
                    })
                });
            }
            Err(e) if pool.take_lost(job) => {
                // Said once per lost helper, not for each of its files.
                if e != said {
                    web_sys::console::warn_1(
                        &format!(
                            "{name}: {e}; decoding its files in the data worker ({} left)",
                            crate::pool::helpers_phrase(pool.size())
                        )
                        .into(),
                    );
                    said = e;
                }
                if !decode_here(request, &files, k..k + 1, &mut builder, &mut turns).await? {
                    return Ok(None);
                }
                here += 1;
                continue;
            }
            reply => reply.map_err(|e| format!("{name}: {e}"))?,
        };
        match reply.msg {
            FromHelper::Decoded { format, pages, .. } => {
                let pages = pages
                    .iter()
                    .zip(
                        reply
                            .attachments
                            .iter()
                            .chain(std::iter::repeat(&JsValue::NULL)),
                    )
                    .map(|(&shape, buffer)| {
                        let bytes = emstudio_webmsg::buffer_bytes(buffer).unwrap_or_default();
                        crate::pool::page_from_bytes(name, shape, &bytes)
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                builder
                    .get_or_insert_with(|| StackBuilder::new(count, browser_stack_limits()))
                    .push_decoded(name, format, pages)
                    .map_err(|e| e.to_string())?;
            }
            FromHelper::Failed { error, .. } => return Err(error),
            other => return Err(format!("{name}: a helper answered {other:?}")),
        }
        turns.file_done(k, name).await;
    }
    finish_stack(builder).map(|volume| {
        Some(Decoded {
            volume,
            by: helpers,
            here,
        })
    })
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
