//! The agent-local allowlist of shells and users (`[execution]` in `agent.toml`), against a
//! real broker: a command asking for a shell or user outside it ends `skipped` with reason
//! `not_allowed` and the refused value in its stderr; an allowed one runs.

mod common;

use common::{Fleet, all, test_options};
use tutti_agent::LocalConfig;
use tutti_agent::config::ExecutionConfig;
use tutti_proto::command::Shell;
use tutti_proto::result::{ResultStatus, SkipReason};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shell_or_user_outside_the_allowlist_is_skipped_and_an_allowed_one_runs() {
    let fleet = Fleet::start().await;
    let spec = fleet.enroll("box-1", &[]).await;
    let config = LocalConfig {
        execution: ExecutionConfig {
            allowed_shells: vec!["sh".into()],
            allowed_users: vec!["deploy".into()],
            ..ExecutionConfig::default()
        },
        ..spec.config()
    };
    let running = spec.start_with(config, test_options());
    let (bash_run, bash) =
        fleet.command_with(all(), "echo from bash", |run| run.shell = Shell::Bash);
    fleet.publish(&bash).await;
    let (root_run, as_root) =
        fleet.command_with(all(), "id -u", |run| run.user = Some("root".into()));
    fleet.publish(&as_root).await;
    let (sh_run, sh) = fleet.run_command(all(), "echo from sh");
    fleet.publish(&sh).await;
    let results = fleet.results(3).await;
    running.stop().await;

    let result_of = |run_id| {
        results
            .iter()
            .find(|result| result.run_id == run_id)
            .unwrap()
    };
    let not_allowed = ResultStatus::Skipped {
        reason: SkipReason::NotAllowed,
    };
    let (bash, as_root) = (result_of(bash_run), result_of(root_run));
    assert_eq!(bash.status, not_allowed);
    assert!(
        bash.stderr.inline.contains("shell bash"),
        "{:?}",
        bash.stderr
    );
    assert_eq!(as_root.status, not_allowed);
    assert!(
        as_root.stderr.inline.contains("user root"),
        "{:?}",
        as_root.stderr
    );
    assert_eq!(bash.started_at, None, "never started");
    let sh = result_of(sh_run);
    assert_eq!(sh.status, ResultStatus::Succeeded);
    assert_eq!(sh.stdout.inline, "from sh\n");
}
