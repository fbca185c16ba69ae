//! One file per command; [`dispatch`] is the single place that maps a parsed command line
//! to its implementation and an error to its exit code.

mod agents;
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
        Command::Run(args) => match client(&env, profile.as_deref()) {
            Ok(client) => run::run(&client, args, json).await,
            Err(err) => Err(err),
        },
        Command::Runs(args) => match client(&env, profile.as_deref()) {
            Ok(client) => runs::runs(&client, args, json)
                .await
                .map(|()| ExitCode::SUCCESS),
            Err(err) => Err(err),
        },
        Command::Agents(args) => match client(&env, profile.as_deref()) {
            Ok(client) => agents::agents(&client, args, json)
                .await
                .map(|()| ExitCode::SUCCESS),
            Err(err) => Err(err),
        },
        Command::Login(args) => login::login(args, &env).map(|()| ExitCode::SUCCESS),
        Command::Logout { name } => login::logout(name, &env).map(|()| ExitCode::SUCCESS),
    };
    match outcome {
        Ok(code) => code,
        Err(err) => {
            eprintln!("tutti: {err}");
            ExitCode::from(err.exit_code())
        }
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
