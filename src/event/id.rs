//! Identifiers parsed once at the edge: stream ids, log epochs and resume ids.

use std::fmt;
use std::str::FromStr;

use rand::RngCore;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Crockford base32 alphabet (no I, L, O, U): unambiguous when read aloud or copied.
const CROCKFORD: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

fn crockford_digit(c: u8) -> bool {
    CROCKFORD.contains(&c.to_ascii_lowercase())
}

/// Encodes the low `chars * 5` bits of `value`, most significant first.
fn crockford(value: u128, chars: usize) -> String {
    (0..chars)
        .rev()
        .map(|i| CROCKFORD[((value >> (i * 5)) & 31) as usize] as char)
        .collect()
}

/// `st_` + 26 Crockford base32 characters carrying 128 random bits.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(String);

impl StreamId {
    pub fn random() -> Self {
        let mut bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut bytes);
        Self(format!("st_{}", crockford(u128::from_be_bytes(bytes), 26)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A path segment that is not a well-formed stream id.
#[derive(Debug, thiserror::Error)]
#[error("not a stream id")]
pub struct BadStreamId;

impl FromStr for StreamId {
    type Err = BadStreamId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let body = s.strip_prefix("st_").ok_or(BadStreamId)?;
        // 26 characters hold 130 bits; the first can only carry the top 3 bits of 128.
        let first_ok = body
            .bytes()
            .next()
            .is_some_and(|c| (b'0'..=b'7').contains(&c));
        if body.len() == 26 && first_ok && body.bytes().all(crockford_digit) {
            Ok(Self(s.to_ascii_lowercase()))
        } else {
            Err(BadStreamId)
        }
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for StreamId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for StreamId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A short random string minted with each log, so a resume id from a lost log is recognised.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Epoch(String);

impl Epoch {
    /// 10 characters: 50 random bits, plenty to tell two incarnations of one stream apart.
    pub fn random() -> Self {
        Self(crockford(u128::from(rand::rng().next_u64()), 10))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// An epoch read back from a store.
    pub fn from_stored(value: String) -> Self {
        Self(value)
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A resume id, `<epoch>.<seq>`, the SSE `id:` of every frame. `seq` 0 means "before the first event".
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct EventId {
    pub epoch: Epoch,
    pub seq: u64,
}

impl EventId {
    pub fn new(epoch: &Epoch, seq: u64) -> Self {
        Self {
            epoch: epoch.clone(),
            seq,
        }
    }
}

/// Why a `Last-Event-ID` value could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed event id")]
pub struct BadEventId;

/// Ids stay well under 128 bytes: browsers preflight longer `Last-Event-ID` values.
const MAX_EVENT_ID_LEN: usize = 64;

impl FromStr for EventId {
    type Err = BadEventId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() > MAX_EVENT_ID_LEN {
            return Err(BadEventId);
        }
        let (epoch, seq) = s.split_once('.').ok_or(BadEventId)?;
        let epoch_ok = !epoch.is_empty() && epoch.bytes().all(crockford_digit);
        // Up to 20 digits: every u64 must read back (`parse` below rejects what overflows).
        let seq_ok = !seq.is_empty() && seq.len() <= 20 && seq.bytes().all(|b| b.is_ascii_digit());
        if !epoch_ok || !seq_ok {
            return Err(BadEventId);
        }
        let seq = seq.parse().map_err(|_| BadEventId)?;
        Ok(Self {
            epoch: Epoch(epoch.to_ascii_lowercase()),
            seq,
        })
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.epoch, self.seq)
    }
}

impl Serialize for EventId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_are_st_plus_26_crockford_chars_and_parse_back() {
        for _ in 0..1000 {
            let id = StreamId::random();
            assert_eq!(id.as_str().len(), 29);
            assert_eq!(id.as_str().parse::<StreamId>().ok(), Some(id));
        }
    }

    #[test]
    fn stream_id_parser_rejects_near_misses() {
        for bad in [
            "",
            "st_",
            "xx_0000000000000000000000000a",
            "st_000000000000000000000000a",
            "st_0000000000000000000000000u",
            "st_8000000000000000000000000a",
            "st_00000000000000000000000000/",
        ] {
            assert!(bad.parse::<StreamId>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn event_ids_round_trip_and_stay_short_and_safe() {
        let epoch = Epoch::random();
        let id = EventId::new(&epoch, 42);
        let text = id.to_string();
        assert!(text.len() < 32);
        assert!(text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.'));
        assert_eq!(text.parse::<EventId>(), Ok(id));
    }

    #[test]
    fn malformed_event_ids_are_rejected() {
        for bad in [
            "",
            "42",
            ".42",
            "abc.",
            "abc.-1",
            "abc.4 2",
            "ab c.1",
            "abc.1.2",
            "abc.99999999999999999999",
            "abc\n.1",
            "abcu.1",
        ] {
            assert_eq!(bad.parse::<EventId>(), Err(BadEventId), "{bad:?}");
        }
        assert!("x".repeat(70).parse::<EventId>().is_err());
    }

    #[test]
    fn the_largest_seqs_round_trip() {
        // Found by the `issued_event_ids_round_trip` property: 20-digit seqs were refused.
        let epoch = Epoch::from_stored("j".into());
        for seq in [10_000_000_000_000_000_000, u64::MAX] {
            let id = EventId::new(&epoch, seq);
            assert_eq!(id.to_string().parse::<EventId>(), Ok(id));
        }
        assert_eq!("j.18446744073709551616".parse::<EventId>(), Err(BadEventId));
    }
}
