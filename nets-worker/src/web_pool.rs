//! The network worker's CPU helpers (browser side): more instances of this module
//! ([`crate::web_helper`]) that run batches of tiles through a model side by side when
//! inference runs on the CPU, where one worker uses one core.
//!
//! The pool starts with the first CPU inference run, sized by the data worker's helper count
//! (the app's `?workers=N`; 0 keeps all work here), and every run loads its model into each
//! helper. A slice's batches ([`emstudio_nets::infer::TiledPrediction::batch_input`]) go out
//! with a window of two per helper and are blended here in order, so the prediction is the one
//! this worker would compute alone, bit for bit. A batch whose helper stops is sent again to
//! the helpers left (through [`emstudio_webmsg::pool`]); when none is left, or one cannot start,
//! the pool is off and the slice is computed here.

use crate::jobs::{InferEngine, Prediction};
use emstudio_nets::infer::TiledPrediction;
use emstudio_protocol::nets::{
    f32_bytes, plane_f32, FromNetsHelper, Plane, ToNetsHelper, NETS_HELPER_NAME,
};
use emstudio_protocol::RequestId;
use emstudio_webmsg::pool::{reply, started, LazyPool};
use emstudio_webmsg::{buffer_bytes, to_buffer};
use ndarray::Array3;
use std::collections::VecDeque;
use std::rc::Rc;

/// The network worker's CPU helpers.
pub(crate) type Pool = emstudio_webmsg::pool::Pool<FromNetsHelper>;

/// The script that starts a worker of this module.
const SCRIPT: &str = "./nets_worker.js";
/// How long helpers may take to start (this module is large) before the pool is given up.
const START_TIMEOUT_MS: i32 = 60_000;

thread_local! {
    static POOL: LazyPool<FromNetsHelper> = const { LazyPool::new() };
}

/// The pool with `model` loaded in every helper for inference run `run`, starting `size`
/// helpers on first use; `None` (compute here) when `size` is 0 or the helpers failed.
pub(crate) async fn load(run: RequestId, model: &[u8], size: usize) -> Option<Rc<Pool>> {
    let pool = started(&POOL, SCRIPT, NETS_HELPER_NAME, size, START_TIMEOUT_MS).await?;
    let loading: Vec<js_sys::Promise> = pool
        .helper_indices()
        .into_iter()
        .map(|i| {
            pool.submit_to(
                i,
                |job| ToNetsHelper::Load { job, run },
                &[to_buffer(model)],
            )
        })
        .collect();
    for promise in loading {
        let failure = match reply::<FromNetsHelper>(promise).await {
            Ok(env) => match env.msg {
                FromNetsHelper::Loaded { .. } => continue,
                FromNetsHelper::Failed { error, .. } => error,
                other => format!("unexpected reply {other:?}"),
            },
            Err(e) => e,
        };
        web_sys::console::warn_1(
            &format!("emstudio network worker: inferring without helpers: {failure}").into(),
        );
        pool.post_all(&ToNetsHelper::Unload { run });
        return None;
    }
    Some(pool)
}

/// Predicts `image` with `engine`'s tiling, the batches run by the helpers that loaded run
/// `run`'s model.
pub(crate) async fn predict(
    pool: &Pool,
    run: RequestId,
    engine: &InferEngine,
    image: &Array3<f32>,
) -> Result<Prediction, String> {
    let mut tiled = engine.tiled(image)?;
    let batches = tiled.batches();
    let window = 2 * pool.size().max(1);
    let mut in_flight = VecDeque::with_capacity(window);
    let submit = |tiled: &TiledPrediction<'_>, batch: usize| {
        let (values, shape) = tiled.batch_input(batch);
        let (job, promise) = pool.submit_tracked(
            |job| ToNetsHelper::Forward { job, run, shape },
            &[to_buffer(&f32_bytes(&values))],
        );
        (batch, job, promise)
    };
    let mut next = 0;
    while next < batches || !in_flight.is_empty() {
        while next < batches && in_flight.len() < window {
            in_flight.push_back(submit(&tiled, next));
            next += 1;
        }
        let Some((batch, job, promise)) = in_flight.pop_front() else {
            break;
        };
        let env = match reply::<FromNetsHelper>(promise).await {
            // Its helper was lost and others are left: they take the batch (first in line, so
            // the batches are still blended in order).
            Err(e) if pool.take_lost(job) && pool.failure().is_none() => {
                web_sys::console::warn_1(
                    &format!("emstudio network worker: {e}; its batches go to the other helpers")
                        .into(),
                );
                in_flight.push_front(submit(&tiled, batch));
                continue;
            }
            reply => reply?,
        };
        match env.msg {
            FromNetsHelper::Forwarded { .. } => {
                let bytes = env
                    .attachments
                    .first()
                    .and_then(buffer_bytes)
                    .ok_or("a helper sent no probabilities")?;
                let probs = plane_f32("probabilities", Plane::single(1, bytes.len() / 4), &bytes)
                    .map_err(|e| e.to_string())?;
                tiled.accept(&probs).map_err(|e| e.to_string())?;
            }
            FromNetsHelper::Failed { error, .. } => return Err(error),
            other => return Err(format!("a helper sent {other:?}")),
        }
    }
    Ok(engine.finish(tiled))
}
