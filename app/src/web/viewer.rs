//! The slice viewer: a 2D canvas compositing the visible layers' current slice.
//!
//! The worker renders each layer's slice to an `ImageBitmap` once per slice change and
//! transfers it; the UI thread only composites with a transform, so panning and zooming cost one
//! `drawImage` per layer per frame. Redraws are coalesced to animation frames. Slice requests
//! are latest-wins per layer: while one is in flight, only the newest wanted slice is queued.
//!
//! A filter preview ([`AppState::preview`]) replaces its source layer with the pipeline's
//! result on the current slice, rendered by the worker on demand (one request in flight,
//! latest wins). A marker ([`AppState::marker`], set by "Go" in the error lists) centres the
//! view on a voxel and rings it.
//!
//! For tests and benchmarks the canvas carries `data-z-shown` (slice whose pixels are on
//! screen), `data-draw-ms` (last composite time), `data-slice-ms` (slice change to pixels)
//! `data-preview-z` (slice of the filter preview on screen, absent when none) and
//! `data-marker` (`z,y,x` of the marker ring on screen, absent when none), `data-view`
//! (`scale tx ty`: canvas = data × scale + t) and `data-stroke-ms` (pointer event of the
//! newest stroke point to that point drawn: strokes are drawn in the pointer event itself).
//!
//! Editing tools ([`Editing`]): a press with a stroke tool starts a [`Stroke`] drawn at once
//! over the slice (screen feedback does not wait for the worker); on release it goes to the
//! worker as an edit and stays drawn until the worker's render of the edited slice arrives.
//! Renders asked before an edit are stale (per-layer generations) and asked again.

use super::editing::{self, Editing, Tool};
use super::state::{AppState, Readout};
use super::worker_client;
use emstudio_protocol::LabelEdit;
use emstudio_protocol::{FromWorker, LayerId, ToWorker};
use leptos::html::Canvas;
use leptos::prelude::*;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement};

/// Which rendering of a layer: (layer, slice, outline-only).
type SliceKey = (LayerId, usize, bool);

/// How many slices around the current one are kept rendered (and prefetched).
const PREFETCH_RADIUS: usize = 2;

#[derive(Default)]
struct Pending {
    in_flight: bool,
    want: Option<(usize, bool)>,
}

fn key(l: &super::state::LayerView, z: usize) -> SliceKey {
    (l.info.id, z, l.info.kind.is_labels() && l.outline)
}

struct View {
    canvas: Option<HtmlCanvasElement>,
    scale: f64,
    tx: f64,
    ty: f64,
    bitmaps: HashMap<SliceKey, web_sys::ImageBitmap>,
    pending: HashMap<LayerId, Pending>,
    frame_requested: bool,
    drag: Option<(f64, f64)>,
    slice_asked_at: Option<(usize, f64)>,
    probe_in_flight: bool,
    probe_next: Option<(usize, usize, usize)>,
    state: Option<AppState>,
    preview: Option<PreviewSlot>,
    preview_in_flight: bool,
    /// Rendered slices an edit has changed since (shown until their fresh copy arrives).
    stale: HashSet<SliceKey>,
    /// Per layer: how many edits changed it (renders asked before the latest are stale).
    generation: HashMap<LayerId, u64>,
    /// The stroke being drawn, then strokes sent and not yet rendered by the worker.
    strokes: Vec<Stroke>,
    /// The pointer is drawing (not panning).
    drawing: bool,
    /// Canvas position of the pointer (brush outline).
    cursor: Option<(f64, f64)>,
    /// Space is held: drags pan whatever the tool.
    space: bool,
    editing: Option<Editing>,
    /// An FFN training run's live fill, drawn over its slice.
    live_fill: Option<LiveFill>,
}

/// An FFN training run's live fill: the object's probability over its box on slice `z`.
pub struct LiveFill {
    /// The slice.
    pub z: usize,
    /// The box's first row and column.
    pub y0: usize,
    /// See `y0`.
    pub x0: usize,
    /// The seed `(y, x)`.
    pub seed: (usize, usize),
    /// The plane drawn (RGBA), as big as the box.
    pub canvas: HtmlCanvasElement,
}

/// Shows an FFN training run's live fill over its slice (none: no more).
pub fn show_live_fill(fill: Option<LiveFill>) {
    VIEW.with(|v| v.borrow_mut().live_fill = fill);
    request_frame();
}

/// A brush, eraser or split stroke drawn over the slice until the worker's render of it
/// arrives.
struct Stroke {
    layer: LayerId,
    z: usize,
    /// Data points `(x, y)`.
    points: Vec<(f64, f64)>,
    radius: f64,
    /// Stylus pressure factor per point (empty: no pen, or pressure off).
    pressure: Vec<f32>,
    color: String,
    /// The view generation of `layer` whose render makes this stroke redundant.
    until_generation: u64,
    /// `performance.now()` time stamp of the newest point's pointer event.
    last_event: f64,
}

/// A rendered filter preview.
struct PreviewSlot {
    layer: LayerId,
    json: String,
    z: usize,
    bitmap: web_sys::ImageBitmap,
}

thread_local! {
    static VIEW: RefCell<View> = RefCell::new(View {
        canvas: None, scale: 1.0, tx: 0.0, ty: 0.0, bitmaps: HashMap::new(), pending: HashMap::new(),
        frame_requested: false, drag: None, slice_asked_at: None, probe_in_flight: false,
        probe_next: None, state: None, preview: None, preview_in_flight: false,
        stale: HashSet::new(), generation: HashMap::new(), strokes: Vec::new(), drawing: false,
        cursor: None, space: false, editing: None, live_fill: None,
    });
}

