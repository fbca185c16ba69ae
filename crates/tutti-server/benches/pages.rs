//! Dashboard page times at fleet scale: a real server (real broker, SQLite file) holding
//! 10,000 agents with inventory, 100 runs of 1,000 targets each (100,000 results) and
//! 10,000 audit records; every main page is fetched 30 times over HTTP with an API token
//! and the server's response time is reported (p50, p95, max) with the page size.
//!
//! Run with `cargo bench -p tutti-server --bench pages` (seeding takes about a minute).
//! The goal (issue 9) is every page under 100 ms; this prints figures, it asserts only
//! that every page answered 200.

use std::time::{Duration, Instant};

use jiff::Timestamp;
use tutti_proto::audit::{AuditOutcome, AuditRecord};
use tutti_proto::heartbeat::Heartbeat;
use tutti_proto::inventory::{Facts, InventorySnapshot, Package};
use tutti_proto::result::{Output, ResultStatus, RunResult};
use tutti_proto::{AgentId, CommandId, JobId, ResultId, RunId};
use tutti_store::baseline::enroll_agents;
use tutti_store::{JobDraft, NewRun, Sequenced, Store};
use tutti_testkit::{TestNats, TestServer};

const AGENTS: usize = 10_000;
const RUNS: usize = 100;
const TARGETS_PER_RUN: usize = 1_000;
const AUDIT_RECORDS: usize = 10_000;
const SAMPLES: usize = 30;

fn agent(n: usize) -> AgentId {
    AgentId::parse(&format!("host-{n:05}")).expect("agent id")
}

