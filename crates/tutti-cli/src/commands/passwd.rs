//! `tutti passwd`: change one's own password (`POST /api/v1/auth/password`), with the
//! profile's API token as the credential and the current password as proof.

use serde_json::json;

use crate::args::PasswdArgs;
use crate::client::{ApiClient, CliError};
use crate::output::print_json;
use crate::prompt::SecretInput;

/// Asks for the current and the new password and changes it.
pub(crate) async fn passwd(
    client: &ApiClient,
    args: PasswdArgs,
    json: bool,
) -> Result<(), CliError> {
    let mut input = SecretInput::new(args.password_stdin);
    let current = input.password(
        "Current password: ",
        "the current password on its first line",
    )?;
    let new = input.new_password("the new password on its second line")?;
    let body = json!({ "current_password": current, "new_password": new });
    client.post_no_answer("auth/password", &body).await?;
    if json {
        print_json(&json!({ "changed": true }));
    } else {
        println!(
            "password changed; the account's dashboard sessions are signed out, its API tokens keep working"
        );
    }
    Ok(())
}
