//! The ids a publisher opens and closes (messages, tool calls, reasoning): AG-UI clients
//! refuse content before START, a second START, and any use of an id after its END.

use std::collections::BTreeSet;

/// What to do with an event that uses an id (CONTENT, ARGS).
#[derive(Debug, PartialEq, Eq)]
pub enum Use {
    /// Open: send it.
    Open,
    /// Not opened yet: send a START first (it is open now).
    NeedsStart,
    /// Already ended: sending it would reopen the id, so it is dropped from this format.
    Closed,
}

#[derive(Default)]
pub struct Ids {
    open: BTreeSet<String>,
    closed: BTreeSet<String>,
}

impl Ids {
    /// A START: whether it may be sent (not open, never ended).
    pub fn start(&mut self, id: &str) -> bool {
        !self.closed.contains(id) && self.open.insert(id.to_owned())
    }

    pub fn using(&mut self, id: &str) -> Use {
        if self.closed.contains(id) {
            Use::Closed
        } else if self.open.insert(id.to_owned()) {
            Use::NeedsStart
        } else {
            Use::Open
        }
    }

    /// An END: whether it may be sent (the id was open).
    pub fn end(&mut self, id: &str) -> bool {
        let was_open = self.open.remove(id);
        if was_open {
            self.closed.insert(id.to_owned());
        }
        was_open
    }

    /// Ends every open id (the run is ending) and returns them.
    pub fn end_all(&mut self) -> Vec<String> {
        let open = std::mem::take(&mut self.open);
        self.closed.extend(open.iter().cloned());
        open.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_lives_once() {
        let mut ids = Ids::default();
        assert_eq!(ids.using("m"), Use::NeedsStart);
        assert_eq!(ids.using("m"), Use::Open);
        assert!(!ids.start("m"), "already open");
        assert!(ids.end("m"));
        assert!(!ids.end("m"));
        assert_eq!(ids.using("m"), Use::Closed);
        assert!(!ids.start("m"), "never reopened");
        assert!(ids.start("n"));
        assert_eq!(ids.end_all(), ["n"]);
        assert_eq!(ids.using("n"), Use::Closed);
    }
}
