//! The Evaluate panel: score a label layer against a ground-truth layer (Rand F-score with its
//! split and merge parts, adapted Rand error, VI and V_info, Jaccard/Dice/conformity), add an
//! error map layer that colours merging predictions red and split GT objects blue, and list
//! the worst errors with a "Go" that jumps the viewer to each.

use super::state::{add_computed_layer, AppState};
use emstudio_core::metrics::{EvaluateParams, Evaluation};
use emstudio_core::render::error_color;
use emstudio_protocol::{FromWorker, LayerId, LayerKind, ToWorker};
use leptos::prelude::*;

/// How many entries of each error list are shown.
const SHOWN_ERRORS: usize = 50;

fn rgb(c: [u8; 3]) -> String {
    format!("rgb({},{},{})", c[0], c[1], c[2])
}

/// A score in 0..1 drawn as a bar with its value.
fn bar(label: &'static str, help: &'static str, value: f64, testid: &'static str) -> impl IntoView {
    let pct = (value.clamp(0.0, 1.0) * 100.0).round();
    view! {
        <div class="metric" title=help>
            <span class="metric-label">{label}</span>
            <span class="metric-bar"><span style=format!("width:{pct}%")></span></span>
            <span class="metric-value" data-testid=testid>{format!("{value:.4}")}</span>
        </div>
    }
}

fn number(
    label: &'static str,
    help: &'static str,
    value: String,
    testid: &'static str,
) -> impl IntoView {
    view! {
        <div class="metric" title=help>
            <span class="metric-label">{label}</span>
            <span class="metric-value wide" data-testid=testid>{value}</span>
        </div>
    }
}

fn report_view(state: AppState, e: Evaluation) -> impl IntoView {
    let r = e.report.clone();
    let go = move |[z, y, x]: [usize; 3]| {
        state.z.set(z);
        state.marker.set(Some([z, y, x]));
    };
    let splits: Vec<_> = e.errors.splits.iter().take(SHOWN_ERRORS).cloned().collect();
    let merges: Vec<_> = e.errors.merges.iter().take(SHOWN_ERRORS).cloned().collect();
    view! {
        <div class="report" data-testid="eval-report">
            {bar("Rand F-score", "V_rand (α = ½), foreground-restricted; 1 is perfect", r.rand.v_rand, "eval-vrand")}
            {bar("  split", "Rand split score: drops when GT objects are split", r.rand.split, "eval-rand-split")}
            {bar("  merge", "Rand merge score: drops when GT objects are merged", r.rand.merge, "eval-rand-merge")}
            {bar("V_info", "Information-theoretic score (ISBI 2012); 1 is perfect", r.info.v_info, "eval-vinfo")}
            {bar("Jaccard", "Foreground IoU (label ≠ 0 in both)", r.semantic.jaccard, "eval-jaccard")}
            {bar("Dice", "Foreground Dice", r.semantic.dice, "eval-dice")}
            {number("Adapted Rand error", "1 − V_rand(½) (SNEMI3D / CREMI)", format!("{:.4}", r.adapted_rand_error), "eval-are")}
            {number("VI split / merge", "Variation of information in bits: H(pred|GT) / H(GT|pred)", format!("{:.3} / {:.3}", r.info.vi_split, r.info.vi_merge), "eval-vi")}
            {number("Conformity", "1 − (FP + FN) / TP", r.semantic.conformity.map_or("— (no true positives)".into(), |c| format!("{c:.4}")), "eval-conformity")}
            {number("Objects GT / pred", "Distinct nonzero labels", format!("{} / {}", r.gt_objects, r.pred_objects), "eval-objects")}
            <h3>
                <span class="swatch" style=format!("background:{}", rgb(error_color(2)))></span>
                {format!("Split GT objects: {}", e.errors.splits.len())}
            </h3>
            <ul class="errors-list" data-testid="eval-splits">
                {splits.into_iter().map(|s| {
                    let pos = s.position;
                    view! { <li><button class="link" on:click=move |_| go(pos)>"Go"</button>
                        {format!("GT {} · {} pieces · {} voxels", s.gt_label, s.pieces.len(), s.gt_voxels)}</li> }
                }).collect_view()}
            </ul>
            <h3>
                <span class="swatch" style=format!("background:{}", rgb(error_color(1)))></span>
                {format!("Merging predictions: {}", e.errors.merges.len())}
            </h3>
            <ul class="errors-list" data-testid="eval-merges">
                {merges.into_iter().map(|m| {
                    let pos = m.position;
                    view! { <li><button class="link" on:click=move |_| go(pos)>"Go"</button>
                        {format!("pred {} · joins {} GT · {} voxels", m.pred_label, m.gt_objects.len(), m.pred_voxels)}</li> }
                }).collect_view()}
            </ul>
            <p class="hint">
                <span class="swatch" style=format!("background:{}", rgb(error_color(3)))></span>
                "both · lists sorted by severity (wrong voxel pairs)"
            </p>
        </div>
    }
}

