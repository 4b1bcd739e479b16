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
//! `data-marker` (`z,y,x` of the marker ring on screen, absent when none).

use super::state::{AppState, Readout};
use super::worker_client;
use emstudio_protocol::{FromWorker, LayerId, ToWorker};
use leptos::html::Canvas;
use leptos::prelude::*;
use std::cell::RefCell;
use std::collections::HashMap;
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
            all_current &= exact.is_some();
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

/// Rings a data point (x, y) with a circle of fixed screen size.
fn draw_marker(ctx: &CanvasRenderingContext2d, scale: f64, x: f64, y: f64) {
    ctx.begin_path();
    let _ = ctx.arc(x, y, 14.0 / scale, 0.0, std::f64::consts::TAU);
    ctx.set_line_width(3.0 / scale);
    ctx.set_stroke_style_str("#ffd400");
    ctx.stroke();
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
            .find(|&c| !v.bitmaps.contains_key(&key(&l, c)))
            .map(|c| (c, key(&l, c).2))
    })
}

fn send_render(layer: LayerId, z: usize, outline: bool) {
    let result = worker_client::request(
        |request| ToWorker::RenderSlice {
            request,
            layer,
            z,
            outline,
        },
        &[],
        move |msg, att| {
            if let FromWorker::Slice { z, .. } = msg {
                if let Some(image) = att.first() {
                    store_bitmap(layer, z, outline, image);
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
fn store_bitmap(layer: LayerId, z: usize, outline: bool, image: &JsValue) {
    let Some(image) = image.dyn_ref::<web_sys::ImageBitmap>().cloned() else {
        return;
    };
    VIEW.with(|v| {
        let mut v = v.borrow_mut();
        let current = v.state.map(|s| s.z.get_untracked()).unwrap_or(z);
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
    });
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
                let layers = state.layers.get_untracked();
                let values = values
                    .into_iter()
                    .filter_map(|(id, vals)| {
                        layers
                            .iter()
                            .find(|l| l.info.id == id)
                            .map(|l| (l.info.name.clone(), l.info.kind, vals))
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

fn canvas_point(ev: &web_sys::MouseEvent) -> (f64, f64) {
    (ev.offset_x(), ev.offset_y())
}

/// The viewer component.
#[component]
pub fn Viewer() -> impl IntoView {
    let state = expect_context::<AppState>();
    let canvas_ref = NodeRef::<Canvas>::new();
    VIEW.with(|v| v.borrow_mut().state = Some(state));

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
            let cached = VIEW.with(|v| v.borrow().bitmaps.contains_key(&key(l, z)));
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
                VIEW.with(|v| v.borrow_mut().drag = Some((ev.client_x(), ev.client_y())));
            }
            on:pointermove=move |ev: web_sys::PointerEvent| {
                let drag = VIEW.with(|v| v.borrow().drag);
                if let Some((x0, y0)) = drag {
                    let (x, y) = (ev.client_x(), ev.client_y());
                    VIEW.with(|v| v.borrow_mut().drag = Some((x, y)));
                    pan_by(x - x0, y - y0);
                }
                let (cx, cy) = canvas_point(&ev);
                probe(state, cx, cy);
            }
            on:pointerup=move |_| VIEW.with(|v| v.borrow_mut().drag = None)
            on:pointercancel=move |_| VIEW.with(|v| v.borrow_mut().drag = None)
            on:pointerleave=move |_| state.readout.set(None)
            on:dblclick=move |_| fit(state)
        ></canvas>
    }
}