fn now() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map(|p| p.now())
        .unwrap_or(0.0)
}

fn context(canvas: &HtmlCanvasElement) -> Option<CanvasRenderingContext2d> {
    canvas.get_context("2d").ok()??.dyn_into().ok()
}

/// Asks for a redraw on the next animation frame.
fn request_frame() {
    let already = VIEW.with(|v| std::mem::replace(&mut v.borrow_mut().frame_requested, true));
    if already {
        return;
    }
    let cb = Closure::once_into_js(move |_: f64| {
        VIEW.with(|v| v.borrow_mut().frame_requested = false);
        draw();
    });
    if let Some(w) = web_sys::window() {
        let _ = w.request_animation_frame(cb.unchecked_ref());
    }
}

/// Composites the visible layers.
fn draw() {
    let Some(state) = VIEW.with(|v| v.borrow().state) else {
        return;
    };
    let layers = state.layers.get_untracked();
    let z = state.z.get_untracked();
    let start = now();
    VIEW.with(|v| {
        let v = v.borrow();
        let Some(canvas) = v.canvas.as_ref() else {
            return;
        };
        let (cw, ch) = (
            canvas.client_width().max(1) as u32,
            canvas.client_height().max(1) as u32,
        );
        if canvas.width() != cw || canvas.height() != ch {
            canvas.set_width(cw);
            canvas.set_height(ch);
        }
        let Some(ctx) = context(canvas) else { return };
        let _ = ctx.set_transform(1.0, 0.0, 0.0, 1.0, 0.0, 0.0);
        ctx.set_fill_style_str("#101418");
        ctx.fill_rect(0.0, 0.0, cw as f64, ch as f64);
        let _ = ctx.set_transform(v.scale, 0.0, 0.0, v.scale, v.tx, v.ty);
        ctx.set_image_smoothing_enabled(v.scale < 1.0);
        // "Shown" means complete: something visible, nothing still loading.
        let mut all_current =
            layers.iter().any(|l| l.visible) && state.jobs.with_untracked(|j| j.is_empty());
        let want_preview = state.preview.get_untracked();
        let mut preview_z = None;
        for l in layers.iter().filter(|l| l.visible) {
            if let (Some((id, json)), Some(p)) = (&want_preview, &v.preview) {
                if *id == l.info.id && p.layer == *id {
                    // The preview stands in for its layer; a stale one shows while the next renders.
                    let current = p.z == z && p.json == *json;
                    all_current &= current;
                    preview_z = current.then_some(z);
                    ctx.set_global_alpha(l.opacity);
                    let _ = ctx.draw_image_with_image_bitmap(&p.bitmap, 0.0, 0.0);
                    continue;
                }
            }
            // The wanted slice, or while it is on its way the nearest one we have.
            let exact = v.bitmaps.get(&key(l, z));
            all_current &= exact.is_some() && !v.stale.contains(&key(l, z));
            let shown = exact.or_else(|| {
                v.bitmaps
                    .iter()
                    .filter(|((id, _, o), _)| *id == l.info.id && *o == key(l, z).2)
                    .min_by_key(|((_, bz, _), _)| bz.abs_diff(z))
                    .map(|(_, b)| b)
            });
            if let Some(b) = shown {
                ctx.set_global_alpha(l.opacity);
                let _ = ctx.draw_image_with_image_bitmap(b, 0.0, 0.0);
            }
        }
        ctx.set_global_alpha(1.0);
        match v.live_fill.as_ref().filter(|f| f.z == z) {
            Some(f) => {
                draw_live_fill(&ctx, v.scale, f);
                let (h, w) = (f.canvas.height(), f.canvas.width());
                let _ = canvas.set_attribute(
                    "data-live-fill",
                    &format!("{} {} {} {h} {w}", f.z, f.y0, f.x0),
                );
            }
            None => {
                let _ = canvas.remove_attribute("data-live-fill");
            }
        }
        draw_strokes(&ctx, &v, z);
        all_current &= v.strokes.is_empty();
        draw_cursor(&ctx, &v);
        match state.marker.get_untracked() {
            Some([mz, my, mx]) if mz == z => {
                draw_marker(&ctx, v.scale, mx as f64 + 0.5, my as f64 + 0.5);
                let _ = canvas.set_attribute("data-marker", &format!("{mz},{my},{mx}"));
            }
            _ => {
                let _ = canvas.remove_attribute("data-marker");
            }
        }
        match preview_z {
            Some(pz) => {
                let _ = canvas.set_attribute("data-preview-z", &pz.to_string());
            }
            None => {
                let _ = canvas.remove_attribute("data-preview-z");
            }
        }
        let elapsed = now() - start;
        let _ = canvas.set_attribute("data-draw-ms", &format!("{elapsed:.3}"));
        let _ = canvas.set_attribute("data-view", &format!("{} {} {}", v.scale, v.tx, v.ty));
        if !all_current {
            let _ = canvas.remove_attribute("data-z-shown");
        }
        if all_current {
            let _ = canvas.set_attribute("data-z-shown", &z.to_string());
            if let Some((asked_z, t0)) = v.slice_asked_at {
                if asked_z == z {
                    let _ = canvas.set_attribute("data-slice-ms", &format!("{:.3}", now() - t0));
                }
            }
        }
    });
}

