//! The networks' device in the browser: WebGPU through burn's wgpu runtime when the browser has
//! an adapter, else burn flex on the CPU.
//!
//! burn's wgpu runtime can be initialised once per worker, so the adapter is requested on first
//! use and the outcome (device and limits, or why there is none) is kept for the worker's life.
//! `NetDevice::Auto` skips software adapters (SwiftShader, llvmpipe): they emulate the GPU on the
//! CPU and are slower than burn flex there.

use crate::jobs::cpu_description;
use emstudio_nets::Device;
use emstudio_protocol::{GpuInfo, NetDevice};
use std::cell::RefCell;
use wasm_bindgen::{JsCast, JsValue};

/// What a run uses: the device, a line for the UI, and the storage-binding limit (GPU only).
pub struct Chosen {
    /// The device (without autodiff).
    pub device: Device,
    /// "WebGPU: SwiftShader (vulkan, software)" or the CPU's description.
    pub description: String,
    /// Largest storage-buffer binding, bytes (None on the CPU).
    pub max_binding: Option<u64>,
}

enum State {
    Untried,
    Initialising,
    Done(Result<(Device, GpuInfo), String>),
}

thread_local! {
    static GPU: RefCell<State> = const { RefCell::new(State::Untried) };
}

/// The WebGPU device and its adapter, or why there is none (asked once, then remembered).
pub async fn gpu() -> Result<(Device, GpuInfo), String> {
    loop {
        let ready = GPU.with(|g| match &*g.borrow() {
            State::Untried => None,
            State::Initialising => Some(None),
            State::Done(r) => Some(Some(r.clone())),
        });
        match ready {
            Some(Some(r)) => return r,
            // Another request is initialising: wait for it.
            Some(None) => emstudio_webmsg::glue::sleep_ms(20).await,
            None => break,
        }
    }
    GPU.with(|g| *g.borrow_mut() = State::Initialising);
    let result = initialise().await;
    GPU.with(|g| *g.borrow_mut() = State::Done(result.clone()));
    result
}

async fn initialise() -> Result<(Device, GpuInfo), String> {
    let navigator = js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str("navigator"))
        .map_err(|_| "no navigator in this worker".to_string())?;
    let has_gpu = js_sys::Reflect::get(&navigator, &JsValue::from_str("gpu"))
        .map(|g| !g.is_undefined() && !g.is_null())
        .unwrap_or(false);
    if !has_gpu {
        return Err("this browser offers no WebGPU (navigator.gpu is missing)".into());
    }
    let browser_name = adapter_name(&navigator).await;
    let (device, setup) = Device::wgpu_options()
        .init_with_setup_async()
        .await
        .map_err(|e| format!("no usable WebGPU adapter: {e}"))?;
    let info = setup.adapter.get_info();
    let limits = setup.device.limits();
    let name = [
        browser_name.as_str(),
        info.name.as_str(),
        info.driver.as_str(),
        info.driver_info.as_str(),
    ]
    .iter()
    .filter(|s| !s.is_empty())
    .copied()
    .collect::<Vec<_>>()
    .join(", ");
    let lower = name.to_lowercase();
    let software = info.device_type == emstudio_nets::wgpu::DeviceType::Cpu
        || ["swiftshader", "llvmpipe", "lavapipe", "software"]
            .iter()
            .any(|s| lower.contains(s));
    Ok((
        device,
        GpuInfo {
            adapter: if name.is_empty() {
                format!("vendor {:#x}, device {:#x}", info.vendor, info.device)
            } else {
                name
            },
            backend: format!("{:?}", info.backend).to_lowercase(),
            software,
            max_buffer_size: limits.max_buffer_size,
            max_storage_binding: limits.max_storage_buffer_binding_size,
            max_workgroup_invocations: limits.max_compute_invocations_per_workgroup,
        },
    ))
}

/// The adapter's vendor, architecture and description as the browser reports them
/// (`GPUAdapter.info`; wgpu passes on only the description), or "" when unknown.
async fn adapter_name(navigator: &JsValue) -> String {
    let get = |o: &JsValue, k: &str| js_sys::Reflect::get(o, &JsValue::from_str(k)).ok();
    let Some(gpu) = get(navigator, "gpu") else {
        return String::new();
    };
    let Some(request) =
        get(&gpu, "requestAdapter").and_then(|f| f.dyn_into::<js_sys::Function>().ok())
    else {
        return String::new();
    };
    let Some(promise) = request
        .call0(&gpu)
        .ok()
        .and_then(|p| p.dyn_into::<js_sys::Promise>().ok())
    else {
        return String::new();
    };
    let Ok(adapter) = wasm_bindgen_futures::JsFuture::from(promise).await else {
        return String::new();
    };
    let Some(info) = get(&adapter, "info").filter(|i| i.is_object()) else {
        return String::new();
    };
    ["vendor", "architecture", "device", "description"]
        .iter()
        .filter_map(|k| get(&info, k).and_then(|v| v.as_string()))
        .filter(|v| !v.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// One line on a GPU for the UI.
pub fn describe(info: &GpuInfo) -> String {
    format!(
        "WebGPU: {}{} · largest binding {} MiB",
        info.adapter,
        if info.software { " (software)" } else { "" },
        info.max_storage_binding >> 20
    )
}

/// The device for a run. `Gpu` fails with the reason when WebGPU is unavailable; `Auto` falls
/// back to the CPU then, and for software adapters.
pub async fn choose(choice: NetDevice) -> Result<Chosen, String> {
    let cpu = || Chosen {
        device: Device::flex(),
        description: cpu_description(),
        max_binding: None,
    };
    let on_gpu = |(device, info): (Device, GpuInfo)| Chosen {
        device,
        description: describe(&info),
        max_binding: Some(info.max_storage_binding),
    };
    match choice {
        NetDevice::Cpu => Ok(cpu()),
        NetDevice::Gpu => gpu()
            .await
            .map(on_gpu)
            .map_err(|e| format!("{e}; choose the CPU instead")),
        NetDevice::Auto => Ok(match gpu().await {
            Ok(g) if !g.1.software => on_gpu(g),
            _ => cpu(),
        }),
    }
}
