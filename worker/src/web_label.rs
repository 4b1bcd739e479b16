//! The Postprocess panel's run in the browser: the blocks of a [`LabelJob`] go to the helper
//! workers, a window of them in flight, and are joined here; without helpers, or once one is
//! lost, the blocks left run here. `Cancel` is seen between blocks, and within one through the
//! shared cancel board when the page is isolated.

use crate::compute::ComputeError;
use crate::labelling::LabelJob;
use crate::web::{
    lost_with_helper, next_reply, progress_sender, take_cancelled, LostWork, Out, WORKSPACE,
};
use crate::web_pool;
use emstudio_core::labels::postprocess::PostprocessParams;
use emstudio_core::progress::{Phase, Progress};
use emstudio_core::AnyVolume;
use emstudio_protocol::pool::{FromHelper, ToHelper};
use emstudio_protocol::{LayerId, RequestId};
use emstudio_webmsg::glue::yield_now;
use emstudio_webmsg::{buffer_u32, to_buffer, u32_buffer};
use std::collections::VecDeque;

/// Progress: 5 % thresholding, 75 % the blocks, 20 % merge, linking, size filter, numbering.
const BLOCKS_FROM: u64 = 50;
const BLOCKS_SPAN: u64 = 750;

/// Thresholds `layer` and labels it, in blocks on the helpers when it has more than one.
pub(crate) async fn postprocess(
    request: RequestId,
    layer: LayerId,
    markers: Option<LayerId>,
    params: PostprocessParams,
) -> Result<(AnyVolume, String), ComputeError> {
    // Let the app show the job row before the worker is busy.
    yield_now().await;
    let wanted = web_pool::wanted();
    let mut progress = progress_sender(request, "labelling".into());
    let job = WORKSPACE.with(|w| LabelJob::new(&w.borrow(), layer, markers, &params))?;
    if progress.report(BLOCKS_FROM, 1000).is_break() || take_cancelled(request) {
        return Err(ComputeError::Cancelled);
    }
    if job.blocks() > 1 && wanted > 0 {
        if let Some(pool) = web_pool::pool().await {
            return label_in_pool(&pool, request, job, &mut progress).await;
        }
    }
    label_here(request, job, 0, &mut progress).await
}

/// The blocks not handed out yet, here, one at a time with a yield between them.
async fn label_here(
    request: RequestId,
    mut job: LabelJob,
    helpers: usize,
    progress: &mut dyn Progress,
) -> Result<(AnyVolume, String), ComputeError> {
    loop {
        yield_now().await;
        if take_cancelled(request) {
            return Err(ComputeError::Cancelled);
        }
        let Some(index) = job.take_next() else {
            return job.finish(helpers, &mut Phase::new(progress, 800, 200));
        };
        run_here(&mut job, index, progress)?;
    }
}

/// Block `index` labelled here, moving its share of the progress bar.
fn run_here(
    job: &mut LabelJob,
    index: usize,
    progress: &mut dyn Progress,
) -> Result<(), ComputeError> {
    let blocks = job.blocks() as u64;
    let start = BLOCKS_FROM + BLOCKS_SPAN * index as u64 / blocks;
    job.run_here(
        index,
        &mut Phase::new(progress, start, BLOCKS_SPAN / blocks),
    )
}

/// The blocks on the helpers, taken back in order.
async fn label_in_pool(
    pool: &web_pool::Pool,
    request: RequestId,
    mut job: LabelJob,
    progress: &mut dyn Progress,
) -> Result<(AnyVolume, String), ComputeError> {
    let how = job.labelling();
    let (height, width) = job.plane();
    let total: f64 = (0..job.blocks()).map(|i| job.weight(i)).sum();
    let mut done = 0.0;
    let window = pool.size() * 2;
    let mut out = VecDeque::new();
    loop {
        while out.len() < window {
            let Some((index, input)) = job.next_block() else {
                break;
            };
            let mut attached = vec![to_buffer(&input.mask)];
            if let Some(markers) = &input.markers {
                attached.push(u32_buffer(markers));
            }
            attached.extend(web_pool::board());
            let (id, promise) = pool.submit_tracked(
                |job| ToHelper::Label {
                    job,
                    request,
                    how,
                    markers: input.markers.is_some(),
                    send_from: input.send.start,
                    send: input.send.len(),
                    depth: input.depth,
                    height,
                    width,
                },
                &attached,
            );
            out.push_back(Out {
                unit: index,
                weight: job.weight(index),
                id,
                promise,
            });
        }
        let mut blocks_bar = Phase::new(progress, BLOCKS_FROM, BLOCKS_SPAN);
        let Some(((id, index), reply)) =
            next_reply(request, &mut out, done, total, &mut blocks_bar).await?
        else {
            return job.finish(pool.size(), &mut Phase::new(progress, 800, 200));
        };
        // A helper stopped by the cancel board answers "cancelled": that is a Cancel.
        if take_cancelled(request) {
            return Err(ComputeError::Cancelled);
        }
        match lost_with_helper(pool, &reply, (id, index), &mut out, "labelling") {
            // The lost helper's block is labelled here; the others' go on.
            Some(LostWork::One(index)) => {
                run_here(&mut job, index, progress)?;
                done += job.weight(index);
                yield_now().await;
                continue;
            }
            // The blocks that were out are labelled here, then the rest.
            Some(LostWork::All(lost)) => {
                for index in lost {
                    yield_now().await;
                    if take_cancelled(request) {
                        return Err(ComputeError::Cancelled);
                    }
                    run_here(&mut job, index, progress)?;
                }
                return label_here(request, job, 0, progress).await;
            }
            None => {}
        }
        let reply = reply?;
        match reply.msg {
            FromHelper::Labelled { .. } => {
                let labels = reply
                    .attachments
                    .first()
                    .and_then(buffer_u32)
                    .ok_or_else(|| format!("{}: a helper sent no labels", job.source()))?;
                job.store(index, labels)?;
            }
            FromHelper::Failed { error, .. } => {
                return Err(ComputeError::Failed(format!("{}: {error}", job.source())))
            }
            other => return Err(format!("a helper answered {other:?}").into()),
        }
        done += job.weight(index);
        yield_now().await;
    }
}
