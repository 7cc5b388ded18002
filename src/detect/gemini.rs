//! gemini: placeholder until its detector lands.

use serde_json::Value;

use super::{Env, Field, Hit};

pub(crate) fn text(_s: &str, _field: Field, _env: &Env) -> Option<Hit> {
    None
}

pub(crate) fn object(_v: &Value, _env: &Env) -> Option<Hit> {
    None
}

pub(crate) fn error_text(_v: &Value) -> Option<String> {
    None
}
