//! Upstream SSE framing: cuts the body into complete lines before eventsource-stream parses it.
//!
//! eventsource-stream re-scans its whole buffer on every network read and copies the rest of
//! the buffer after each line, which is quadratic for a long line read in small pieces (and
//! for a read holding many lines). Feeding it one complete, UTF-8-checked line at a time keeps
//! parsing linear, and makes an invalid byte an error at once instead of a silent stall.

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};

/// Why the upstream body could not be framed.
#[derive(Debug, thiserror::Error)]
pub enum LineError<E> {
    #[error("upstream body is not valid UTF-8")]
    Utf8,
    #[error("upstream line longer than {0} bytes")]
    TooLong(usize),
    #[error(transparent)]
    Transport(E),
}

/// Splits `body` into lines (ended by LF, CRLF or a lone CR), each passed on ending in LF.
///
/// A CR at the end of a read is held until the next byte shows whether an LF follows, so a
/// CRLF split across reads never becomes two line ends. An unterminated tail at the end of the
/// body is dropped, as an SSE parser drops an unfinished event.
pub fn split_lines<S, B, E>(
    body: S,
    max_line: usize,
) -> impl Stream<Item = Result<Bytes, LineError<E>>>
where
    S: Stream<Item = Result<B, E>> + Unpin,
    B: AsRef<[u8]>,
{
    async_stream::stream! {
        let mut body = body;
        let mut buf = BytesMut::new();
        // Bytes of `buf` already searched for a terminator.
        let mut scanned = 0;
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(e) => {
                    yield Err(LineError::Transport(e));
                    return;
                }
            };
            buf.extend_from_slice(chunk.as_ref());
            loop {
                let Some(pos) = buf[scanned..].iter().position(|&b| b == b'\n' || b == b'\r') else {
                    scanned = buf.len();
                    break;
                };
                let end = scanned + pos;
                let len = if buf[end] == b'\n' {
                    end + 1
                } else if end + 1 < buf.len() {
                    end + 1 + usize::from(buf[end + 1] == b'\n')
                } else {
                    // A CR at the end of what we have: wait for the next read.
                    scanned = end;
                    break;
                };
                if len > max_line {
                    yield Err(LineError::TooLong(max_line));
                    return;
                }
                // Every line leaves here ending in LF: eventsource-stream treats a trailing lone
                // CR as "maybe CRLF" and would hold the line until more bytes come.
                let mut line = buf.split_to(len);
                line.truncate(end);
                line.extend_from_slice(b"\n");
                scanned = 0;
                if std::str::from_utf8(&line).is_err() {
                    yield Err(LineError::Utf8);
                    return;
                }
                yield Ok(line.freeze());
            }
            if buf.len() > max_line {
                yield Err(LineError::TooLong(max_line));
                return;
            }
        }
        // A lone CR at the very end is still a complete line end.
        if buf.last() == Some(&b'\r') {
            let mut line = buf.split();
            line.truncate(line.len() - 1);
            line.extend_from_slice(b"\n");
            if std::str::from_utf8(&line).is_ok() {
                yield Ok(line.freeze());
            } else {
                yield Err(LineError::Utf8);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines(chunks: &[&[u8]]) -> Vec<String> {
        let body = futures::stream::iter(
            chunks
                .iter()
                .map(|c| Ok::<_, std::convert::Infallible>(c.to_vec()))
                .collect::<Vec<_>>(),
        );
        split_lines(body, 1 << 20)
            .map(|l| String::from_utf8(l.unwrap().to_vec()).unwrap())
            .collect()
            .await
    }

    #[tokio::test]
    async fn every_line_ending_is_recognised_even_when_split() {
        assert_eq!(
            lines(&[b"a\r", b"\nb\rc\n", b"\r", b"\r\nd"]).await,
            ["a\n", "b\n", "c\n", "\n", "\n"]
        );
        assert_eq!(lines(&[b"x\r"]).await, ["x\n"]);
    }

    #[tokio::test]
    async fn multibyte_characters_survive_one_byte_reads() {
        let text = "data: h\u{e9}llo \u{1f642}\n".as_bytes();
        let chunks: Vec<&[u8]> = text.chunks(1).collect();
        assert_eq!(lines(&chunks).await, ["data: h\u{e9}llo \u{1f642}\n"]);
    }

    #[tokio::test]
    async fn invalid_utf8_and_overlong_lines_are_errors() {
        let body = futures::stream::iter([Ok::<_, std::convert::Infallible>(b"\xff\n".to_vec())]);
        let got: Vec<_> = split_lines(body, 16).collect().await;
        assert!(matches!(got[..], [Err(LineError::Utf8)]));
        for long in [vec![b'a'; 32], [vec![b'a'; 31], vec![b'\n']].concat()] {
            let body = futures::stream::iter([Ok::<_, std::convert::Infallible>(long)]);
            let got: Vec<_> = split_lines(body, 16).collect().await;
            assert!(matches!(got[..], [Err(LineError::TooLong(16))]));
        }
    }
}
