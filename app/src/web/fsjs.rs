//! Bindings to `js/fs.js`: File System Access folders, the IndexedDB "Recent" list, directory
//! `<input>` and drag-and-drop fallbacks, saving files, and the model store in OPFS. The JS side only moves handles and
//! `File`s around; every decision is made in Rust.

use wasm_bindgen::prelude::*;

#[wasm_bindgen(module = "/js/fs.js")]
extern "C" {
    #[wasm_bindgen(js_name = supportsFsAccess)]
    pub fn supports_fs_access() -> bool;
    #[wasm_bindgen(js_name = pickDirectory, catch)]
    pub async fn pick_directory(mode: &str) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(js_name = readDirectory, catch)]
    pub async fn read_directory(handle: &JsValue) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(js_name = listRecent, catch)]
    pub async fn list_recent() -> Result<JsValue, JsValue>;
    #[wasm_bindgen(js_name = saveRecent, catch)]
    pub async fn save_recent(handle: &JsValue) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(js_name = forgetRecent, catch)]
    pub async fn forget_recent(name: &str) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(js_name = recentHandle, catch)]
    pub async fn recent_handle(name: &str) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(js_name = ensurePermission, catch)]
    pub async fn ensure_permission(handle: &JsValue) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(js_name = filesFromInput)]
    pub fn files_from_input(input: &web_sys::HtmlInputElement) -> JsValue;
    #[wasm_bindgen(js_name = folderNameFromInput)]
    pub fn folder_name_from_input(input: &web_sys::HtmlInputElement) -> String;
    #[wasm_bindgen(js_name = filesFromDrop, catch)]
    pub async fn files_from_drop(data: &web_sys::DataTransfer) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(js_name = writeFiles, catch)]
    pub async fn write_files(
        dir: &JsValue,
        names: &js_sys::Array,
        buffers: &js_sys::Array,
    ) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(js_name = subDirectory, catch)]
    pub async fn sub_directory(dir: &JsValue, name: &str) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(js_name = downloadFile)]
    pub fn download_file(name: &str, buffer: &JsValue, mime: &str);
    #[wasm_bindgen(js_name = opfsListModels, catch)]
    pub async fn opfs_list_models() -> Result<JsValue, JsValue>;
    #[wasm_bindgen(js_name = opfsSaveModel, catch)]
    pub async fn opfs_save_model(name: &str, buffer: &JsValue) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(js_name = opfsDeleteModel, catch)]
    pub async fn opfs_delete_model(name: &str) -> Result<JsValue, JsValue>;
}

/// A file found in an opened folder, with its path relative to that folder.
pub struct Entry {
    /// `"image/0001.png"` or `"0001.png"`.
    pub path: String,
    /// The `File` object.
    pub file: JsValue,
}

/// Converts the JS `[{path, file}]` array into entries.
pub fn entries(value: &JsValue) -> Vec<Entry> {
    js_sys::Array::from(value)
        .iter()
        .filter_map(|e| {
            let path = js_sys::Reflect::get(&e, &"path".into()).ok()?.as_string()?;
            let file = js_sys::Reflect::get(&e, &"file".into()).ok()?;
            Some(Entry { path, file })
        })
        .collect()
}

/// A readable message from a JS exception.
pub fn js_error(e: &JsValue) -> String {
    e.as_string()
        .or_else(|| {
            js_sys::Reflect::get(e, &"message".into())
                .ok()
                .and_then(|m| m.as_string())
        })
        .unwrap_or_else(|| format!("{e:?}"))
}

/// True when the exception is the user closing a picker.
pub fn is_abort(e: &JsValue) -> bool {
    js_sys::Reflect::get(e, &"name".into())
        .ok()
        .and_then(|n| n.as_string())
        .is_some_and(|n| n == "AbortError")
}