/// Draws a live fill: its plane over the box, the box outlined in dashed cyan (as the training
/// preview's field of view) and a cross at the seed.
fn draw_live_fill(ctx: &CanvasRenderingContext2d, scale: f64, f: &LiveFill) {
    let (x0, y0) = (f.x0 as f64, f.y0 as f64);
    let (w, h) = (f64::from(f.canvas.width()), f64::from(f.canvas.height()));
    let _ = ctx.draw_image_with_html_canvas_element(&f.canvas, x0, y0);
    ctx.set_line_width(1.5 / scale);
    ctx.set_stroke_style_str("#00dcff");
    let dash = js_sys::Array::of2(&(6.0 / scale).into(), &(4.0 / scale).into());
    let _ = ctx.set_line_dash(&dash);
    ctx.stroke_rect(x0, y0, w, h);
    let _ = ctx.set_line_dash(&js_sys::Array::new());
    let (sx, sy) = (f.seed.1 as f64 + 0.5, f.seed.0 as f64 + 0.5);
    let arm = 7.0 / scale;
    ctx.begin_path();
    ctx.move_to(sx - arm, sy);
    ctx.line_to(sx + arm, sy);
    ctx.move_to(sx, sy - arm);
    ctx.line_to(sx, sy + arm);
    ctx.stroke();
}

/// Rings a data point (x, y) with a circle of fixed screen size.
fn draw_marker(ctx: &CanvasRenderingContext2d, scale: f64, x: f64, y: f64) {
    ctx.begin_path();
    let _ = ctx.arc(x, y, 14.0 / scale, 0.0, std::f64::consts::TAU);
    ctx.set_line_width(3.0 / scale);
    ctx.set_stroke_style_str("#ffd400");
    ctx.stroke();
}

/// Draws the strokes on slice `z` (the whole composite, once per animation frame).
fn draw_strokes(ctx: &CanvasRenderingContext2d, v: &View, z: usize) {
    ctx.set_line_cap("round");
    ctx.set_line_join("round");
    for s in v.strokes.iter().filter(|s| s.z == z) {
        ctx.set_global_alpha(0.6);
        ctx.set_stroke_style_str(&s.color);
        ctx.set_fill_style_str(&s.color);
        ctx.begin_path();
        if let [(x, y)] = s.points[..] {
            let _ = ctx.arc(x, y, s.radius, 0.0, std::f64::consts::TAU);
            ctx.fill();
        } else if s.pressure.len() == s.points.len() {
            // A pen: each segment as wide as the pressure at its end.
            for (k, w) in s.points.windows(2).enumerate() {
                ctx.begin_path();
                ctx.move_to(w[0].0, w[0].1);
                ctx.line_to(w[1].0, w[1].1);
                ctx.set_line_width(2.0 * s.radius * f64::from(s.pressure[k + 1]));
                ctx.stroke();
            }
        } else {
            for (k, (x, y)) in s.points.iter().enumerate() {
                if k == 0 {
                    ctx.move_to(*x, *y);
                } else {
                    ctx.line_to(*x, *y);
                }
            }
            ctx.set_line_width(2.0 * s.radius);
            ctx.stroke();
        }
    }
    ctx.set_global_alpha(1.0);
}

/// Draws the newest points of the stroke being drawn straight away, in the pointer event
/// (the next composite redraws it with the rest), and records the event-to-pixels time as
/// `data-stroke-ms`.
fn draw_stroke_tail(from: usize) {
    VIEW.with(|v| {
        let v = v.borrow();
        let (Some(canvas), Some(s)) = (v.canvas.as_ref(), v.strokes.last()) else {
            return;
        };
        let Some(ctx) = context(canvas) else { return };
        let _ = ctx.set_transform(v.scale, 0.0, 0.0, v.scale, v.tx, v.ty);
        ctx.set_line_cap("round");
        ctx.set_global_alpha(0.6);
        ctx.set_stroke_style_str(&s.color);
        for k in from.max(1)..s.points.len() {
            let (a, b) = (s.points[k - 1], s.points[k]);
            let factor = s.pressure.get(k).copied().map_or(1.0, f64::from);
            ctx.begin_path();
            ctx.move_to(a.0, a.1);
            ctx.line_to(b.0, b.1);
            ctx.set_line_width(2.0 * s.radius * factor);
            ctx.stroke();
        }
        ctx.set_global_alpha(1.0);
        let _ = canvas.set_attribute("data-stroke-ms", &format!("{:.3}", now() - s.last_event));
    });
}

/// The brush outline under the pointer, the FFN fill's box, and the first seed of a 3D split.
fn draw_cursor(ctx: &CanvasRenderingContext2d, v: &View) {
    let Some(editing) = v.editing else { return };
    let tool = editing.tool.get_untracked();
    if let (Some((cx, cy)), true) = (v.cursor, tool.strokes()) {
        let (x, y) = ((cx - v.tx) / v.scale, (cy - v.ty) / v.scale);
        let r = if tool == Tool::Split {
            editing.band.get_untracked()
        } else {
            f64::from(editing.radius(v.scale))
        };
        ctx.begin_path();
        let _ = ctx.arc(x, y, r, 0.0, std::f64::consts::TAU);
        ctx.set_line_width(1.5 / v.scale);
        ctx.set_stroke_style_str("#ffffff");
        ctx.stroke();
    }
    if let (Some((cx, cy)), Tool::FfnFill) = (v.cursor, tool) {
        // The box the network may fill around a click here (its part on this slice).
        let (x, y) = (
            ((cx - v.tx) / v.scale).floor() + 0.5,
            ((cy - v.ty) / v.scale).floor() + 0.5,
        );
        let r = editing.ffn_radius_xy.get_untracked() as f64;
        ctx.set_line_width(1.5 / v.scale);
        ctx.set_stroke_style_str("#ffdd00");
        let dash = js_sys::Array::of2(&(6.0 / v.scale).into(), &(4.0 / v.scale).into());
        let _ = ctx.set_line_dash(&dash);
        ctx.stroke_rect(x - r - 0.5, y - r - 0.5, 2.0 * r + 1.0, 2.0 * r + 1.0);
        let _ = ctx.set_line_dash(&js_sys::Array::new());
        draw_marker(ctx, v.scale, x, y);
    }
    let z = v.state.map(|s| s.z.get_untracked());
    if let (Some([sz, sy, sx]), Some(z)) = (editing.seed.get_untracked(), z) {
        if sz == z {
            draw_marker(ctx, v.scale, sx as f64 + 0.5, sy as f64 + 0.5);
        }
    }
}

