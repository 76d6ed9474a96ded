//! The load generator as a CI smoke: short scenarios through the in-process server with the
//! memory store; every token must arrive exactly once. No timing is asserted.

use tokenrelay::bench::report::Check;
use tokenrelay::bench::scenarios::streaming;
use tokenrelay::bench::subscribers::{fan_out, resume};
use tokenrelay::bench::upstream::{MockModel, MockUpstream};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_streams_of_twenty_tokens_lose_nothing() {
    let upstream = MockUpstream::start().await.unwrap();
    let rows = streaming(&upstream, "smoke", MockModel::new(20, 1), 5, &["memory"])
        .await
        .unwrap();
    assert_eq!(rows.len(), 2, "direct and memory store");
    for row in &rows {
        assert_eq!(row.check, Check::Ok, "{}", row.target);
        assert_eq!(row.stats.unwrap().count, 100, "{}", row.target);
    }
    assert!(
        rows[1].ratio.is_some(),
        "the relay row is compared with direct"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_and_resume_lose_nothing() {
    let upstream = MockUpstream::start().await.unwrap();
    let rows = fan_out(&upstream, 10, MockModel::new(5, 1)).await.unwrap();
    assert_eq!(rows[1].stats.unwrap().count, 50);
    let rows_resume = resume(&upstream, "memory", 50, 2).await.unwrap();
    for row in rows.iter().chain(&rows_resume) {
        assert_eq!(row.check, Check::Ok, "{} {}", row.scenario, row.target);
    }
}
