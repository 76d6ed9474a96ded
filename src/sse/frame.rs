//! SSE encoding (SPEC §6): `field: value` lines, LF only, no BOM, payload newlines split into
//! several `data:` lines, `retry:` inside the first real frame, keepalive as a bare comment line.

use std::fmt::Write as _;

use bytes::{BufMut, Bytes, BytesMut};

/// A comment line with no blank line after it: openai-python dispatches an empty event (and
/// crashes on `json.loads("")`) when a blank line follows a comment once an id was seen.
pub const KEEPALIVE: &[u8] = b":\n";

/// Accumulates frames for one write. `retry:` goes into the first frame written.
pub struct FrameWriter {
    buf: BytesMut,
    retry_ms: Option<u64>,
}

impl FrameWriter {
    pub fn new(retry_ms: Option<u64>) -> Self {
        Self {
            buf: BytesMut::new(),
            retry_ms,
        }
    }

    /// [`Self::frame`] with an id written straight into the buffer (no `String` per event and
    /// subscriber). `id` displays as `<epoch>.<seq>`: ours, never a line break.
    pub fn frame_with(&mut self, id: impl std::fmt::Display, event: Option<&str>, data: &str) {
        if let Some(retry) = self.retry_ms.take() {
            self.buf.put_slice(format!("retry: {retry}\n").as_bytes());
        }
        // Writing into a growable buffer cannot fail.
        let _ = writeln!(self.buf, "id: {id}");
        self.rest(event, data);
    }

    /// Appends one event. `id` and `event` are ours (ASCII, no line breaks); any CR, LF or NUL
    /// would let a value escape its line, so they are dropped defensively.
    pub fn frame(&mut self, id: Option<&str>, event: Option<&str>, data: &str) {
        if let Some(retry) = self.retry_ms.take() {
            self.buf.put_slice(format!("retry: {retry}\n").as_bytes());
        }
        if let Some(id) = id {
            self.line("id", id);
        }
        self.rest(event, data);
    }

    fn rest(&mut self, event: Option<&str>, data: &str) {
        if let Some(event) = event {
            self.line("event", event);
        }
        for piece in split_lines(data) {
            self.buf.put_slice(b"data: ");
            self.buf.put_slice(piece.as_bytes());
            self.buf.put_u8(b'\n');
        }
        self.buf.put_u8(b'\n');
    }

    fn line(&mut self, field: &str, value: &str) {
        self.buf.put_slice(field.as_bytes());
        self.buf.put_slice(b": ");
        // The values are ours and clean in practice: copied whole, filtered only if not.
        if value.bytes().any(breaks_line) {
            for piece in value.split(['\r', '\n', '\0']) {
                self.buf.put_slice(piece.as_bytes());
            }
        } else {
            self.buf.put_slice(value.as_bytes());
        }
        self.buf.put_u8(b'\n');
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Everything written since the last take, ready for one flush.
    pub fn take(&mut self) -> Bytes {
        self.buf.split().freeze()
    }
}

fn breaks_line(b: u8) -> bool {
    matches!(b, b'\r' | b'\n' | b'\0')
}

/// Splits on CRLF, LF and lone CR, the three line ends an SSE parser recognises. A trailing
/// line end yields a final empty piece, so the payload round-trips exactly.
fn split_lines(data: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(data);
    std::iter::from_fn(move || {
        let s = rest?;
        // A byte search: CR and LF never occur inside a multi-byte UTF-8 character.
        match s.bytes().position(|b| b == b'\r' || b == b'\n') {
            Some(i) => {
                let skip = if s[i..].starts_with("\r\n") { 2 } else { 1 };
                rest = Some(&s[i + skip..]);
                Some(&s[..i])
            }
            None => {
                rest = None;
                Some(s)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(id: Option<&str>, event: Option<&str>, data: &str, retry: Option<u64>) -> String {
        let mut w = FrameWriter::new(retry);
        w.frame(id, event, data);
        String::from_utf8(w.take().to_vec()).unwrap()
    }

    #[test]
    fn one_line_json_makes_one_frame() {
        assert_eq!(
            frame(Some("e.1"), Some("message.delta"), r#"{"text":"hi"}"#, None),
            "id: e.1\nevent: message.delta\ndata: {\"text\":\"hi\"}\n\n"
        );
    }

    #[test]
    fn retry_rides_in_the_first_frame_only() {
        let mut w = FrameWriter::new(Some(3000));
        w.frame(Some("e.1"), None, "a");
        w.frame(Some("e.2"), None, "b");
        assert_eq!(
            String::from_utf8(w.take().to_vec()).unwrap(),
            "retry: 3000\nid: e.1\ndata: a\n\nid: e.2\ndata: b\n\n"
        );
    }

    #[test]
    fn every_line_end_in_data_becomes_its_own_data_line() {
        assert_eq!(
            frame(None, None, "a\r\nb\nc\rd\n", None),
            "data: a\ndata: b\ndata: c\ndata: d\ndata: \n\n"
        );
        assert_eq!(frame(None, None, " lead", None), "data:  lead\n\n");
    }

    #[test]
    fn ids_and_event_names_cannot_break_their_line() {
        assert_eq!(
            frame(Some("a\n\r\0b"), Some("x\ny"), "", None),
            "id: ab\nevent: xy\ndata: \n\n"
        );
    }
}