/// Marks the rendered slices `z0..=z1` of a layer as changed by an edit and asks for the
/// current one again; the old pixels stay on screen until the new ones arrive.
pub fn refresh_layer(layer: LayerId, z0: usize, z1: usize) {
    let Some(state) = VIEW.with(|v| v.borrow().state) else {
        return;
    };
    let outline = state
        .layers
        .with_untracked(|ls| ls.iter().find(|l| l.info.id == layer).map(|l| key(l, 0).2));
    let Some(outline) = outline else { return };
    VIEW.with(|v| {
        let mut v = v.borrow_mut();
        if let Some(c) = &v.canvas {
            // Not complete until the edited slice is back (tests wait on this).
            let _ = c.remove_attribute("data-z-shown");
        }
        *v.generation.entry(layer).or_default() += 1;
        let changed: Vec<SliceKey> = v
            .bitmaps
            .keys()
            .filter(|(id, z, _)| *id == layer && (z0..=z1).contains(z))
            .copied()
            .collect();
        v.stale.extend(changed);
    });
    let z = state.z.get_untracked();
    if (z0..=z1).contains(&z) {
        want_slice(layer, z, outline);
    }
    request_frame();
}

/// Drops the strokes waiting for a render of `layer` (the edit failed or did nothing).
pub fn clear_strokes() {
    VIEW.with(|v| {
        let mut v = v.borrow_mut();
        if !v.drawing {
            v.strokes.clear();
        }
    });
    request_frame();
}

/// Asks the worker for the filter preview of the current slice when the one shown is not it.
fn pump_preview() {
    let Some(state) = VIEW.with(|v| v.borrow().state) else {
        return;
    };
    let Some((layer, json)) = state.preview.get_untracked() else {
        VIEW.with(|v| {
            if let Some(p) = v.borrow_mut().preview.take() {
                p.bitmap.close();
            }
        });
        request_frame();
        return;
    };
    let z = state.z.get_untracked();
    let busy_or_done = VIEW.with(|v| {
        let mut v = v.borrow_mut();
        let done = v
            .preview
            .as_ref()
            .is_some_and(|p| p.layer == layer && p.z == z && p.json == json);
        if v.preview_in_flight || done {
            return true;
        }
        v.preview_in_flight = true;
        false
    });
    if busy_or_done {
        return;
    }
    let sent_json = json.clone();
    let result = worker_client::request(
        move |request| ToWorker::PreviewFilters {
            request,
            layer,
            z,
            pipeline_json: json,
        },
        &[],
        move |msg, att| {
            VIEW.with(|v| v.borrow_mut().preview_in_flight = false);
            match msg {
                FromWorker::Slice { .. } => {
                    if let Some(bitmap) = att
                        .first()
                        .and_then(|b| b.dyn_ref::<web_sys::ImageBitmap>().cloned())
                    {
                        let slot = PreviewSlot {
                            layer,
                            json: sent_json.clone(),
                            z,
                            bitmap,
                        };
                        VIEW.with(|v| {
                            if let Some(old) = v.borrow_mut().preview.replace(slot) {
                                old.bitmap.close();
                            }
                        });
                    }
                }
                FromWorker::Failed { error, .. } => state.error(format!("preview: {error}")),
                _ => {}
            }
            request_frame();
            pump_preview();
        },
    );
    if result.is_err() {
        VIEW.with(|v| v.borrow_mut().preview_in_flight = false);
    }
}

/// Centres the view on data point (x, y) at the current zoom.
fn center_on(x: f64, y: f64) {
    VIEW.with(|v| {
        let mut v = v.borrow_mut();
        let Some(canvas) = v.canvas.as_ref() else {
            return;
        };
        let (cw, ch) = (canvas.client_width() as f64, canvas.client_height() as f64);
        v.tx = cw / 2.0 - x * v.scale;
        v.ty = ch / 2.0 - y * v.scale;
    });
    request_frame();
}

/// Requests slice `z` of a layer (latest-wins: while one request is in flight only the newest
/// wish is kept). When nothing is wished, neighbouring slices are prefetched.
fn want_slice(layer: LayerId, z: usize, outline: bool) {
    let send_now = VIEW.with(|v| {
        let mut v = v.borrow_mut();
        let p = v.pending.entry(layer).or_default();
        if p.in_flight {
            p.want = Some((z, outline));
            false
        } else {
            p.in_flight = true;
            true
        }
    });
    if send_now {
        send_render(layer, z, outline);
    }
}

