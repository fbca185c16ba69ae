//! `tutti login` and `tutti logout`: keep server URLs and tokens as named profiles.

use crate::Env;
use crate::args::LoginArgs;
use crate::client::CliError;
use crate::profile::{Profile, Profiles};

/// Stores a profile and makes it current.
pub(crate) fn login(args: LoginArgs, env: &Env) -> Result<(), CliError> {
    if !(args.server.starts_with("http://") || args.server.starts_with("https://")) {
        return Err(CliError::Usage(format!(
            "--server {:?} must start with http:// or https://",
            args.server
        )));
    }
    let mut profiles = Profiles::load(&env.profiles_path)?;
    profiles.set_current(
        &args.name,
        Profile {
            server: args.server.clone(),
            token: args.token,
        },
    );
    profiles.save(&env.profiles_path)?;
    println!(
        "profile {:?} now points at {} (stored in {})",
        args.name,
        args.server,
        env.profiles_path.display()
    );
    Ok(())
}

/// Removes a profile.
pub(crate) fn logout(name: Option<String>, env: &Env) -> Result<(), CliError> {
    let mut profiles = Profiles::load(&env.profiles_path)?;
    let Some(name) = name.or_else(|| profiles.current.clone()) else {
        return Err(CliError::Usage("no current profile to log out of".into()));
    };
    if profiles.profiles.remove(&name).is_none() {
        return Err(CliError::Usage(format!("no profile named {name:?}")));
    }
    if profiles.current.as_deref() == Some(name.as_str()) {
        profiles.current = None;
    }
    profiles.save(&env.profiles_path)?;
    println!("logged out of {name:?}");
    Ok(())
}
