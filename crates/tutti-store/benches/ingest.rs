//! Results ingest: `apply_results` in batches of 500 against a baseline of plain batched
//! `INSERT`s of the same rows into the same `results` table, in the same process (the
//! baseline is `tutti_store::baseline::PlainResultInserter`, the one `tutti bench ingest` uses).
//!
//! Both sides start from a fresh run with 500 queued targets (created outside the timed
//! part) and commit one transaction per batch. `apply_results` additionally checks each
//! target, de-duplicates by result id, moves the target's state, refreshes the run's
//! status and records the projector position, and runs on tokio's blocking pool; the
//! ratio says what that costs. Run with `cargo bench -p tutti-store --bench ingest`; the
//! summary lines at the end are what the crate README quotes.

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use jiff::Timestamp;
use tokio::runtime::Runtime;
use tutti_proto::result::RunResult;
use tutti_proto::{AgentId, CommandId, JobId, RunId};
use tutti_store::baseline::{PlainResultInserter, enroll_agents, uptime_result};
use tutti_store::{JobDraft, NewRun, Sequenced, Store};

const BATCH: u64 = 500;

/// One database with a run factory: every batch gets its own run so results are new.
struct Bench {
    runtime: Runtime,
    store: Store,
    baseline: PlainResultInserter,
    next_run: u64,
    next_seq: u64,
    _dir: tempfile::TempDir,
}

impl Bench {
    fn new() -> Bench {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("bench.db");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let store = runtime.block_on(Store::open_sqlite(&path)).expect("open");
        let draft = JobDraft {
            job_id: JobId::parse("uptime").expect("job id"),
            definition: serde_json::json!({ "script": "uptime" }),
            source_yaml: String::new(),
            anonymous: false,
        };
        runtime
            .block_on(store.put_job(draft, "bench", Timestamp::UNIX_EPOCH))
            .expect("job");
        runtime
            .block_on(enroll_agents(&store, &agents(), Timestamp::now()))
            .expect("enroll the agents");
        Bench {
            baseline: PlainResultInserter::open(&path).expect("baseline connection"),
            runtime,
            store,
            next_run: 0,
            next_seq: 0,
            _dir: dir,
        }
    }

    /// A new run with `BATCH` queued targets and the results its agents would send.
    fn prepare(&mut self) -> Vec<Sequenced<RunResult>> {
        self.next_run += 1;
        let run_id =
            RunId::from_parts(1_714_564_800_000 + self.next_run, u128::from(self.next_run));
        let agents = agents();
        let run = NewRun {
            run_id,
            job_id: JobId::parse("uptime").expect("job id"),
            job_version: 1,
            created_at: Timestamp::UNIX_EPOCH,
            created_by: "bench".to_string(),
            targets_spec: serde_json::json!({ "all": true }),
            deadline: None,
            scheduled: false,
            schedule_name: None,
            during_freeze: false,
        };
        self.runtime
            .block_on(self.store.create_run(run, agents.clone()))
            .expect("run");
        agents
            .into_iter()
            .map(|agent_id| {
                self.next_seq += 1;
                Sequenced::new(
                    self.next_seq,
                    uptime_result(
                        run_id,
                        agent_id,
                        CommandId::from_parts(1_714_564_800_000, 7),
                        Timestamp::UNIX_EPOCH,
                    ),
                )
            })
            .collect()
    }

    fn apply(&self, batch: Vec<Sequenced<RunResult>>) {
        let outcome = self
            .runtime
            .block_on(self.store.apply_results(batch))
            .expect("apply");
        assert_eq!(outcome.applied, BATCH);
    }
}

/// The agents of every run: one per result of a batch, enrolled once.
fn agents() -> Vec<AgentId> {
    (0..BATCH)
        .map(|n| AgentId::parse(&format!("agent-{n:05}")).expect("agent id"))
        .collect()
}

fn criterion_benches(criterion: &mut Criterion) {
    let mut bench = Bench::new();
    let mut group = criterion.benchmark_group("ingest");
    group.throughput(Throughput::Elements(BATCH));
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1));
    group.bench_function("apply_results_500", |b| {
        b.iter_custom(|iters| timed(iters, &mut bench, |bench, batch| bench.apply(batch)));
    });
    let mut baseline_bench = Bench::new();
    group.bench_function("plain_insert_500", |b| {
        b.iter_custom(|iters| {
            timed(iters, &mut baseline_bench, |bench, batch| {
                bench.baseline.insert(&batch).expect("plain insert")
            })
        });
    });
    group.finish();
}

/// Runs `work` on `iters` fresh batches and returns the time spent in `work` alone.
fn timed(
    iters: u64,
    bench: &mut Bench,
    work: impl Fn(&mut Bench, Vec<Sequenced<RunResult>>),
) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let batch = bench.prepare();
        let start = Instant::now();
        work(bench, batch);
        total += start.elapsed();
    }
    total
}

/// Alternates both sides over the same number of batches and prints results/s and ratio.
fn summary() {
    const ROUNDS: u32 = 40;
    let mut bench = Bench::new();
    let (mut applied, mut plain) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..ROUNDS {
        let batch = bench.prepare();
        let start = Instant::now();
        bench.apply(batch);
        applied += start.elapsed();
        let batch = bench.prepare();
        let start = Instant::now();
        bench.baseline.insert(&batch).expect("plain insert");
        plain += start.elapsed();
    }
    let n_results = f64::from(ROUNDS) * BATCH as f64;
    let applied_rate = n_results / applied.as_secs_f64();
    let plain_rate = n_results / plain.as_secs_f64();
    println!("ingest summary: apply_results {applied_rate:.0} results/s (batches of {BATCH})");
    println!("ingest summary: plain INSERT baseline {plain_rate:.0} results/s");
    println!(
        "ingest summary: ratio {:.0}% of baseline",
        100.0 * applied_rate / plain_rate
    );
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    criterion_benches(&mut criterion);
    criterion.final_summary();
    summary();
}
