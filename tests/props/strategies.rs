//! Input generators shared by the properties: text that is hard on line-based formats, and
//! arbitrary JSON values.

use proptest::prelude::*;
use serde_json::{Map, Value};

/// Pieces that break naive SSE writers: every line end, blank lines, NUL, a colon or a field
/// name where a line starts, a BOM, separators that only some parsers split on, wide chars.
const TRICKY: &[&str] = &[
    "\r",
    "\n",
    "\r\n",
    "\n\n",
    "\r\r",
    "\0",
    ":",
    ": ",
    " ",
    "data: x",
    "id: 9",
    "event: e",
    "retry: 1",
    "\u{feff}",
    "\u{2028}",
    "\u{85}",
    "\u{b}",
    "\u{c}",
    "é",
    "\u{1f642}",
    "a",
    "[DONE]",
    "\"",
    "\\",
    "{}",
];

/// Text built from [`TRICKY`] pieces, or any string at all.
pub fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::collection::vec(prop::sample::select(TRICKY), 0..12).prop_map(|p| p.concat()),
        2 => any::<String>(),
        1 => "[ -~\r\n]{0,24}",
    ]
}

/// Any JSON value, nested a few levels, with [`text`] strings and keys.
pub fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        text().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Object keys: the chat request's own field names half the time, so shapes get near-misses.
pub fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(
            &[
                "model",
                "messages",
                "role",
                "content",
                "stream",
                "stream_options",
                "include_usage",
                "n",
                "prompt",
                "name",
                "variables",
                "text",
                "type",
                "tools",
                "max_tokens",
            ][..]
        )
        .prop_map(str::to_owned),
        text(),
    ]
}
