//! One file per command; [`dispatch`] is the single place that maps a parsed command line
//! to its implementation and an error to its exit code.

mod agents;
mod apply;
mod audit;
mod completions;
mod config;
mod enroll_token;
mod inventory;
mod jobs;
mod login;
mod run;
mod runs;
mod up;

use std::process::ExitCode;

use crate::Env;
use crate::args::{Cli, Command};
use crate::client::{ApiClient, CliError};
use crate::profile::Profiles;

/// Runs the command and turns its outcome into an exit code.
pub(crate) async fn dispatch(cli: Cli, env: Env) -> ExitCode {
    let json = cli.json;
    let profile = cli.profile.clone();
    let outcome = match cli.command {
        Command::Up(args) => up::up(args, &env).await.map(|()| ExitCode::SUCCESS),
        Command::Login(args) => login::login(args, &env).map(|()| ExitCode::SUCCESS),
        Command::Logout { name } => login::logout(name, &env).map(|()| ExitCode::SUCCESS),
        Command::Completions { shell } => {
            completions::completions(shell);
            Ok(ExitCode::SUCCESS)
        }
        command => match client(&env, profile.as_deref()) {
            Ok(client) => over_http(&client, command, json).await,
            Err(err) => Err(err),
        },
    };
    match outcome {
        Ok(code) => code,
        Err(err) => {
            eprintln!("tutti: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}

/// The commands that talk to the server's HTTP API.
async fn over_http(client: &ApiClient, command: Command, json: bool) -> Result<ExitCode, CliError> {
    let done = |()| ExitCode::SUCCESS;
    match command {
        Command::Run(args) => run::run(client, args, json).await,
        Command::Runs(args) => runs::runs(client, args, json).await.map(done),
        Command::Agents(args) => agents::agents(client, args, json).await.map(done),
        Command::Apply(args) => apply::apply(client, args, json).await.map(done),
        Command::Jobs(args) => jobs::jobs(client, args, json).await.map(done),
        Command::Inventory(args) => inventory::inventory(client, args, json).await.map(done),
        Command::Config(args) => config::config(client, args, json).await.map(done),
        Command::Audit(args) => audit::audit(client, args, json).await.map(done),
        Command::EnrollToken(args) => enroll_token::enroll_token(client, args.action, json)
            .await
            .map(done),
        Command::Up(_)
        | Command::Login(_)
        | Command::Logout { .. }
        | Command::Completions { .. } => Err(CliError::Other(
            "this command does not use the server".into(),
        )),
    }
}

/// The API client for the chosen profile (environment overrides win).
fn client(env: &Env, profile: Option<&str>) -> Result<ApiClient, CliError> {
    let profiles =
        Profiles::load(&env.profiles_path).map_err(|err| CliError::Usage(format!("{err:#}")))?;
    let resolved = profiles
        .resolve(profile, &env.overrides)
        .map_err(|err| CliError::Usage(err.to_string()))?;
    ApiClient::new(&resolved)
}
