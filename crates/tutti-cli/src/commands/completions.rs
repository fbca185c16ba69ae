//! `tutti completions SHELL`: a completion script generated from the clap tree in
//! `args.rs`, so it never drifts from the real commands.

use clap::CommandFactory;

use crate::args::Cli;

/// Prints the completion script for `shell` on stdout.
pub(crate) fn completions(shell: clap_complete::Shell) {
    let mut command = Cli::command();
    clap_complete::generate(shell, &mut command, "tutti", &mut std::io::stdout());
}
