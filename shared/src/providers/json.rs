//! Reading fields out of providers' JSON by path, tolerant of absent or
//! mistyped fields: a field that is not there is `None`, never a panic.

use serde_json::Value;

/// The value at `path`; numeric segments index arrays.
pub fn at<'v>(value: &'v Value, path: &[&str]) -> Option<&'v Value> {
    path.iter().try_fold(value, |v, key| match v {
        Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => v.get(key),
    })
}

pub fn str_at(value: &Value, path: &[&str]) -> Option<String> {
    at(value, path).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned)
}

/// A reference to another object: its id, or the object itself (Stripe's
/// expanded fields) whose `id` is taken.
pub fn id_at(value: &Value, path: &[&str]) -> Option<String> {
    let v = at(value, path)?;
    v.as_str().or_else(|| v.get("id").and_then(Value::as_str)).filter(|s| !s.is_empty()).map(str::to_owned)
}

pub fn int_at(value: &Value, path: &[&str]) -> Option<i64> {
    at(value, path).and_then(Value::as_i64)
}

/// A string, or a number written as one (providers disagree on ids).
pub fn text_at(value: &Value, path: &[&str]) -> Option<String> {
    match at(value, path)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// An RFC 3339 timestamp (`2016-09-30T21:10:19.000Z`).
pub fn time_at(value: &Value, path: &[&str]) -> Option<time::OffsetDateTime> {
    let text = at(value, path)?.as_str()?;
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
}
