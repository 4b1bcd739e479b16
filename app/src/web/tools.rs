//! The tools column: tabs for Edit (painting and proofreading), Filters, Postprocess, Evaluate, Train and Infer. Panels stay mounted when
//! hidden, so a half-built pipeline or a report survives switching tabs.

use super::edit_panel::EditPanel;
use super::evaluate_panel::EvaluatePanel;
use super::filters_panel::FiltersPanel;
use super::infer_panel::InferPanel;
use super::postprocess_panel::PostprocessPanel;
use super::train_panel::TrainPanel;
use leptos::prelude::*;

/// The selected tab of the tools column (context; the keyboard opens Edit).
#[derive(Clone, Copy)]
pub struct ToolTab(pub RwSignal<&'static str>);

/// The tab strip and the panels.
#[component]
pub fn Tools() -> impl IntoView {
    let tab = expect_context::<ToolTab>().0;
    let tab_button = move |id: &'static str, label: &'static str| {
        view! {
            <button role="tab" class:active=move || tab.get() == id data-testid=format!("tab-{id}")
                on:click=move |_| tab.set(id)>{label}</button>
        }
    };
    view! {
        <aside class="tools">
            <nav class="tabs" role="tablist">
                {tab_button("edit", "Edit")}
                {tab_button("filters", "Filters")}
                {tab_button("postprocess", "Postprocess")}
                {tab_button("evaluate", "Evaluate")}
                {tab_button("train", "Train")}
                {tab_button("infer", "Infer")}
            </nav>
            <div class:hidden=move || tab.get() != "edit"><EditPanel/></div>
            <div class:hidden=move || tab.get() != "filters"><FiltersPanel/></div>
            <div class:hidden=move || tab.get() != "postprocess"><PostprocessPanel/></div>
            <div class:hidden=move || tab.get() != "evaluate"><EvaluatePanel/></div>
            <div class:hidden=move || tab.get() != "train"><TrainPanel/></div>
            <div class:hidden=move || tab.get() != "infer"><InferPanel/></div>
        </aside>
    }
}
