//! AG-UI events in: each AG-UI type becomes the native event that carries it, with every
//! field kept (unknown ones in the event's data), so `format=agui` gives back what was sent.
//! Types tokenrelay does not interpret (MESSAGES_SNAPSHOT, ACTIVITY_*, RAW, *_CHUNK, most
//! REASONING_*, THINKING_*, and types newer than this code) travel whole as `custom` events
//! named `agui.<TYPE>`.

use serde_json::{Map, Value};

use super::input::FieldError;
use crate::event::{
    Completed, Custom, ErrorInfo, EventBody, Failed, MessageDelta, Reasoning, StateDelta,
    StateSnapshot, Step, Usage,
};

/// Whether `kind` is spelled like an AG-UI type (`UPPER_SNAKE`) rather than a native one.
pub fn is_agui_type(kind: &str) -> bool {
    kind.starts_with(|c: char| c.is_ascii_uppercase())
        && kind
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// The fields an event of this native type must carry (AG-UI names), all strings.
pub fn required_strings(native: &str) -> &'static [&'static str] {
    match native {
        "run.started" => &["threadId", "runId"],
        "message.started" | "message.finished" => &["messageId"],
        "tool_call.started" => &["toolCallId", "toolCallName"],
        "tool_call.args" => &["toolCallId", "delta"],
        "tool_call.finished" => &["toolCallId"],
        "tool_call.result" => &["messageId", "toolCallId", "content"],
        _ => &[],
    }
}

/// Checks that every field in `keys` is a string.
pub fn require_strings(fields: &Map<String, Value>, keys: &[&str]) -> Result<(), FieldError> {
    for key in keys {
        match fields.get(*key) {
            Some(Value::String(_)) => {}
            Some(_) => return Err(FieldError::new(key, format!("`{key}` must be a string"))),
            None => return Err(FieldError::new(key, format!("`{key}` is required"))),
        }
    }
    Ok(())
}

fn take_string(fields: &mut Map<String, Value>, key: &str) -> Result<String, FieldError> {
    require_strings(fields, &[key])?;
    match fields.remove(key) {
        Some(Value::String(s)) => Ok(s),
        _ => Err(FieldError::new(key, format!("`{key}` is required"))),
    }
}

fn take_value(fields: &mut Map<String, Value>, key: &str) -> Result<Value, FieldError> {
    fields
        .remove(key)
        .ok_or_else(|| FieldError::new(key, format!("`{key}` is required")))
}

/// Native field names an AG-UI event of this kind may not use for its own fields, because
/// the native event it becomes already has them.
fn refuse_reserved(
    fields: &Map<String, Value>,
    kind: &str,
    reserved: &[&str],
) -> Result<(), FieldError> {
    match reserved.iter().find(|key| fields.contains_key(**key)) {
        Some(key) => Err(FieldError::new(
            key,
            format!("`{key}` is not an AG-UI field of {kind} and clashes with tokenrelay's own"),
        )),
        None => Ok(()),
    }
}

/// AG-UI's usage list (`[{inputTokens, outputTokens, totalTokens, ...}]`), summed.
fn usage_of(fields: &Map<String, Value>) -> Option<Usage> {
    let entries = fields.get("usage")?.as_array()?;
    let count = |entry: &Value, key: &str| entry.get(key).and_then(Value::as_u64).unwrap_or(0);
    let mut usage = Usage::default();
    for entry in entries {
        usage.input_tokens += count(entry, "inputTokens");
        usage.output_tokens += count(entry, "outputTokens");
        usage.total_tokens += count(entry, "totalTokens");
    }
    (!entries.is_empty()).then_some(usage)
}

