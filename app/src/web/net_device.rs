//! Where the networks run, shared by the Train and Infer panels: a choice (Auto / WebGPU /
//! CPU) and what the worker found when it looked for a WebGPU adapter (name, software or
//! hardware, the limits that bound inference tiles).

use super::state::AppState;
use super::worker_client;
use crate::training_ui::{describe_device, Found};
use emstudio_protocol::{FromWorker, NetDevice, ToWorker};
use leptos::prelude::*;

/// The shared choice and the probe's answer (context).
#[derive(Clone, Copy)]
pub struct NetDevices {
    /// The user's choice.
    pub choice: RwSignal<NetDevice>,
    /// The probe's answer (None until it comes).
    pub found: RwSignal<Option<Found>>,
    /// Why the last probe got no answer (the network worker did not start).
    problem: RwSignal<Option<String>>,
    probed: RwSignal<bool>,
}

impl NetDevices {
    /// Nothing chosen or found yet.
    pub fn new() -> Self {
        Self {
            choice: RwSignal::new(NetDevice::Auto),
            found: RwSignal::new(None),
            problem: RwSignal::new(None),
            probed: RwSignal::new(false),
        }
    }

    /// Asks the worker once (after it is ready) which devices it has.
    fn probe(self, state: AppState) {
        if self.probed.get_untracked() || !state.ready.get_untracked() {
            return;
        }
        self.probed.set(true);
        let (found, probed, problem) = (self.found, self.probed, self.problem);
        let result = worker_client::request(
            |request| ToWorker::ProbeDevices { request },
            &[],
            move |msg, _| match msg {
                FromWorker::Devices {
                    gpu,
                    gpu_missing,
                    cpu,
                    ..
                } => {
                    problem.set(None);
                    found.set(Some(Found {
                        gpu,
                        gpu_missing,
                        cpu,
                    }));
                }
                // The network worker could not start: say so, and ask again next time.
                FromWorker::Failed { error, .. } => {
                    probed.set(false);
                    problem.set(Some(error.clone()));
                    state.error(format!("looking for devices: {error}"));
                }
                _ => {}
            },
        );
        if let Err(e) = result {
            state.error(e);
        }
    }
}

/// The "Run on" row: the choice and a line on the device it means.
#[component]
pub fn DevicePicker(
    /// Prefix for `data-testid`s and the id of the tab it sits in ("train", "infer").
    id: &'static str,
) -> impl IntoView {
    let state = expect_context::<AppState>();
    let devices = expect_context::<NetDevices>();
    let tab = expect_context::<super::tools::ToolTab>().0;
    // Asked when the panel is first shown: the answer comes from the network worker, which
    // starts on its first request (a 37 MB module the data work does not need).
    Effect::new(move |_| {
        if state.ready.get() && tab.get() == id {
            devices.probe(state);
        }
    });
    let value = move || match devices.choice.get() {
        NetDevice::Auto => "auto",
        NetDevice::Gpu => "gpu",
        NetDevice::Cpu => "cpu",
    };
    view! {
        <label class="row">"Run on"
            <select data-testid=format!("{id}-device-choice") prop:value=value on:change=move |ev| {
                devices.choice.set(match event_target_value(&ev).as_str() {
                    "gpu" => NetDevice::Gpu,
                    "cpu" => NetDevice::Cpu,
                    _ => NetDevice::Auto,
                });
            }>
                <option value="auto">"Auto (GPU if fast)"</option>
                <option value="gpu">"WebGPU"</option>
                <option value="cpu">"CPU"</option>
            </select></label>
        <p class="hint" data-testid=format!("{id}-device-info")>
            {move || match (devices.problem.get(), devices.found.get()) {
                (Some(_), _) => "the network worker did not start (see the message above); leave this tab and come back to look again".to_string(),
                (None, Some(f)) => describe_device(devices.choice.get(), &f),
                (None, None) => "looking for a WebGPU adapter…".to_string(),
            }}
        </p>
    }
}
