//! An SSE parser written from the WHATWG HTML "server-sent events" parsing rules, independent
//! of tokenrelay's code, that also records every field line so a test can see exactly what a
//! client would read: which blocks (field lines ended by a blank line) and which fields.

/// One block of field lines ended by a blank line, with what a browser would dispatch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// Every field line in order, `(name, value)` after the one optional space is stripped.
    pub fields: Vec<(String, String)>,
    /// The event type buffer (`event:`), empty when none was set.
    pub event: String,
    /// The data buffer with its final LF removed, `None` when it was empty (not dispatched).
    pub data: Option<String>,
    /// The last event id after this block (ids persist across blocks, per the spec).
    pub last_id: String,
}

#[derive(Debug, Default)]
pub struct Parsed {
    pub blocks: Vec<Block>,
    pub comments: Vec<String>,
    /// Field lines after the last blank line: an unfinished event, never dispatched.
    pub unfinished: Vec<(String, String)>,
    /// Text after the last line end: not even a line yet.
    pub tail: String,
    /// The last `retry:` value a client would apply.
    pub retry: Option<u64>,
}

/// Splits on CRLF, LF and lone CR; the text after the last line end is returned apart.
fn lines(text: &str) -> (Vec<&str>, &str) {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                out.push(&text[start..i]);
                i += 1;
                start = i;
            }
            b'\r' => {
                out.push(&text[start..i]);
                i += if bytes.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                start = i;
            }
            _ => i += 1,
        }
    }
    (out, &text[start..])
}

/// Parses a complete response body. Panics on bytes that are not UTF-8: our output must be.
pub fn parse(body: &[u8]) -> Parsed {
    let text = std::str::from_utf8(body).expect("SSE output is UTF-8");
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let (lines, tail) = lines(text);
    let mut parsed = Parsed::default();
    let (mut fields, mut event, mut data, mut last_id) =
        (Vec::new(), String::new(), String::new(), String::new());
    for line in lines {
        if line.is_empty() {
            if !fields.is_empty() {
                let dispatched = (!data.is_empty()).then(|| {
                    let mut d = std::mem::take(&mut data);
                    if d.ends_with('\n') {
                        d.pop();
                    }
                    d
                });
                parsed.blocks.push(Block {
                    fields: std::mem::take(&mut fields),
                    event: std::mem::take(&mut event),
                    data: dispatched,
                    last_id: last_id.clone(),
                });
            }
            data.clear();
            event.clear();
            continue;
        }
        if let Some(comment) = line.strip_prefix(':') {
            parsed.comments.push(comment.to_owned());
            continue;
        }
        let (name, value) = match line.split_once(':') {
            Some((name, value)) => (name, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match name {
            "event" => event = value.to_owned(),
            "data" => {
                data.push_str(value);
                data.push('\n');
            }
            "id" if !value.contains('\0') => last_id = value.to_owned(),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                parsed.retry = value.parse().ok();
            }
            _ => {}
        }
        fields.push((name.to_owned(), value.to_owned()));
    }
    parsed.unfinished = fields;
    parsed.tail = tail.to_owned();
    parsed
}

#[test]
fn the_reference_parser_follows_the_spec_examples() {
    let p = parse(b"\xef\xbb\xbfdata: a\r\ndata:b\rid: 7\n\n: c\nevent:x\ndata\n\ndata: tail");
    assert_eq!(p.blocks.len(), 2);
    assert_eq!(p.blocks[0].data.as_deref(), Some("a\nb"));
    assert_eq!(p.blocks[0].last_id, "7");
    assert_eq!(p.blocks[1].event, "x");
    assert_eq!(p.blocks[1].data.as_deref(), Some(""));
    assert_eq!(p.comments, [" c"]);
    assert!(p.unfinished.is_empty());
    assert_eq!(p.tail, "data: tail");
}