/// The native event for one AG-UI event (`fields` without its `type`).
pub fn from_agui(kind: &str, mut fields: Map<String, Value>) -> Result<EventBody, FieldError> {
    let body = match kind {
        "RUN_STARTED" => {
            require_strings(&fields, required_strings("run.started"))?;
            EventBody::RunStarted(fields)
        }
        // The terminal events keep the AG-UI event whole under `agui`: its `usage` is a list
        // and would clash with the native one, which is filled in from it.
        "RUN_FINISHED" => {
            require_strings(&fields, &["threadId", "runId"])?;
            EventBody::Completed(Completed {
                finish_reason: None,
                usage: usage_of(&fields),
                extra: Map::from_iter([("agui".to_owned(), Value::Object(fields))]),
            })
        }
        "RUN_ERROR" => {
            require_strings(&fields, &["message"])?;
            let code = match fields.get("code") {
                None | Some(Value::Null) => "agent_error".to_owned(),
                Some(Value::String(code)) => code.clone(),
                Some(_) => return Err(FieldError::new("code", "`code` must be a string")),
            };
            let message = fields
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            EventBody::Failed(Failed {
                error: ErrorInfo {
                    code,
                    message,
                    retryable: false,
                },
                usage: usage_of(&fields),
                extra: Map::from_iter([("agui".to_owned(), Value::Object(fields))]),
            })
        }
        "STEP_STARTED" | "STEP_FINISHED" => {
            refuse_reserved(&fields, kind, &["name"])?;
            let step = Step {
                name: take_string(&mut fields, "stepName")?,
                extra: fields,
            };
            if kind == "STEP_STARTED" {
                EventBody::StepStarted(step)
            } else {
                EventBody::StepFinished(step)
            }
        }
        "TEXT_MESSAGE_START" => {
            require_strings(&fields, required_strings("message.started"))?;
            if fields.get("role").is_some_and(|r| !r.is_string()) {
                return Err(FieldError::new("role", "`role` must be a string"));
            }
            EventBody::MessageStarted(fields)
        }
        "TEXT_MESSAGE_CONTENT" => {
            refuse_reserved(&fields, kind, &["text", "index"])?;
            require_strings(&fields, &["messageId"])?;
            EventBody::MessageDelta(MessageDelta {
                text: take_string(&mut fields, "delta")?,
                index: 0,
                extra: fields,
            })
        }
        "TEXT_MESSAGE_END" => {
            require_strings(&fields, required_strings("message.finished"))?;
            EventBody::MessageFinished(fields)
        }
        "TOOL_CALL_START" => {
            require_strings(&fields, required_strings("tool_call.started"))?;
            EventBody::ToolCallStarted(fields)
        }
        "TOOL_CALL_ARGS" => {
            require_strings(&fields, required_strings("tool_call.args"))?;
            EventBody::ToolCallArgs(fields)
        }
        "TOOL_CALL_END" => {
            require_strings(&fields, required_strings("tool_call.finished"))?;
            EventBody::ToolCallFinished(fields)
        }
        "TOOL_CALL_RESULT" => {
            require_strings(&fields, required_strings("tool_call.result"))?;
            EventBody::ToolCallResult(fields)
        }
        "STATE_SNAPSHOT" => {
            refuse_reserved(&fields, kind, &["state"])?;
            EventBody::StateSnapshot(StateSnapshot {
                state: take_value(&mut fields, "snapshot")?,
                extra: fields,
            })
        }
        "STATE_DELTA" => {
            refuse_reserved(&fields, kind, &["patch"])?;
            let patch = take_value(&mut fields, "delta")?;
            check_patch(&patch).map_err(|message| FieldError::new("delta", message))?;
            EventBody::StateDelta(StateDelta {
                patch,
                extra: fields,
            })
        }
        "CUSTOM" => EventBody::Custom(Custom {
            name: custom_name(take_string(&mut fields, "name")?, "name")?,
            value: fields.remove("value").unwrap_or(Value::Null),
            extra: fields,
        }),
        "REASONING_MESSAGE_CONTENT" => {
            refuse_reserved(&fields, kind, &["text", "signature"])?;
            require_strings(&fields, &["messageId"])?;
            EventBody::ReasoningDelta(Reasoning {
                text: take_string(&mut fields, "delta")?,
                signature: None,
                extra: fields,
            })
        }
        other => EventBody::Custom(Custom {
            name: format!("agui.{other}"),
            value: Value::Object(fields),
            extra: Map::new(),
        }),
    };
    Ok(body)
}

/// `agui.<TYPE>` names are how AG-UI types without a native event travel; a publisher's own
/// custom event may not take one.
pub fn custom_name(name: String, field: &str) -> Result<String, FieldError> {
    if name.starts_with("agui.") {
        return Err(FieldError::new(
            field,
            "custom names starting with `agui.` are reserved for AG-UI events tokenrelay keeps whole",
        ));
    }
    Ok(name)
}

/// An RFC 6902 patch: a list of operations json-patch understands.
pub fn check_patch(patch: &Value) -> Result<(), String> {
    serde_json::from_value::<json_patch::Patch>(patch.clone())
        .map(drop)
        .map_err(|e| format!("not an RFC 6902 JSON Patch: {e}"))
}
