//! The scheduler's leader lease against a real broker: of two contenders exactly one leads,
//! a clean shutdown hands over at once, a crash hands over after the TTL, and a broker
//! outage ends with exactly one leader again.
//!
//! Each contender has its own connection, as separate `tutti server` processes would. Waits
//! poll for a condition with a generous bound; nothing asserts how fast a handover is.

use std::time::Duration;

use tokio::sync::watch;
use tutti_bus::{BusConfig, connect, ensure_resources};
use tutti_kv::Bucket;
use tutti_proto::catalog::{Catalog, CatalogConfig, LEASES_BUCKET};
use tutti_server::schedule::lease::{self, LeaseConfig, LeaseHandle};
use tutti_testkit::TestNats;

const WAIT: Duration = Duration::from_secs(10);

/// Short enough that a crashed leader's lease lapses quickly.
const SHORT: LeaseConfig = LeaseConfig {
    ttl: Duration::from_secs(1),
    renew_every: Duration::from_millis(200),
};

/// Longer than `WAIT`: a takeover within `WAIT` proves the lease was released, not expired.
const LONG: LeaseConfig = LeaseConfig {
    ttl: Duration::from_secs(20),
    renew_every: Duration::from_millis(200),
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_contenders_exactly_one_leads() {
    let nats = broker().await;
    let a = Contender::start(&nats, "server-a", SHORT).await;
    let b = Contender::start(&nats, "server-b", SHORT).await;
    wait_until("a leader", || a.is_leader() || b.is_leader()).await;

    let (mut n_samples, mut n_with_leader) = (0, 0);
    let sampling_ends = tokio::time::Instant::now() + Duration::from_secs(2);
    while tokio::time::Instant::now() < sampling_ends {
        let (a_leads, b_leads) = (a.is_leader(), b.is_leader());
        assert!(!(a_leads && b_leads), "both contenders lead at once");
        n_samples += 1;
        n_with_leader += usize::from(a_leads || b_leads);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        n_with_leader * 10 >= n_samples * 9,
        "a leader in only {n_with_leader} of {n_samples} samples"
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_shutdown_hands_the_lease_over_at_once() {
    let nats = broker().await;
    let a = Contender::start(&nats, "server-a", LONG).await;
    let b = Contender::start(&nats, "server-b", LONG).await;
    wait_until("a leader", || a.is_leader() || b.is_leader()).await;
    let (leader, follower) = if a.is_leader() { (a, b) } else { (b, a) };
    let old_term = leader.handle.term().expect("leader has a term");

    let leader_changes = leader.handle.changes();
    leader.stop().await;
    assert_eq!(
        *leader_changes.borrow(),
        None,
        "a stopped server still leads"
    );
    wait_until("the follower to take over", || follower.is_leader()).await;
    let new_term = follower.handle.term().expect("new leader has a term");
    assert!(new_term > old_term, "term {new_term} after {old_term}");
    follower.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_leader_is_replaced_after_the_ttl() {
    let nats = broker().await;
    let a = Contender::start(&nats, "server-a", SHORT).await;
    let b = Contender::start(&nats, "server-b", SHORT).await;
    wait_until("a leader", || a.is_leader() || b.is_leader()).await;
    let (leader, follower) = if a.is_leader() { (a, b) } else { (b, a) };
    let old_term = leader.handle.term().expect("leader has a term");

    // No shutdown signal and no release: the lease is left to lapse, as after a crash.
    leader.handle.abort();
    wait_until("the crashed leader to report not leading", || {
        !leader.is_leader()
    })
    .await;
    wait_until("the follower to take over", || follower.is_leader()).await;
    let new_term = follower.handle.term().expect("new leader has a term");
    assert!(new_term > old_term, "term {new_term} after {old_term}");
    follower.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_broker_restart_there_is_again_exactly_one_leader() {
    let mut nats = broker().await;
    let a = Contender::start(&nats, "server-a", SHORT).await;
    let b = Contender::start(&nats, "server-b", SHORT).await;
    wait_until("a leader", || a.is_leader() || b.is_leader()).await;

    tokio::task::block_in_place(|| nats.kill());
    // A leader that cannot renew steps down at its own deadline, broker or not.
    wait_until("no leader while the broker is down", || {
        !a.is_leader() && !b.is_leader()
    })
    .await;
    tokio::task::block_in_place(|| nats.start_again());
    wait_until("exactly one leader after the restart", || {
        a.is_leader() != b.is_leader()
    })
    .await;
    for _ in 0..100 {
        assert!(
            !(a.is_leader() && b.is_leader()),
            "both contenders lead at once"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    a.stop().await;
    b.stop().await;
}

/// One contender, as one server process would run it.
struct Contender {
    handle: LeaseHandle,
    shutdown: watch::Sender<bool>,
}

impl Contender {
    async fn start(nats: &TestNats, holder: &str, config: LeaseConfig) -> Contender {
        let bus = connect(&bus_config(nats)).await.expect("connect");
        let bucket = Bucket::open(bus.jetstream(), LEASES_BUCKET, bus.request_timeout())
            .await
            .expect("open the leases bucket");
        let (shutdown, shutdown_signal) = watch::channel(false);
        let handle = lease::spawn(bucket, holder.to_string(), config, shutdown_signal);
        Contender { handle, shutdown }
    }

    fn is_leader(&self) -> bool {
        self.handle.is_leader()
    }

    /// Shuts down cleanly and waits for the release.
    async fn stop(self) {
        self.shutdown.send_replace(true);
        self.handle.join().await;
    }
}

/// A broker with tutti's resources, the leases bucket among them.
async fn broker() -> TestNats {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("TUTTI_LOG").unwrap_or_else(|_| "info".into()))
        .with_test_writer()
        .try_init();
    let nats = TestNats::start();
    let bus = connect(&bus_config(&nats)).await.expect("connect");
    let catalog = Catalog::tutti(&CatalogConfig {
        storage_budget_bytes: 1 << 30,
        replicas: 1,
    });
    ensure_resources(&bus, &catalog).await.expect("bootstrap");
    nats
}

/// Short timeouts and reconnect delays, so an outage is noticed and recovered quickly.
fn bus_config(nats: &TestNats) -> BusConfig {
    BusConfig {
        request_timeout_ms: 1_000,
        connect_timeout_ms: 1_000,
        reconnect_max_delay_ms: 500,
        ..nats.bus_config()
    }
}

async fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {WAIT:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
