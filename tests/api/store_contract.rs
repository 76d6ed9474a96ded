//! The event-log contract, written once and run against every store (`contract!` below).
//! A store that passes can replace another without any caller noticing.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokenrelay::event::{
    EventBody, Format, MessageDelta, StateDelta, StateSnapshot, StreamId, StreamKind, StreamStatus,
    Text,
};
use tokenrelay::store::{
    Created, EventLog, LogItem, NewStream, Retention, StoreError, StoreLimits, StreamMeta,
    read_from,
};

fn meta(owner: &str) -> StreamMeta {
    StreamMeta {
        kind: StreamKind::Chat,
        model: "mock/default".into(),
        provider: "mock".into(),
        owner: owner.into(),
        created_at: 1,
        format: Format::Native,
        include_usage: false,
        read_token_hash: "r".into(),
        write_token_hash: "w".into(),
        request_hash: String::new(),
        feed: None,
        choices: 1,
    }
}

fn delta(text: &str) -> EventBody {
    EventBody::MessageDelta(MessageDelta {
        text: text.into(),
        index: 0,
        ..Default::default()
    })
}

async fn create(
    log: &Arc<dyn EventLog>,
    id: &StreamId,
    owner: &str,
    retention: Retention,
    key: Option<&str>,
) -> Result<Created, StoreError> {
    log.create(NewStream {
        id: id.clone(),
        meta: meta(owner),
        retention,
        idempotency_key: key.map(str::to_owned),
        leased: true,
    })
    .await
}

/// A leased chat stream, as a producer on this instance would create it.
pub fn new_leased(id: &StreamId) -> NewStream {
    NewStream {
        id: id.clone(),
        meta: meta("owner"),
        retention: Retention::Full,
        idempotency_key: None,
        leased: true,
    }
}

async fn new_stream(log: &Arc<dyn EventLog>) -> StreamId {
    let id = StreamId::random();
    let created = create(log, &id, "owner", Retention::Full, None)
        .await
        .unwrap();
    assert!(matches!(created, Created::New { .. }));
    id
}

pub async fn seqs_are_dense_from_one_and_reads_are_ordered(log: Arc<dyn EventLog>) {
    let id = new_stream(&log).await;
    assert_eq!(log.append(&id, vec![delta("a")]).await, Ok(1));
    assert_eq!(
        log.append(&id, vec![delta("b"), delta("c"), delta("d")])
            .await,
        Ok(4)
    );
    let page = log.read(&id, 0, 100).await.unwrap();
    let seqs: Vec<_> = page.events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
    assert_eq!(page.events[2].body, delta("c"));
    let page = log.read(&id, 2, 1).await.unwrap();
    assert_eq!(page.events.len(), 1);
    assert_eq!(page.events[0].seq, 3);
    assert!(log.read(&id, 4, 10).await.unwrap().events.is_empty());
    let head = log.head(&id).await.unwrap();
    assert_eq!(
        (head.first_seq, head.last_seq, head.status),
        (1, 4, StreamStatus::Running)
    );
}

pub async fn the_terminal_event_is_the_last_one_ever(log: Arc<dyn EventLog>) {
    let id = new_stream(&log).await;
    log.append(&id, vec![delta("x")]).await.unwrap();
    assert_eq!(
        log.finish(&id, EventBody::cancelled("user")).await,
        Ok(true)
    );
    assert_eq!(
        log.finish(&id, EventBody::cancelled("again")).await,
        Ok(false)
    );
    assert_eq!(
        log.append(&id, vec![delta("late")]).await,
        Err(StoreError::Finished)
    );
    let head = log.head(&id).await.unwrap();
    assert_eq!((head.last_seq, head.status), (2, StreamStatus::Cancelled));
    let info = log.info(&id).await.unwrap();
    assert_eq!(info.aggregate.text(), "x");
    assert_eq!(info.aggregate.cancel_reason.as_deref(), Some("user"));
}