async fn seed(store: &Store) -> RunId {
    let now = Timestamp::now();
    let oses = ["debian", "ubuntu", "rhel", "alpine", "windows"];
    let versions = ["0.1.0", "0.1.1", "0.2.0"];
    let fleet: Vec<AgentId> = (0..AGENTS).map(agent).collect();
    enroll_agents(store, &fleet, now).await.expect("enroll");
    for chunk in (0..AGENTS).collect::<Vec<_>>().chunks(1_000) {
        let beats = chunk
            .iter()
            .filter(|n| *n % 10 != 0) // every tenth agent is offline (no heartbeat)
            .map(|&n| Heartbeat {
                agent_id: agent(n),
                at: now,
                version: versions[n % versions.len()].into(),
                uptime_secs: 3_600,
                rss_bytes: 8_000_000,
                cpu_percent: 0.1,
                queue_depth: 0,
                outbox_depth: 0,
                cursor: 1,
                hostname: format!("host-{n:05}.example.net"),
                trusted_keys: Vec::new(),
            })
            .collect();
        store.apply_heartbeats(beats).await.expect("heartbeats");
        let snapshots = chunk
            .iter()
            .map(|&n| {
                Sequenced::new(
                    n as u64 + 1,
                    InventorySnapshot {
                        agent_id: agent(n),
                        at: now,
                        facts: Facts {
                            os_name: oses[n % oses.len()].into(),
                            os_version: "12".into(),
                            arch: "x86_64".into(),
                            hostname: format!("host-{n:05}.example.net"),
                            ..Facts::default()
                        },
                        packages: (0..20)
                            .map(|p| Package {
                                name: format!("package-{p}"),
                                version: format!("1.{p}.{}", n % 3),
                                arch: "amd64".into(),
                                manager: "dpkg".into(),
                            })
                            .collect(),
                    },
                )
            })
            .collect();
        store.apply_inventory(snapshots).await.expect("inventory");
    }
    let job_id = JobId::parse("uptime").expect("job id");
    let draft = JobDraft {
        job_id: job_id.clone(),
        definition: serde_json::json!({ "script": "uptime" }),
        source_yaml: "kind: Job\nname: uptime\nscript: uptime\n".into(),
        anonymous: false,
    };
    store.put_job(draft, "bench", now).await.expect("job");
    let mut seq = 0;
    let mut last = None;
    for r in 0..RUNS {
        let run_id = RunId::from_parts(now.as_millisecond() as u64 - 1_000 + r as u64, r as u128);
        let targets: Vec<AgentId> = (0..TARGETS_PER_RUN)
            .map(|t| agent((r * 97 + t) % AGENTS))
            .collect();
        let run = NewRun {
            run_id,
            job_id: job_id.clone(),
            job_version: 1,
            created_at: now,
            created_by: "bench".into(),
            targets_spec: serde_json::json!({ "all": true }),
            deadline: None,
            scheduled: false,
            schedule_name: None,
            during_freeze: false,
        };
        store.create_run(run, targets.clone()).await.expect("run");
        let results = targets
            .into_iter()
            .enumerate()
            .map(|(t, agent_id)| {
                seq += 1;
                let failed = t % 50 == 0;
                Sequenced::new(
                    seq,
                    RunResult {
                        result_id: ResultId::new(&run_id, &agent_id),
                        run_id,
                        command_id: CommandId::from_parts(now.as_millisecond() as u64, 7),
                        agent_id,
                        status: if failed {
                            ResultStatus::Failed
                        } else {
                            ResultStatus::Succeeded
                        },
                        exit_code: Some(i32::from(failed)),
                        stdout: Output {
                            inline: " 12:00:00 up 3 days,  load average: 0.08\n".into(),
                            total_bytes: 42,
                            truncated: None,
                            object: None,
                        },
                        stderr: Output::default(),
                        delivered_at: None,
                        started_at: Some(now),
                        finished_at: now,
                    },
                )
            })
            .collect();
        store.apply_results(results).await.expect("results");
        last = Some(run_id);
    }
    let records = (0..AUDIT_RECORDS)
        .map(|n| {
            Sequenced::new(
                n as u64 + 1,
                AuditRecord {
                    at: now,
                    actor: "admin".into(),
                    role: "admin".into(),
                    action: "run.create".into(),
                    target: format!("run/{n}"),
                    summary: serde_json::json!({ "targets": n }),
                    source: Some("127.0.0.1".into()),
                    outcome: AuditOutcome::Succeeded,
                },
            )
        })
        .collect();
    store.apply_audit(records).await.expect("audit");
    last.expect("a run")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let nats = TestNats::start();
        let server = TestServer::start(&nats).await;
        let started = Instant::now();
        let run_id = seed(&server.app().store).await;
        let hour_ago = Timestamp::now() - jiff::SignedDuration::from_hours(1);
        let fleet = server
            .app()
            .store
            .fleet_overview(hour_ago, hour_ago)
            .await
            .expect("overview");
        assert_eq!(fleet.agents, AGENTS as u64, "{fleet:?}");
        assert_eq!(fleet.never_seen, AGENTS as u64 / 10, "{fleet:?}");
        assert_eq!(fleet.failed_targets, (RUNS * TARGETS_PER_RUN / 50) as u64);
        let packages = server
            .app()
            .store
            .list_agent_packages(&agent(42), None, tutti_store::Page::new(1, 0))
            .await
            .expect("packages");
        assert_eq!(packages.total, 20);
        eprintln!(
            "seeded {AGENTS} agents, {} results, {AUDIT_RECORDS} audit records in {:.1} s",
            RUNS * TARGETS_PER_RUN,
            started.elapsed().as_secs_f64()
        );
        let pages = [
            "/".to_string(),
            "/agents".into(),
            "/agents?q=host-0424".into(),
            "/agents?status=online&os=debian&sort=last_heartbeat&dir=desc&offset=5000".into(),
            "/agents/host-00042".into(),
            "/agents/host-00042?pkg=package-1".into(),
            "/jobs".into(),
            "/jobs/uptime".into(),
            "/runs".into(),
            format!("/runs/{run_id}"),
            format!("/runs/{run_id}?agent={}", agent((RUNS - 1) * 97 % AGENTS)),
            "/schedules".into(),
            "/audit".into(),
            "/audit?action=run.create&offset=9000".into(),
            "/settings".into(),
        ];
        println!(
            "{:<72} {:>8} {:>8} {:>8} {:>9}",
            "page", "p50 ms", "p95 ms", "max ms", "KiB"
        );
        for page in &pages {
            let url = format!("{}{page}", server.url());
            let mut times = Vec::with_capacity(SAMPLES);
            let mut size = 0;
            for _ in 0..SAMPLES {
                let start = Instant::now();
                let response = server.http().get(&url).send().await.expect("GET");
                let status = response.status();
                let body = response.bytes().await.expect("body");
                times.push(start.elapsed());
                assert!(status.is_success(), "{page}: {status}");
                size = body.len();
            }
            times.sort();
            println!(
                "{:<72} {:>8.1} {:>8.1} {:>8.1} {:>9.1}",
                page,
                percentile(&times, 0.5).as_secs_f64() * 1e3,
                percentile(&times, 0.95).as_secs_f64() * 1e3,
                times[times.len() - 1].as_secs_f64() * 1e3,
                size as f64 / 1024.0
            );
        }
    });
}
