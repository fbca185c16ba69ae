//! The command line of signing in and of accounts and API tokens: `tutti login`,
//! `tutti passwd`, `tutti users`, `tutti tokens`. Re-exported by `args`.

use clap::{Args, Subcommand};
use tutti_proto::role::Role;

#[derive(Debug, Args)]
pub(crate) struct LoginArgs {
    /// The server URL, e.g. `https://tutti.example.com`.
    #[arg(long)]
    pub(crate) server: String,
    /// Trust only the CA certificates in this PEM file for the server's HTTPS certificate
    /// (a private CA); stored in the profile.
    #[arg(long)]
    pub(crate) ca: Option<std::path::PathBuf>,
    /// The account to sign in as (asked on the terminal when absent).
    #[arg(long, value_name = "NAME", conflicts_with = "token")]
    pub(crate) user: Option<String>,
    /// Read the password from the first line of standard input, and a new password (when
    /// the account must change it) from the second.
    #[arg(long, conflicts_with = "token")]
    pub(crate) password_stdin: bool,
    /// The code from the authenticator app, or a recovery code (asked when needed).
    #[arg(long, conflicts_with = "token")]
    pub(crate) code: Option<String>,
    /// Days until the issued token expires.
    #[arg(
        long,
        value_name = "DAYS",
        default_value_t = 30,
        conflicts_with = "token"
    )]
    pub(crate) expires_days: u32,
    /// Store this existing API token instead of signing in with a password.
    #[arg(long)]
    pub(crate) token: Option<String>,
    /// The profile name.
    #[arg(long, default_value = "default")]
    pub(crate) name: String,
}

#[derive(Debug, Args)]
pub(crate) struct PasswdArgs {
    /// Read the current password from the first line of standard input and the new one
    /// from the second.
    #[arg(long)]
    pub(crate) password_stdin: bool,
}

#[derive(Debug, Args)]
pub(crate) struct UsersArgs {
    #[command(subcommand)]
    pub(crate) action: UsersAction,
}

#[derive(Debug, Subcommand)]
pub(crate) enum UsersAction {
    /// List accounts (never their secrets).
    ///
    /// Example: `tutti users list`
    List {
        /// Rows to show.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=500))]
        limit: u32,
        /// Rows to skip.
        #[arg(long, default_value_t = 0)]
        offset: u64,
    },
    /// Create an account. Its one-time password is generated and printed once (or read
    /// from standard input); it must be changed at first sign-in.
    ///
    /// Example: `tutti users create alice --role operator`
    Create {
        /// The account name: 1 to 64 of a-z 0-9 . _ -
        name: String,
        /// viewer, operator or admin.
        #[arg(long)]
        role: Role,
        /// Read the initial password from standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Disable an account: its sign-ins, sessions and API tokens are refused from its
    /// next request on.
    ///
    /// Example: `tutti users disable alice`
    Disable {
        /// The account name.
        name: String,
    },
    /// Enable a disabled account again (its unexpired tokens work again).
    ///
    /// Example: `tutti users enable alice`
    Enable {
        /// The account name.
        name: String,
    },
    /// Change an account's role (its tokens are capped at the new role).
    ///
    /// Example: `tutti users role alice viewer`
    #[command(name = "role")]
    SetRole {
        /// The account name.
        name: String,
        /// viewer, operator or admin.
        role: Role,
    },
    /// Reset an account's password to a new one-time password, printed once; the account
    /// must change it at its next sign-in, and its dashboard sessions end.
    ///
    /// Example: `tutti users reset-password alice`
    ResetPassword {
        /// The account name.
        name: String,
    },
}

#[derive(Debug, Args)]
pub(crate) struct TokensArgs {
    #[command(subcommand)]
    pub(crate) action: TokensAction,
}

#[derive(Debug, Subcommand)]
pub(crate) enum TokensAction {
    /// List your API tokens, newest first (never their secrets).
    ///
    /// Examples:
    ///   tutti tokens list
    ///   tutti tokens list --all    (every account's, admins only)
    #[command(verbatim_doc_comment)]
    List {
        /// Every account's tokens (admins only).
        #[arg(long)]
        all: bool,
        /// Rows to show.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=500))]
        limit: u32,
        /// Rows to skip.
        #[arg(long, default_value_t = 0)]
        offset: u64,
    },
    /// Create an API token for yourself; its secret is printed once.
    ///
    /// Example: `tutti tokens create ci --role viewer --expires-days 90`
    Create {
        /// A name to recognise it by.
        name: String,
        /// Its role (default: yours; never higher).
        #[arg(long)]
        role: Option<Role>,
        /// Days until it expires (default: never, unless the server sets a maximum).
        #[arg(long, value_name = "DAYS")]
        expires_days: Option<u32>,
    },
    /// Revoke an API token: yours, or anyone's as an admin.
    ///
    /// Example: `tutti tokens revoke 3f2a9c1d`
    Revoke {
        /// The token id (from `tutti tokens list`).
        token_id: String,
    },
}