/// The nearest slice around the current one that is not rendered yet.
fn prefetch_candidate(layer: LayerId) -> Option<(usize, bool)> {
    let state = VIEW.with(|v| v.borrow().state)?;
    let z = state.z.get_untracked();
    let l = state
        .layers
        .with_untracked(|ls| ls.iter().find(|l| l.info.id == layer).cloned())?;
    if !l.visible {
        return None;
    }
    let depth = l.info.shape.z;
    VIEW.with(|v| {
        let v = v.borrow();
        (1..=PREFETCH_RADIUS)
            .flat_map(|d| [z.checked_add(d), z.checked_sub(d)])
            .flatten()
            .filter(|&c| c < depth)
            .find(|&c| !v.bitmaps.contains_key(&key(&l, c)) || v.stale.contains(&key(&l, c)))
            .map(|c| (c, key(&l, c).2))
    })
}

fn send_render(layer: LayerId, z: usize, outline: bool) {
    let asked_generation = VIEW.with(|v| v.borrow().generation.get(&layer).copied().unwrap_or(0));
    // The editing selection is ringed on the layer being edited.
    let highlight = VIEW.with(|v| {
        let v = v.borrow();
        match (v.editing, v.state) {
            (Some(e), Some(s)) if e.target_layer_untracked(s) == Some(layer) => {
                e.selection.get_untracked()
            }
            _ => Vec::new(),
        }
    });
    let result = worker_client::request(
        |request| ToWorker::RenderSlice {
            request,
            layer,
            z,
            outline,
            highlight,
        },
        &[],
        move |msg, att| {
            if let FromWorker::Slice { z, .. } = msg {
                if let Some(image) = att.first() {
                    store_bitmap(layer, z, outline, image, asked_generation);
                }
            }
            let wanted = VIEW.with(|v| {
                let mut v = v.borrow_mut();
                let p = v.pending.entry(layer).or_default();
                p.in_flight = false;
                p.want.take()
            });
            request_frame();
            if let Some((z, outline)) = wanted.or_else(|| prefetch_candidate(layer)) {
                want_slice(layer, z, outline);
            }
        },
    );
    if result.is_err() {
        VIEW.with(|v| v.borrow_mut().pending.remove(&layer));
    }
}

/// Keeps a rendered slice and drops those far from the current slice.
/// A render asked before the layer's latest edit stays stale and is asked for again.
fn store_bitmap(layer: LayerId, z: usize, outline: bool, image: &JsValue, asked_generation: u64) {
    let Some(image) = image.dyn_ref::<web_sys::ImageBitmap>().cloned() else {
        return;
    };
    let again = VIEW.with(|v| {
        let mut v = v.borrow_mut();
        let current = v.state.map(|s| s.z.get_untracked()).unwrap_or(z);
        let generation = v.generation.get(&layer).copied().unwrap_or(0);
        if asked_generation == generation {
            v.stale.remove(&(layer, z, outline));
            let drawing = v.drawing;
            let last = v.strokes.len().saturating_sub(1);
            let mut k = 0;
            v.strokes.retain(|s| {
                let keep = (drawing && k == last)
                    || s.layer != layer
                    || s.z != z
                    || s.until_generation > generation;
                k += 1;
                keep
            });
        }
        if let Some(old) = v.bitmaps.insert((layer, z, outline), image) {
            old.close();
        }
        v.bitmaps.retain(|(id, bz, _), b| {
            let keep = *id != layer || bz.abs_diff(current) <= PREFETCH_RADIUS + 1;
            if !keep {
                b.close();
            }
            keep
        });
        let stale_now = v.stale.contains(&(layer, z, outline)) && z == current;
        stale_now.then_some((z, outline))
    });
    if let Some((z, outline)) = again {
        // Asked again once the in-flight request ends (`want_slice` queues it).
        VIEW.with(|v| v.borrow_mut().pending.entry(layer).or_default().want = Some((z, outline)));
    }
}

/// Scales and centres the data in the window.
fn fit(state: AppState) {
    let Some((w, h)) = state.layers.with_untracked(|l| {
        l.first()
            .map(|l| (l.info.shape.x as f64, l.info.shape.y as f64))
    }) else {
        return;
    };
    VIEW.with(|v| {
        let mut v = v.borrow_mut();
        let Some(canvas) = v.canvas.as_ref() else {
            return;
        };
        let (cw, ch) = (canvas.client_width() as f64, canvas.client_height() as f64);
        let scale = (cw / w).min(ch / h) * 0.98;
        let scale = if scale.is_finite() && scale > 0.0 {
            scale
        } else {
            1.0
        };
        v.scale = scale;
        v.tx = (cw - w * scale) / 2.0;
        v.ty = (ch - h * scale) / 2.0;
    });
    request_frame();
}

/// The part of an `height × width` slice on screen (clipped to the slice), or none when
/// nothing of it is visible.
pub fn visible_region(height: usize, width: usize) -> Option<emstudio_protocol::Region> {
    VIEW.with(|v| {
        let v = v.borrow();
        let canvas = v.canvas.as_ref()?;
        let (cw, ch) = (
            f64::from(canvas.client_width()),
            f64::from(canvas.client_height()),
        );
        let to_voxel = |c: f64, t: f64| (c - t) / v.scale;
        let clip = |a: f64, n: usize| (a.max(0.0) as usize).min(n);
        let (x0, x1) = (
            clip(to_voxel(0.0, v.tx).floor(), width),
            clip(to_voxel(cw, v.tx).ceil(), width),
        );
        let (y0, y1) = (
            clip(to_voxel(0.0, v.ty).floor(), height),
            clip(to_voxel(ch, v.ty).ceil(), height),
        );
        (x0 < x1 && y0 < y1).then_some(emstudio_protocol::Region { y0, y1, x0, x1 })
    })
}