pub async fn an_idempotency_key_names_one_stream_per_owner(log: Arc<dyn EventLog>) {
    let first = StreamId::random();
    let created = create(&log, &first, "alice", Retention::Full, Some("k1"))
        .await
        .unwrap();
    let epoch = match created {
        Created::New { epoch } => epoch,
        other => panic!("{other:?}"),
    };
    let again = create(
        &log,
        &StreamId::random(),
        "alice",
        Retention::Full,
        Some("k1"),
    )
    .await;
    assert_eq!(again, Ok(Created::Existing(first.clone())));
    let other = create(
        &log,
        &StreamId::random(),
        "bob",
        Retention::Full,
        Some("k1"),
    )
    .await;
    assert!(matches!(other, Ok(Created::New { .. })));
    assert_eq!(log.head(&first).await.unwrap().epoch, epoch);
}

pub async fn unknown_streams_are_not_found_everywhere(log: Arc<dyn EventLog>) {
    let id = StreamId::random();
    assert_eq!(
        log.append(&id, vec![delta("x")]).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(log.head(&id).await.err(), Some(StoreError::NotFound));
    assert_eq!(log.info(&id).await.err(), Some(StoreError::NotFound));
    assert_eq!(log.read(&id, 0, 1).await.err(), Some(StoreError::NotFound));
    assert_eq!(log.wait(&id, 0).await, Err(StoreError::NotFound));
}

pub async fn wait_wakes_on_append_and_on_finish(log: Arc<dyn EventLog>) {
    let id = new_stream(&log).await;
    let waiter = {
        let (log, id) = (Arc::clone(&log), id.clone());
        tokio::spawn(async move { log.wait(&id, 0).await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(!waiter.is_finished());
    log.append(&id, vec![delta("a")]).await.unwrap();
    assert_eq!(waiter.await.unwrap(), Ok(true));
    let waiter = {
        let (log, id) = (Arc::clone(&log), id.clone());
        tokio::spawn(async move { log.wait(&id, 1).await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(!waiter.is_finished());
    log.finish(&id, EventBody::cancelled("user")).await.unwrap();
    assert_eq!(waiter.await.unwrap(), Ok(true), "the terminal event is new");
    assert_eq!(
        log.wait(&id, 2).await,
        Ok(false),
        "finished, nothing after 2"
    );
    assert_eq!(log.finished(&id).await, Ok(()));
}

pub async fn readers_replay_then_follow_a_fast_producer_without_gaps(log: Arc<dyn EventLog>) {
    let id = new_stream(&log).await;
    for i in 0..100 {
        log.append(&id, vec![delta(&format!("{i}"))]).await.unwrap();
    }
    let epoch = log.head(&id).await.unwrap().epoch;
    let readers: Vec<_> = (0..8)
        .map(|r| {
            let stream = read_from(Arc::clone(&log), id.clone(), epoch.clone(), r * 10);
            tokio::spawn(async move {
                stream
                    .map(|item| match item.unwrap() {
                        LogItem::Event(e) => e.seq,
                        LogItem::Skipped { .. } => panic!("nothing was dropped"),
                    })
                    .collect::<Vec<_>>()
                    .await
            })
        })
        .collect();
    for i in 100..1000 {
        log.append(&id, vec![delta(&format!("{i}"))]).await.unwrap();
        if i % 50 == 0 {
            tokio::task::yield_now().await;
        }
    }
    log.finish(&id, EventBody::cancelled("done")).await.unwrap();
    for (r, reader) in readers.into_iter().enumerate() {
        let seqs = reader.await.unwrap();
        let want: Vec<u64> = (r as u64 * 10 + 1..=1001).collect();
        assert_eq!(seqs, want, "reader {r}");
        assert_eq!(seqs.iter().collect::<HashSet<_>>().len(), seqs.len());
    }
}

pub async fn going_over_the_cap_ends_the_stream_too_large(log: Arc<dyn EventLog>) {
    let id = new_stream(&log).await;
    let result = log
        .append(&id, (0..2100).map(|i| delta(&format!("{i}"))).collect())
        .await;
    assert_eq!(result, Err(StoreError::TooLarge));
    let info = log.info(&id).await.unwrap();
    assert_eq!(info.head.status, StreamStatus::Failed);
    assert_eq!(
        info.head.last_seq, 2000,
        "the cap includes the terminal event"
    );
    assert_eq!(info.aggregate.error.unwrap().code, "stream_too_large");
    assert_eq!(
        log.append(&id, vec![delta("x")]).await,
        Err(StoreError::Finished)
    );
}

pub async fn a_window_keeps_only_recent_events_and_says_what_was_skipped(log: Arc<dyn EventLog>) {
    let id = StreamId::random();
    let window = Retention::Window {
        max_events: 5,
        max_age: Duration::from_secs(600),
    };
    create(&log, &id, "owner", window, None).await.unwrap();
    for i in 0..12 {
        let body = EventBody::TranscriptDelta(Text {
            text: format!("{i}"),
            ..Text::default()
        });
        log.append(&id, vec![body]).await.unwrap();
    }
    let head = log.head(&id).await.unwrap();
    assert_eq!((head.first_seq, head.last_seq), (8, 12));
    let epoch = log.head(&id).await.unwrap().epoch;
    let mut reader = Box::pin(read_from(Arc::clone(&log), id.clone(), epoch, 2));
    match reader.next().await.unwrap().unwrap() {
        LogItem::Skipped { first_seq } => assert_eq!(first_seq, 8),
        other => panic!("{other:?}"),
    }
    match reader.next().await.unwrap().unwrap() {
        LogItem::Event(e) => assert_eq!(e.seq, 8),
        other => panic!("{other:?}"),
    }
}

pub async fn append_at_refuses_a_writer_whose_view_is_stale(log: Arc<dyn EventLog>) {
    // Publishers (agent streams) hold no lease: the check is the only thing between them.
    let id = StreamId::random();
    let mut new = new_leased(&id);
    new.leased = false;
    log.create(new).await.unwrap();
    assert_eq!(log.append_at(&id, vec![delta("a")], 0).await, Ok(1));
    assert_eq!(
        log.append_at(&id, vec![delta("b")], 0).await,
        Err(StoreError::Conflict)
    );
    assert_eq!(log.append(&id, vec![delta("c")]).await, Ok(2));
    assert_eq!(
        log.append_at(&id, vec![delta("d"), delta("e")], 2).await,
        Ok(4)
    );
    let done = EventBody::Completed(Default::default());
    assert_eq!(log.append_at(&id, vec![done], 4).await, Ok(5));
    assert_eq!(
        log.append_at(&id, vec![delta("f")], 5).await,
        Err(StoreError::Finished)
    );
    let page = log.read(&id, 0, 100).await.unwrap();
    let texts: Vec<String> = page
        .events
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::MessageDelta(d) => Some(d.text.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(texts, ["a", "c", "d", "e"]);
}

pub async fn the_aggregate_outlives_a_sliding_window(log: Arc<dyn EventLog>) {
    // An agent feed keeps 5 events, but its state is the fold of all 30 of them.
    let id = StreamId::random();
    let mut new = new_leased(&id);
    new.leased = false;
    new.retention = Retention::Window {
        max_events: 5,
        max_age: Duration::from_secs(600),
    };
    log.create(new).await.unwrap();
    let snapshot = EventBody::StateSnapshot(StateSnapshot {
        state: serde_json::json!({"n": 0}),
        ..Default::default()
    });
    assert_eq!(log.append_at(&id, vec![snapshot], 0).await, Ok(1));
    for n in 1..30u64 {
        let delta = EventBody::StateDelta(StateDelta {
            patch: serde_json::json!([{"op": "replace", "path": "/n", "value": n}]),
            ..Default::default()
        });
        assert_eq!(log.append_at(&id, vec![delta], n).await, Ok(n + 1));
    }
    let info = log.info(&id).await.unwrap();
    assert!(info.head.first_seq > 1, "the window moved on");
    assert_eq!(info.aggregate.state, serde_json::json!({"n": 29}));
    log.finish(&id, EventBody::cancelled("done")).await.unwrap();
    // The final aggregate is stored in the background on some stores.
    for _ in 0..50 {
        if log
            .info(&id)
            .await
            .unwrap()
            .aggregate
            .cancel_reason
            .is_some()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let info = log.info(&id).await.unwrap();
    assert_eq!(info.aggregate.state, serde_json::json!({"n": 29}));
    assert_eq!(info.aggregate.cancel_reason.as_deref(), Some("done"));
}

pub async fn the_aggregate_matches_the_head_it_comes_with(log: Arc<dyn EventLog>) {
    // A late joiner renders the aggregate and tails after its head: the two must agree even
    // while events are appended, or the joiner sees some events twice.
    let id = StreamId::random();
    let mut new = new_leased(&id);
    new.leased = false;
    log.create(new).await.unwrap();
    let writer = {
        let (log, id) = (Arc::clone(&log), id.clone());
        tokio::spawn(async move {
            for n in 0..400u64 {
                if n % 2 == 0 {
                    log.append(&id, vec![delta("a")]).await.unwrap();
                } else {
                    log.append_at(&id, vec![delta("a")], n).await.unwrap();
                }
                tokio::task::yield_now().await;
            }
        })
    };
    let mut polls = 0;
    while !writer.is_finished() {
        let info = log.info(&id).await.unwrap();
        assert_eq!(
            info.aggregate.text().len() as u64,
            info.head.last_seq,
            "aggregate and head disagree"
        );
        polls += 1;
        tokio::task::yield_now().await;
    }
    writer.await.unwrap();
    assert!(polls > 1, "the reader ran while the writer wrote");
}

/// The limits every store is tested with.
pub fn limits() -> StoreLimits {
    StoreLimits {
        max_stream_events: 2000,
        ..StoreLimits::default()
    }
}

/// Generates one `#[tokio::test]` per contract item for a store. `$make` is an async block
/// giving the store; `$attr` are attributes for every test (e.g. the Redis ignore rule).
macro_rules! contract {
    ($store:ident, $make:expr $(, #[$attr:meta])*) => {
        mod $store {
            use super::*;
            contract!(@each $make, [$(#[$attr])*];
                seqs_are_dense_from_one_and_reads_are_ordered,
                the_terminal_event_is_the_last_one_ever,
                an_idempotency_key_names_one_stream_per_owner,
                unknown_streams_are_not_found_everywhere,
                wait_wakes_on_append_and_on_finish,
                readers_replay_then_follow_a_fast_producer_without_gaps,
                going_over_the_cap_ends_the_stream_too_large,
                a_window_keeps_only_recent_events_and_says_what_was_skipped,
                append_at_refuses_a_writer_whose_view_is_stale,
                the_aggregate_outlives_a_sliding_window,
                the_aggregate_matches_the_head_it_comes_with,
            );
        }
    };
    (@each $make:expr, $attrs:tt; $($test:ident),* $(,)?) => {
        $( contract!(@one $make, $attrs, $test); )*
    };
    (@one $make:expr, [$(#[$attr:meta])*], $test:ident) => {
        #[tokio::test]
        $(#[$attr])*
        async fn $test() {
            super::$test($make.await).await;
        }
    };
}

contract!(memory, async {
    Arc::new(tokenrelay::store::MemoryStore::new(limits())) as Arc<dyn EventLog>
});

contract!(
    redis,
    crate::support::redis::store(limits()),
    #[cfg_attr(not(redis_tests), ignore = "needs Redis: set TOKENRELAY_TEST_REDIS_URL (.ci/run does)")]
);
