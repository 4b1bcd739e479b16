//! The tools column: tabs for Filters, Postprocess and Evaluate. Panels stay mounted when
//! hidden, so a half-built pipeline or a report survives switching tabs.

use super::evaluate_panel::EvaluatePanel;
use super::filters_panel::FiltersPanel;
use super::postprocess_panel::PostprocessPanel;
use leptos::prelude::*;

/// The tab strip and the three panels.
#[component]
pub fn Tools() -> impl IntoView {
    let tab = RwSignal::new("filters");
    let tab_button = move |id: &'static str, label: &'static str| {
        view! {
            <button role="tab" class:active=move || tab.get() == id data-testid=format!("tab-{id}")
                on:click=move |_| tab.set(id)>{label}</button>
        }
    };
    view! {
        <aside class="tools">
            <nav class="tabs" role="tablist">
                {tab_button("filters", "Filters")}
                {tab_button("postprocess", "Postprocess")}
                {tab_button("evaluate", "Evaluate")}
            </nav>
            <div class:hidden=move || tab.get() != "filters"><FiltersPanel/></div>
            <div class:hidden=move || tab.get() != "postprocess"><PostprocessPanel/></div>
            <div class:hidden=move || tab.get() != "evaluate"><EvaluatePanel/></div>
        </aside>
    }
}