/// Zooms by `factor` keeping the canvas point (cx, cy) fixed.
fn zoom_at(cx: f64, cy: f64, factor: f64) {
    VIEW.with(|v| {
        let mut v = v.borrow_mut();
        let new = (v.scale * factor).clamp(0.02, 64.0);
        let k = new / v.scale;
        v.tx = cx - (cx - v.tx) * k;
        v.ty = cy - (cy - v.ty) * k;
        v.scale = new;
    });
    request_frame();
}

/// Pans by (dx, dy) canvas pixels.
pub fn pan_by(dx: f64, dy: f64) {
    VIEW.with(|v| {
        let mut v = v.borrow_mut();
        v.tx += dx;
        v.ty += dy;
    });
    request_frame();
}

fn probe(state: AppState, cx: f64, cy: f64) {
    let (scale, tx, ty) = VIEW.with(|v| {
        let v = v.borrow();
        (v.scale, v.tx, v.ty)
    });
    let (x, y) = ((cx - tx) / scale, (cy - ty) / scale);
    let Some(shape) = state
        .layers
        .with_untracked(|l| l.first().map(|l| l.info.shape))
    else {
        return;
    };
    if x < 0.0 || y < 0.0 || x >= shape.x as f64 || y >= shape.y as f64 {
        state.readout.set(None);
        return;
    }
    let at = (state.z.get_untracked(), y as usize, x as usize);
    let busy = VIEW.with(|v| {
        let mut v = v.borrow_mut();
        if v.probe_in_flight {
            v.probe_next = Some(at);
            true
        } else {
            v.probe_in_flight = true;
            false
        }
    });
    if !busy {
        send_probe(state, at);
    }
}

fn send_probe(state: AppState, (z, y, x): (usize, usize, usize)) {
    let _ = worker_client::request(
        |request| ToWorker::Probe { request, z, y, x },
        &[],
        move |msg, _| {
            if let FromWorker::Probe { values, .. } = msg {
                // In the layer list's order (the worker holds layers in the order their
                // opens finished).
                let layers = state.layers.get_untracked();
                let mut values = values;
                let values = layers
                    .iter()
                    .filter_map(|l| {
                        let at = values.iter().position(|(id, _)| *id == l.info.id)?;
                        let (_, vals) = values.swap_remove(at);
                        Some((l.info.name.clone(), l.info.kind, vals))
                    })
                    .collect();
                state.readout.set(Some(Readout { x, y, z, values }));
            }
            let next = VIEW.with(|v| {
                let mut v = v.borrow_mut();
                v.probe_in_flight = false;
                v.probe_next.take()
            });
            if let Some(at) = next {
                VIEW.with(|v| v.borrow_mut().probe_in_flight = true);
                send_probe(state, at);
            }
        },
    );
}

/// Data point `(x, y)` under a canvas point.
fn data_point(cx: f64, cy: f64) -> (f64, f64) {
    VIEW.with(|v| {
        let v = v.borrow();
        ((cx - v.tx) / v.scale, (cy - v.ty) / v.scale)
    })
}

/// The voxel `[z, y, x]` under a canvas point, if inside the data.
fn voxel_at(state: AppState, cx: f64, cy: f64) -> Option<[usize; 3]> {
    let (x, y) = data_point(cx, cy);
    let shape = state
        .layers
        .with_untracked(|l| l.first().map(|l| l.info.shape))?;
    (x >= 0.0 && y >= 0.0 && x < shape.x as f64 && y < shape.y as f64)
        .then(|| [state.z.get_untracked(), y as usize, x as usize])
}

/// Sets whether Space is held (drags pan whatever the tool).
pub fn set_space(held: bool) {
    VIEW.with(|v| v.borrow_mut().space = held);
}

/// Starts what the active tool does on a press; false when the press should pan instead
/// (Pan tool, middle or right button, Space held, nothing to edit).
fn tool_down(state: AppState, ev: &web_sys::PointerEvent) -> bool {
    let Some(editing) = VIEW.with(|v| v.borrow().editing) else {
        return false;
    };
    let tool = editing.tool.get_untracked();
    let space = VIEW.with(|v| v.borrow().space);
    if ev.button() != 0 || space || (tool == Tool::Navigate && !ev.alt_key()) {
        return false;
    }
    let Some(layer) = editing.target_layer(state) else {
        return false;
    };
    let (cx, cy) = canvas_point(ev);
    let Some(voxel) = voxel_at(state, cx, cy) else {
        return tool.strokes();
    };
    if ev.alt_key() || tool == Tool::Pick {
        pick(editing, layer, voxel, PickFor::Paint);
        return true;
    }
    match tool {
        Tool::Brush | Tool::Eraser | Tool::Split => {
            let scale = VIEW.with(|v| v.borrow().scale);
            let (radius, color) = match tool {
                Tool::Brush => {
                    let [r, g, b] =
                        emstudio_core::render::label_color(editing.paint_id.get_untracked());
                    (editing.radius(scale), format!("rgb({r},{g},{b})"))
                }
                Tool::Eraser => (editing.radius(scale), "#000000".into()),
                _ => (editing.band.get_untracked() as f32, "#ffd400".into()),
            };
            let point = data_point(cx, cy);
            let pressure = if tool != Tool::Split && uses_pressure(editing, ev) {
                vec![pressure_factor(ev)]
            } else {
                Vec::new()
            };
            VIEW.with(|v| {
                let mut v = v.borrow_mut();
                v.drawing = true;
                v.strokes.push(Stroke {
                    layer,
                    z: voxel[0],
                    points: vec![point],
                    pressure,
                    radius: f64::from(radius),
                    color,
                    until_generation: u64::MAX,
                    last_event: ev.time_stamp(),
                });
            });
            request_frame();
        }
        Tool::Fill => {
            let Some(limit) = editing.fill_limit(state) else {
                state.error("an intensity fill needs an image layer");
                return true;
            };
            editing::apply(
                state,
                editing,
                LabelEdit::Fill {
                    z: voxel[0],
                    y: voxel[1],
                    x: voxel[2],
                    three_d: editing.fill_3d.get_untracked(),
                    limit,
                    id: editing.paint_id.get_untracked(),
                },
            );
        }
        Tool::Select => {
            let add = ev.shift_key() || ev.ctrl_key() || ev.meta_key();
            pick(editing, layer, voxel, PickFor::Select { add });
        }
        Tool::Split3d => match editing.seed.get_untracked() {
            None => {
                editing.seed.set(Some(voxel));
                request_frame();
            }
            Some(a) => {
                editing.seed.set(None);
                match editing.image_layer(state) {
                    Some(image) => {
                        editing::apply(state, editing, LabelEdit::Split3d { image, a, b: voxel })
                    }
                    None => state.error("a split needs an image layer (the EM stack)"),
                }
                request_frame();
            }
        },
        Tool::FfnFill => editing::ffn_fill(state, editing, voxel),
        Tool::Navigate | Tool::Pick => {}
    }
    true
}

