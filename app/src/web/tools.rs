//! The tools column: tabs for Edit (painting and proofreading), Filters, Postprocess, Evaluate, Train (a 2D CNN, or a flood-filling network for 3D neurons) and Infer. Panels stay mounted when
//! hidden, so a half-built pipeline or a report survives switching tabs.

use super::edit_panel::EditPanel;
use super::evaluate_panel::EvaluatePanel;
use super::ffn_train_panel::FfnTrainPanel;
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
    // The Train tab trains a 2D CNN or a flood-filling network (3D neurons).
    let train_ffn = RwSignal::new(false);
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
            <div class:hidden=move || tab.get() != "train">
                <div class="choice train-kind">
                    <label><input type="radio" name="train-kind" data-testid="train-kind-cnn" prop:checked=move || !train_ffn.get()
                        on:change=move |_| train_ffn.set(false) />"2D network (CNN)"</label>
                    <label><input type="radio" name="train-kind" data-testid="train-kind-ffn" prop:checked=move || train_ffn.get()
                        on:change=move |_| train_ffn.set(true) />"3D neurons (FFN)"</label>
                </div>
                <div class:hidden=move || train_ffn.get()><TrainPanel/></div>
                <div class:hidden=move || !train_ffn.get()><FfnTrainPanel/></div>
            </div>
            <div class:hidden=move || tab.get() != "infer"><InferPanel/></div>
        </aside>
    }
}
