//! The browser's origin-private file system (OPFS) as the worker uses it: the autosaved editing
//! sessions under `sessions/<key>/` (format in [`crate::autosave`]). Writes go through
//! `createWritable`, which replaces a file atomically when the stream closes.

use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    File, FileSystemDirectoryHandle, FileSystemFileHandle, FileSystemGetDirectoryOptions,
    FileSystemGetFileOptions, FileSystemRemoveOptions, FileSystemWritableFileStream,
    WorkerGlobalScope,
};

/// A readable message from a JS exception.
fn js(e: JsValue) -> String {
    js_sys::Reflect::get(&e, &"message".into())
        .ok()
        .and_then(|m| m.as_string())
        .or_else(|| e.as_string())
        .unwrap_or_else(|| format!("{e:?}"))
}

fn is_not_found(e: &JsValue) -> bool {
    js_sys::Reflect::get(e, &"name".into())
        .ok()
        .and_then(|n| n.as_string())
        .is_some_and(|n| n == "NotFoundError" || n == "TypeMismatchError")
}

async fn root() -> Result<FileSystemDirectoryHandle, String> {
    let scope: WorkerGlobalScope = js_sys::global().unchecked_into();
    let dir = JsFuture::from(scope.navigator().storage().get_directory())
        .await
        .map_err(|e| format!("private storage is unavailable ({})", js(e)))?;
    Ok(dir.unchecked_into())
}

async fn subdir(
    parent: &FileSystemDirectoryHandle,
    name: &str,
    create: bool,
) -> Result<Option<FileSystemDirectoryHandle>, String> {
    let options = FileSystemGetDirectoryOptions::new();
    options.set_create(create);
    match JsFuture::from(parent.get_directory_handle_with_options(name, &options)).await {
        Ok(d) => Ok(Some(d.unchecked_into())),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(format!("{name}: {}", js(e))),
    }
}

/// The folder holding all sessions.
pub async fn sessions_dir() -> Result<FileSystemDirectoryHandle, String> {
    subdir(&root().await?, "sessions", true)
        .await?
        .ok_or_else(|| "private storage: could not make the sessions folder".to_string())
}

/// One session's folder (none when it does not exist and `create` is false).
pub async fn session_dir(
    key: &str,
    create: bool,
) -> Result<Option<FileSystemDirectoryHandle>, String> {
    subdir(&sessions_dir().await?, key, create).await
}

/// Writes (replaces) a file.
pub async fn write(
    dir: &FileSystemDirectoryHandle,
    name: &str,
    bytes: &[u8],
) -> Result<(), String> {
    let err = |e: JsValue| format!("saving {name}: {}", js(e));
    let options = FileSystemGetFileOptions::new();
    options.set_create(true);
    let file: FileSystemFileHandle =
        JsFuture::from(dir.get_file_handle_with_options(name, &options))
            .await
            .map_err(err)?
            .unchecked_into();
    let stream: FileSystemWritableFileStream = JsFuture::from(file.create_writable())
        .await
        .map_err(err)?
        .unchecked_into();
    JsFuture::from(stream.write_with_u8_array(bytes).map_err(err)?)
        .await
        .map_err(err)?;
    JsFuture::from(stream.close()).await.map_err(err)?;
    Ok(())
}

/// Reads a file (none when it does not exist).
pub async fn read(dir: &FileSystemDirectoryHandle, name: &str) -> Result<Option<Vec<u8>>, String> {
    let err = |e: JsValue| format!("reading {name}: {}", js(e));
    let handle = match JsFuture::from(dir.get_file_handle(name)).await {
        Ok(h) => h.unchecked_into::<FileSystemFileHandle>(),
        Err(e) if is_not_found(&e) => return Ok(None),
        Err(e) => return Err(err(e)),
    };
    let file: File = JsFuture::from(handle.get_file())
        .await
        .map_err(err)?
        .unchecked_into();
    let buffer = JsFuture::from(file.array_buffer()).await.map_err(err)?;
    Ok(Some(js_sys::Uint8Array::new(&buffer).to_vec()))
}

/// Removes a file or (recursively) a folder; a missing one is not an error.
pub async fn remove(dir: &FileSystemDirectoryHandle, name: &str) -> Result<(), String> {
    let options = FileSystemRemoveOptions::new();
    options.set_recursive(true);
    match JsFuture::from(dir.remove_entry_with_options(name, &options)).await {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(format!("removing {name}: {}", js(e))),
    }
}

/// Names of the entries of a folder.
pub async fn names(dir: &FileSystemDirectoryHandle) -> Result<Vec<String>, String> {
    let iter: JsValue = dir.keys().into();
    let next: js_sys::Function = js_sys::Reflect::get(&iter, &"next".into())
        .map_err(js)?
        .dyn_into()
        .map_err(js)?;
    let mut out = Vec::new();
    loop {
        let promise: js_sys::Promise = next.call0(&iter).map_err(js)?.dyn_into().map_err(js)?;
        let step = JsFuture::from(promise).await.map_err(js)?;
        let done = js_sys::Reflect::get(&step, &"done".into())
            .map_err(js)?
            .as_bool()
            .unwrap_or(true);
        if done {
            return Ok(out);
        }
        if let Some(name) = js_sys::Reflect::get(&step, &"value".into())
            .map_err(js)?
            .as_string()
        {
            out.push(name);
        }
    }
}