/// True when the brush follows this pointer's pressure (a pen, with "pen pressure" on).
fn uses_pressure(editing: Editing, ev: &web_sys::PointerEvent) -> bool {
    editing.pressure.get_untracked() && ev.pointer_type() == "pen"
}

/// Radius factor for a pen's pressure: 0.2× at the lightest touch, 1× at half, 2× at full.
fn pressure_factor(ev: &web_sys::PointerEvent) -> f32 {
    (ev.pressure() * 2.0).clamp(0.2, 2.0)
}

/// Extends the stroke being drawn (with the browser's coalesced points) and moves the brush
/// outline.
fn tool_move(ev: &web_sys::PointerEvent) {
    let (cx, cy) = canvas_point(ev);
    let drawing = VIEW.with(|v| {
        let mut v = v.borrow_mut();
        v.cursor = Some((cx, cy));
        v.drawing
    });
    if drawing {
        let from = VIEW.with(|v| v.borrow().strokes.last().map_or(0, |s| s.points.len()));
        let coalesced = ev.get_coalesced_events();
        let events: Vec<web_sys::PointerEvent> = if coalesced.length() > 0 {
            coalesced.iter().filter_map(|e| e.dyn_into().ok()).collect()
        } else {
            vec![ev.clone()]
        };
        for e in events {
            let p = data_point(e.offset_x(), e.offset_y());
            VIEW.with(|v| {
                if let Some(s) = v.borrow_mut().strokes.last_mut() {
                    s.points.push(p);
                    if !s.pressure.is_empty() {
                        s.pressure.push(pressure_factor(&e));
                    }
                    s.last_event = e.time_stamp();
                }
            });
        }
        draw_stroke_tail(from);
    }
    let shows_cursor = VIEW.with(|v| {
        v.borrow().editing.is_some_and(|e| {
            let tool = e.tool.get_untracked();
            tool.strokes() || tool == Tool::FfnFill
        })
    });
    if drawing || shows_cursor {
        request_frame();
    }
}

/// Ends a stroke: sends it as an edit; it stays drawn until the worker's render arrives.
fn tool_up(state: AppState) {
    let sent = VIEW.with(|v| {
        let mut v = v.borrow_mut();
        if !std::mem::replace(&mut v.drawing, false) {
            return None;
        }
        let generation = v
            .strokes
            .last()
            .map(|s| v.generation.get(&s.layer).copied().unwrap_or(0));
        let s = v.strokes.last_mut()?;
        s.until_generation = generation.unwrap_or(0) + 1;
        Some((
            s.z,
            s.points
                .iter()
                .map(|(x, y)| (*y as f32, *x as f32))
                .collect::<Vec<_>>(),
            s.radius as f32,
            s.pressure.clone(),
        ))
    });
    let Some((z, points, radius, pressure)) = sent else {
        return;
    };
    let Some(editing) = VIEW.with(|v| v.borrow().editing) else {
        return;
    };
    let edit = match editing.tool.get_untracked() {
        Tool::Brush => LabelEdit::Brush {
            z,
            points,
            radius,
            pressure,
            id: editing.paint_id.get_untracked(),
        },
        Tool::Eraser => LabelEdit::Brush {
            z,
            points,
            radius,
            pressure,
            id: 0,
        },
        Tool::Split => match editing.image_layer(state) {
            Some(image) => {
                // One selected segment is the one to split; else the one under the stroke.
                let sel = editing.selection.get_untracked();
                let segment = (sel.len() == 1).then(|| sel[0]);
                LabelEdit::Split2d {
                    z,
                    stroke: points,
                    band: radius,
                    segment,
                    image,
                }
            }
            None => {
                clear_strokes();
                return state.error("a split needs an image layer (the EM stack)");
            }
        },
        _ => return clear_strokes(),
    };
    editing::apply(state, editing, edit);
}

/// What a click that reads a segment ID is for.
#[derive(Clone, Copy)]
enum PickFor {
    /// The paint ID.
    Paint,
    /// The selection (added to it, or replacing it).
    Select { add: bool },
}