/// The panel.
#[component]
pub fn EvaluatePanel() -> impl IntoView {
    let state = expect_context::<AppState>();
    let gt = RwSignal::new(None::<LayerId>);
    let pred = RwSignal::new(None::<LayerId>);
    let evaluation = RwSignal::new(None::<Evaluation>);
    let timing = RwSignal::new(String::new());

    let labels = move || {
        state.layers.with(|l| {
            l.iter()
                .filter(|l| l.info.kind == LayerKind::Label)
                .map(|l| (l.info.id, l.info.name.clone()))
                .collect::<Vec<_>>()
        })
    };
    let pick = move |sig: RwSignal<Option<LayerId>>, fallback: usize| {
        let list = labels();
        sig.get()
            .filter(|id| list.iter().any(|(i, _)| i == id))
            .or_else(|| {
                list.get(fallback.min(list.len().saturating_sub(1)))
                    .map(|(i, _)| *i)
            })
    };
    // Defaults: GT = the first label layer (loaded), prediction = the last (usually computed).
    let gt_id = move || pick(gt, 0);
    let pred_id = move || pick(pred, usize::MAX);

    let run = move |_| {
        let (Some(g), Some(p)) = (gt_id(), pred_id()) else {
            return;
        };
        evaluation.set(None);
        state.run_job(
            "Evaluating".into(),
            move |request| ToWorker::Evaluate {
                request,
                gt: g,
                pred: p,
                params: EvaluateParams::default(),
            },
            &[],
            move |msg, _| {
                if let FromWorker::Evaluated {
                    evaluation: e,
                    error_map,
                    compute_ms,
                    ..
                } = msg
                {
                    timing.set(format!("{:.1} s", compute_ms / 1000.0));
                    // One error map at a time: the latest evaluation's.
                    let old: Vec<LayerId> = state.layers.with_untracked(|l| {
                        l.iter()
                            .filter(|l| l.info.kind == LayerKind::Errors)
                            .map(|l| l.info.id)
                            .collect()
                    });
                    for id in old {
                        state.close_layer(id);
                    }
                    add_computed_layer(state, error_map);
                    evaluation.set(Some(*e));
                }
            },
        );
    };

    view! {
        <div class="tool" data-testid="evaluate">
            <label class="row">"Ground truth"
                <select data-testid="eval-gt" on:change=move |ev| gt.set(event_target_value(&ev).parse().ok().map(LayerId))>
                    <For each=labels key=|(id, _)| *id let:item>
                        <option value=item.0.0.to_string() selected=move || gt_id() == Some(item.0)>{item.1.clone()}</option>
                    </For>
                </select>
            </label>
            <label class="row">"Prediction"
                <select data-testid="eval-pred" on:change=move |ev| pred.set(event_target_value(&ev).parse().ok().map(LayerId))>
                    <For each=labels key=|(id, _)| *id let:item>
                        <option value=item.0.0.to_string() selected=move || pred_id() == Some(item.0)>{item.1.clone()}</option>
                    </For>
                </select>
            </label>
            <Show when=move || labels().len() < 2>
                <p class="hint">"Needs two label layers: ground truth and a prediction (e.g. from Postprocess)."</p>
            </Show>
            <div class="buttons">
                <button class="primary" data-testid="eval-run" prop:disabled=move || labels().is_empty() on:click=run>"Evaluate"</button>
                <span class="hint">{move || timing.get()}</span>
            </div>
            {move || evaluation.get().map(|e| report_view(state, e))}
        </div>
    }
}
