//! A publish body: one event or an array, each native (`{"type":"step.started","data":{..}}`)
//! or AG-UI (`{"type":"STEP_STARTED","stepName":..}`), checked whole before anything is
//! appended so a bad batch changes nothing and says which event and field are wrong.

use serde_json::{Map, Value, json};

use super::agui::{
    check_patch, custom_name, from_agui, is_agui_type, require_strings, required_strings,
};
use crate::event::{EventBody, TYPE_NAMES};

/// A problem with one field of one event.
#[derive(Debug, PartialEq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

/// Why a batch was refused.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum BatchError {
    #[error("the batch holds no events")]
    Empty,
    #[error("a batch holds at most {max} events")]
    TooMany { max: usize },
    /// `field` is `None` when the event as a whole is wrong (e.g. not an object).
    #[error("event {index}: {message}")]
    Invalid {
        index: usize,
        field: Option<String>,
        message: String,
    },
}

impl BatchError {
    /// Where the problem is, as an error `param`: `[2].messageId`, `[0].data.patch`, `[1]`.
    pub fn param(&self) -> Option<String> {
        match self {
            Self::Invalid {
                index,
                field: Some(field),
                ..
            } => Some(format!("[{index}].{field}")),
            Self::Invalid { index, .. } => Some(format!("[{index}]")),
            _ => None,
        }
    }
}

/// The checked events of a batch, in order.
#[derive(Debug)]
pub struct Batch {
    pub events: Vec<EventBody>,
    /// Whether each event came as AG-UI (it names its fields in errors the way it sent them).
    agui: Vec<bool>,
}

impl Batch {
    /// The field holding a state patch in event `index`, as the publisher spelled it.
    pub fn patch_field(&self, index: usize) -> &'static str {
        match self.agui.get(index) {
            Some(true) => "delta",
            _ => "data.patch",
        }
    }
}

/// Native types a publisher may send: `stream.started` (the first) belongs to tokenrelay.
const PUBLISHABLE: &[&str] = TYPE_NAMES.split_at(1).1;

/// Parses and checks a publish body.
pub fn parse_batch(body: Value, max_events: usize) -> Result<Batch, BatchError> {
    let items = match body {
        Value::Array(items) => items,
        single => vec![single],
    };
    if items.is_empty() {
        return Err(BatchError::Empty);
    }
    if items.len() > max_events {
        return Err(BatchError::TooMany { max: max_events });
    }
    let mut batch = Batch {
        events: Vec::with_capacity(items.len()),
        agui: Vec::with_capacity(items.len()),
    };
    let mut terminal_at = None;
    for (index, item) in items.into_iter().enumerate() {
        let invalid = |e: FieldError| BatchError::Invalid {
            index,
            field: Some(e.field),
            message: e.message,
        };
        if let Some(at) = terminal_at {
            return Err(BatchError::Invalid {
                index,
                field: None,
                message: format!("nothing may follow the terminal event at index {at}"),
            });
        }
        let Value::Object(mut fields) = item else {
            return Err(BatchError::Invalid {
                index,
                field: None,
                message: "an event must be a JSON object".into(),
            });
        };
        let kind = match fields.remove("type") {
            Some(Value::String(kind)) => kind,
            _ => return Err(invalid(FieldError::new("type", "`type` must be a string"))),
        };
        let agui = is_agui_type(&kind);
        let body = if agui {
            from_agui(&kind, fields)
        } else {
            from_native(&kind, fields)
        }
        .map_err(invalid)?;
        if body.terminal_status().is_some() {
            terminal_at = Some(index);
        }
        batch.events.push(body);
        batch.agui.push(agui);
    }
    Ok(batch)
}

/// A native event: `type` and `data` (`id` and `time` are the server's; others refused).
fn from_native(kind: &str, mut fields: Map<String, Value>) -> Result<EventBody, FieldError> {
    if !PUBLISHABLE.contains(&kind) {
        let message = if kind == "stream.started" {
            "`stream.started` is appended by tokenrelay when the stream is created".to_owned()
        } else {
            format!(
                "unknown event type `{}`",
                kind.chars().take(64).collect::<String>()
            )
        };
        return Err(FieldError::new("type", message));
    }
    fields.remove("id");
    fields.remove("time");
    let data = fields.remove("data").unwrap_or_else(|| json!({}));
    if let Some(key) = fields.keys().next() {
        return Err(FieldError::new(
            key,
            format!("unknown field `{key}`: a native event has `type` and `data`"),
        ));
    }
    let Value::Object(data) = data else {
        return Err(FieldError::new("data", "`data` must be a JSON object"));
    };
    require_strings(&data, required_strings(kind)).map_err(|e| FieldError {
        field: format!("data.{}", e.field),
        message: e.message,
    })?;
    if kind == "custom" {
        if let Some(Value::String(name)) = data.get("name") {
            custom_name(name.clone(), "data.name")?;
        }
    }
    if matches!(kind, "stream.completed" | "stream.failed") && data.contains_key("agui") {
        return Err(FieldError::new(
            "data.agui",
            "`agui` is set by tokenrelay from RUN_FINISHED / RUN_ERROR: publish those instead",
        ));
    }
    if kind == "state.delta" {
        let patch = data.get("patch").unwrap_or(&Value::Null);
        check_patch(patch).map_err(|message| FieldError::new("data.patch", message))?;
    }
    let tagged = json!({"type": kind, "data": data});
    serde_json::from_value(tagged).map_err(|e| FieldError::new("data", e.to_string()))
}