/// Reads the target layer's ID at a voxel and uses it.
fn pick(editing: Editing, layer: LayerId, [z, y, x]: [usize; 3], what: PickFor) {
    let _ = worker_client::request(
        |request| ToWorker::Probe { request, z, y, x },
        &[],
        move |msg, _| {
            let FromWorker::Probe { values, .. } = msg else {
                return;
            };
            let Some(id) = values
                .iter()
                .find(|(l, _)| *l == layer)
                .and_then(|(_, v)| v.first())
                .map(|v| *v as u32)
            else {
                return;
            };
            match what {
                PickFor::Paint if id != 0 => editing.paint_id.set(id),
                PickFor::Paint => {}
                PickFor::Select { add } => editing.selection.update(|sel| {
                    if id == 0 {
                        if !add {
                            sel.clear();
                        }
                    } else if let Some(i) = sel.iter().position(|s| *s == id) {
                        sel.remove(i);
                    } else {
                        if !add {
                            sel.clear();
                        }
                        sel.push(id);
                    }
                }),
            }
        },
    );
}

fn canvas_point(ev: &web_sys::MouseEvent) -> (f64, f64) {
    (ev.offset_x(), ev.offset_y())
}

/// The viewer component.
#[component]
pub fn Viewer() -> impl IntoView {
    let state = expect_context::<AppState>();
    let canvas_ref = NodeRef::<Canvas>::new();
    let editing_ctx = expect_context::<Editing>();
    VIEW.with(|v| {
        let mut v = v.borrow_mut();
        v.state = Some(state);
        v.editing = Some(editing_ctx);
    });

    canvas_ref.on_load(move |canvas| {
        VIEW.with(|v| v.borrow_mut().canvas = Some(canvas));
        request_frame();
    });

    // Slice or layer settings changed: ask the worker for what is missing.
    Effect::new(move |_| {
        let z = state.z.get();
        let layers = state.layers.get();
        VIEW.with(|v| {
            let mut v = v.borrow_mut();
            v.slice_asked_at = Some((z, now()));
            v.bitmaps.retain(|(id, _, _), b| {
                let keep = layers.iter().any(|l| l.info.id == *id);
                if !keep {
                    b.close();
                }
                keep
            });
        });
        for l in layers.iter().filter(|l| l.visible) {
            let cached = VIEW.with(|v| {
                let v = v.borrow();
                v.bitmaps.contains_key(&key(l, z)) && !v.stale.contains(&key(l, z))
            });
            if cached {
                // Shown now; keep the neighbourhood warm.
                if let Some((c, o)) = prefetch_candidate(l.info.id) {
                    want_slice(l.info.id, c, o);
                }
            } else if z < l.info.shape.z {
                want_slice(l.info.id, z, l.outline);
            }
        }
        request_frame();
    });

    // A finished job may complete the picture ("data-z-shown").
    Effect::new(move |_| {
        state.jobs.track();
        request_frame();
    });

    Effect::new(move |_| {
        state.fit.get();
        fit(state);
    });

    Effect::new(move |_| {
        state.preview.track();
        state.z.track();
        pump_preview();
    });

    // A new selection re-renders the edited layer with the selected segments ringed.
    Effect::new(move |prev: Option<()>| {
        editing_ctx.selection.track();
        if prev.is_some() {
            if let Some(layer) = editing_ctx.target_layer_untracked(state) {
                refresh_layer(layer, 0, state.depth().saturating_sub(1));
            }
        }
    });

    Effect::new(move |_| {
        if let Some([_, y, x]) = state.marker.get() {
            center_on(x as f64 + 0.5, y as f64 + 0.5);
        }
    });

    let on_resize = window_event_listener(leptos::ev::resize, move |_| request_frame());
    on_cleanup(move || on_resize.remove());

    view! {
        <canvas
            class="viewer-canvas"
            class:painting=move || editing_ctx.tool.get() != Tool::Navigate
            data-testid="viewer"
            node_ref=canvas_ref
            on:wheel=move |ev: web_sys::WheelEvent| {
                ev.prevent_default();
                let (cx, cy) = canvas_point(&ev);
                zoom_at(cx, cy, (-ev.delta_y() * 0.0015).exp());
            }
            on:pointerdown=move |ev: web_sys::PointerEvent| {
                if let Some(t) = ev.target().and_then(|t| t.dyn_into::<web_sys::Element>().ok()) {
                    let _ = t.set_pointer_capture(ev.pointer_id());
                }
                if !tool_down(state, &ev) {
                    VIEW.with(|v| v.borrow_mut().drag = Some((ev.client_x(), ev.client_y())));
                }
            }
            on:pointermove=move |ev: web_sys::PointerEvent| {
                let drag = VIEW.with(|v| v.borrow().drag);
                if let Some((x0, y0)) = drag {
                    let (x, y) = (ev.client_x(), ev.client_y());
                    VIEW.with(|v| v.borrow_mut().drag = Some((x, y)));
                    pan_by(x - x0, y - y0);
                }
                tool_move(&ev);
                let (cx, cy) = canvas_point(&ev);
                probe(state, cx, cy);
            }
            on:pointerup=move |_| {
                VIEW.with(|v| v.borrow_mut().drag = None);
                tool_up(state);
            }
            on:pointercancel=move |_| {
                VIEW.with(|v| v.borrow_mut().drag = None);
                tool_up(state);
            }
            on:contextmenu=move |ev: web_sys::MouseEvent| ev.prevent_default()
            on:pointerleave=move |_| {
                state.readout.set(None);
                VIEW.with(|v| v.borrow_mut().cursor = None);
                request_frame();
            }
            on:dblclick=move |_| fit(state)
        ></canvas>
    }
}
