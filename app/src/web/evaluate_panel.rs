//! The Evaluate panel: score a label layer against a ground-truth layer (Rand F-score with its
//! split and merge parts, adapted Rand error, VI and V_info, Jaccard/Dice/conformity), add an
//! error map layer that colours merging predictions red and split GT objects blue, and list
//! the worst errors with a "Go" that jumps the viewer to each. In ISBI 2012 mode it scores a
//! probability map instead (threshold sweep, thinned borders, per-slice means) and plots V_rand
//! and V_info against the threshold.

use super::state::{add_computed_layer, AppState};
use emstudio_core::metrics::isbi::{IsbiParams, IsbiReport, MapPolarity};
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

/// The ISBI report: the best scores and a plot of both scores against the threshold.
fn isbi_view(r: IsbiReport) -> impl IntoView {
    let (w, h, pad) = (300.0, 150.0, 24.0);
    let px = |t: f64| pad + t.clamp(0.0, 1.0) * (w - 2.0 * pad);
    let py = |v: f64| h - pad - v.clamp(0.0, 1.0) * (h - 2.0 * pad);
    let line = |f: fn(&emstudio_core::metrics::isbi::IsbiThresholdScores) -> f64| {
        r.per_threshold
            .iter()
            .map(|s| format!("{:.1},{:.1}", px(s.threshold), py(f(s))))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let rand_line = line(|s| s.scores.v_rand);
    let info_line = line(|s| s.scores.v_info);
    let (br, bi) = (r.best_rand, r.best_info);
    let ticks = [0.0, 0.25, 0.5, 0.75, 1.0];
    view! {
        <div class="report" data-testid="isbi-report">
            {bar("V_rand (best)", "Rand F-score at the best threshold, mean over slices", br.scores.v_rand, "isbi-vrand")}
            {bar("  split", "Rand split score at that threshold", br.scores.v_rand_split, "isbi-vrand-split")}
            {bar("  merge", "Rand merge score at that threshold", br.scores.v_rand_merge, "isbi-vrand-merge")}
            {bar("V_info (best)", "Information-theoretic score at its best threshold", bi.scores.v_info, "isbi-vinfo")}
            {number("Best thresholds", "Threshold of the best V_rand / of the best V_info", format!("{:.2} / {:.2}", br.threshold, bi.threshold), "isbi-thresholds")}
            {number("Slices scored", "Slices whose ground truth has cells", br.scores.slices_evaluated.to_string(), "isbi-slices")}
            <svg class="plot" data-testid="isbi-plot" viewBox=format!("0 0 {w} {h}") width="100%">
                <rect x=pad y=pad width=w - 2.0 * pad height=h - 2.0 * pad class="plot-frame"></rect>
                {ticks.iter().map(|&t| view! {
                    <line x1=px(t) x2=px(t) y1=h - pad y2=h - pad + 3.0 class="plot-axis"></line>
                    <text x=px(t) y=h - 8.0 class="plot-label" text-anchor="middle">{format!("{t}")}</text>
                    <line x1=pad - 3.0 x2=pad y1=py(t) y2=py(t) class="plot-axis"></line>
                    <text x=pad - 5.0 y=py(t) + 3.0 class="plot-label" text-anchor="end">{format!("{t}")}</text>
                }).collect_view()}
                <polyline points=rand_line class="plot-rand"></polyline>
                <polyline points=info_line class="plot-info"></polyline>
                <circle cx=px(br.threshold) cy=py(br.scores.v_rand) r="3" class="plot-rand-dot"></circle>
                <circle cx=px(bi.threshold) cy=py(bi.scores.v_info) r="3" class="plot-info-dot"></circle>
            </svg>
            <p class="hint"><span class="swatch rand"></span>"V_rand  "<span class="swatch info"></span>"V_info  against the threshold on the interior probability"</p>
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
    let isbi = RwSignal::new(None::<IsbiReport>);
    let mode_isbi = RwSignal::new(false);
    let membranes_high = RwSignal::new(false);
    let map = RwSignal::new(None::<LayerId>);
    let compute = RwSignal::new(None::<f64>);

    let labels = move || state.layer_choices(LayerKind::Label, false);
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
    let maps = move || state.layer_choices(LayerKind::Image, true);
    let map_id = move || {
        let list = maps();
        map.get()
            .filter(|id| list.iter().any(|(i, _)| i == id))
            .or_else(|| list.last().map(|(i, _)| *i))
    };

    let run_isbi = move || {
        let (Some(g), Some(m)) = (gt_id(), map_id()) else {
            return;
        };
        isbi.set(None);
        compute.set(None);
        let params = IsbiParams {
            polarity: if membranes_high.get_untracked() {
                MapPolarity::BoundaryHigh
            } else {
                MapPolarity::InteriorHigh
            },
            ..IsbiParams::default()
        };
        state.run_job(
            "ISBI 2012 evaluation".into(),
            move |request| ToWorker::EvaluateIsbi {
                request,
                gt: g,
                map: m,
                params,
            },
            &[],
            move |msg, _| {
                if let FromWorker::IsbiEvaluated {
                    report, compute_ms, ..
                } = msg
                {
                    compute.set(Some(compute_ms));
                    isbi.set(Some(report));
                }
            },
        );
    };

    let run = move |_| {
        if mode_isbi.get_untracked() {
            return run_isbi();
        }
        let (Some(g), Some(p)) = (gt_id(), pred_id()) else {
            return;
        };
        evaluation.set(None);
        compute.set(None);
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
                    compute.set(Some(compute_ms));
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
            <div class="choice">
                <label><input type="radio" name="eval-mode" prop:checked=move || !mode_isbi.get()
                    on:change=move |_| mode_isbi.set(false) />"Labels (3D)"</label>
                <label><input type="radio" name="eval-mode" data-testid="eval-mode-isbi" prop:checked=move || mode_isbi.get()
                    on:change=move |_| mode_isbi.set(true) />"ISBI 2012 (probability map)"</label>
            </div>
            <Show when=move || !mode_isbi.get() fallback=move || view! {
                <label class="row">"Map"
                    <select data-testid="eval-map" on:change=move |ev| map.set(event_target_value(&ev).parse().ok().map(LayerId))>
                        <For each=maps key=|(id, _)| *id let:item>
                            <option value=item.0.0.to_string() selected=move || map_id() == Some(item.0)>{item.1.clone()}</option>
                        </For>
                    </select>
                </label>
                <label class="row"><input type="checkbox" data-testid="eval-membranes-high" prop:checked=move || membranes_high.get()
                    on:change=move |ev| membranes_high.set(event_target_checked(&ev)) />"High values are membranes"</label>
            }>
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
            </Show>
            <div class="buttons">
                <button class="primary" data-testid="eval-run" prop:disabled=move || labels().is_empty() on:click=run>"Evaluate"</button>
                <span class="hint" data-testid="eval-time" data-compute-ms=move || compute.get().map(|m| format!("{m:.1}"))>
                    {move || compute.get().map(|m| format!("{:.1} s", m / 1000.0)).unwrap_or_default()}
                </span>
            </div>
            {move || if mode_isbi.get() {
                isbi.get().map(|r| isbi_view(r).into_any())
            } else {
                evaluation.get().map(|e| report_view(state, e).into_any())
            }}
        </div>
    }
}
