//! The Filters panel's editing model, platform-free so it is tested natively: a step is the
//! JSON object of its [`FilterSpec`], edited field by field, and validated by parsing it back.

// Natively only the tests use this module; the browser build uses all of it.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

use emstudio_core::filters::{catalog, FilterSpec, Pipeline};
use serde_json::Value;

/// One step being edited.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// Stable key for the list.
    pub key: u32,
    /// The step's JSON object.
    pub value: Value,
}

impl Step {
    pub fn spec(&self) -> Result<FilterSpec, String> {
        let spec: FilterSpec =
            serde_json::from_value(self.value.clone()).map_err(|e| e.to_string())?;
        spec.validate().map_err(|e| e.to_string())?;
        Ok(spec)
    }
    pub fn name(&self) -> String {
        let tag = self
            .value
            .get("filter")
            .and_then(Value::as_str)
            .unwrap_or("");
        catalog()
            .into_iter()
            .find(|e| e.default.name() == tag)
            .map(|e| e.label.to_string())
            .unwrap_or_else(|| tag.to_string())
    }
}

/// Per-axis parameters: 2 values per slice, 3 for a 3D filter.
pub const AXIS_FIELDS: [&str; 4] = ["sigma", "size", "radius", "block_size"];

/// Choices of string-valued parameters.
pub fn choices(field: &str) -> Option<&'static [&'static str]> {
    match field {
        "op" => Some(&["erode", "dilate", "open", "close"]),
        "mode" => Some(&["grey", "binary"]),
        "footprint" => Some(&["ball", "box", "cross"]),
        _ => None,
    }
}

pub fn is_3d(value: &Value) -> bool {
    AXIS_FIELDS.iter().any(|f| {
        value
            .get(*f)
            .and_then(Value::as_array)
            .is_some_and(|a| a.len() == 3)
    })
}

pub fn has_axes(value: &Value) -> bool {
    AXIS_FIELDS.iter().any(|f| value.get(*f).is_some())
}

/// Switches per-axis lists between `[y, x]` and `[z, y, x]` (z starts equal to y).
pub fn set_3d(value: &mut Value, on: bool) {
    for f in AXIS_FIELDS {
        if let Some(Value::Array(a)) = value.get_mut(f) {
            if on && a.len() == 2 {
                a.insert(0, a[0].clone());
            } else if !on && a.len() == 3 {
                a.remove(0);
            }
        }
    }
}

/// The pipeline as JSON if every step is valid, else the first problem.
pub fn pipeline_json(steps: &[Step]) -> Result<String, String> {
    if steps.is_empty() {
        return Err("add a filter first".into());
    }
    let specs = steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            s.spec()
                .map_err(|e| format!("step {} ({}): {e}", i + 1, s.name()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Pipeline::new(specs).to_json())
}

pub fn parse_number(text: &str) -> Option<Value> {
    let t = text.trim();
    if t.is_empty() {
        return Some(Value::Null);
    }
    let n: f64 = t.parse().ok()?;
    serde_json::Number::from_f64(n).map(|n| {
        if n.as_f64()
            .is_some_and(|f| f.fract() == 0.0 && f.abs() < 1e15)
        {
            Value::from(n.as_f64().unwrap_or(0.0) as i64)
        } else {
            Value::Number(n)
        }
    })
}

pub fn value_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_switch_and_validation() {
        let mut v = serde_json::to_value(&catalog()[0].default).expect("json");
        assert!(!is_3d(&v) && has_axes(&v));
        set_3d(&mut v, true);
        assert_eq!(v["sigma"], serde_json::json!([1.0, 1.0, 1.0]));
        set_3d(&mut v, false);
        assert_eq!(v["sigma"].as_array().map(Vec::len), Some(2));
        let ok = Step {
            key: 1,
            value: v.clone(),
        };
        assert!(pipeline_json(std::slice::from_ref(&ok)).is_ok());
        v["sigma"] = serde_json::json!([-1, 1]);
        let bad = Step { key: 2, value: v };
        let err = pipeline_json(&[ok, bad]).expect_err("negative sigma");
        assert!(err.starts_with("step 2 (Gaussian blur)"), "{err}");
        assert_eq!(parse_number(" 2 "), Some(Value::from(2)));
        assert_eq!(parse_number(""), Some(Value::Null));
        assert_eq!(parse_number("x"), None);
        assert_eq!(value_text(&Value::Null), "");
        assert_eq!(choices("op").map(<[_]>::len), Some(4));
    }
}
