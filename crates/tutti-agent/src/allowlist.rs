//! The shells and users this machine lets a command ask for (`[execution] allowed_shells`
//! and `allowed_users` in `agent.toml`). The server decides what runs where; the
//! allowlist is what this machine lets anyone run at all, so even a correctly signed
//! command outside it ends `skipped` with reason `not_allowed` (`runner.rs`).

use tutti_proto::command::Shell;

use crate::config::ExecutionConfig;

/// The shells and users this machine lets a command ask for (`[execution]` in
/// `agent.toml`); an empty list allows everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Allowlist {
    /// `None` allows every shell.
    shells: Option<Vec<Shell>>,
    /// Empty allows every user.
    users: Vec<String>,
}

impl Allowlist {
    /// The allowlist of a parsed configuration.
    pub fn new(execution: &ExecutionConfig) -> Allowlist {
        Allowlist {
            shells: execution.allowed_shells(),
            users: execution.allowed_users.clone(),
        }
    }

    /// Why a command asking for `shell` as `user` may not run here, naming the value and
    /// the setting; `None` when it may.
    pub fn refusal(&self, shell: Shell, user: Option<&str>) -> Option<String> {
        if let Some(shells) = &self.shells
            && !shells.contains(&shell)
        {
            let names: Vec<String> = shells.iter().map(|shell| shell_name(*shell)).collect();
            return Some(format!(
                "shell {} is not allowed on this agent ([execution] allowed_shells = {names:?} in agent.toml)",
                shell_name(shell)
            ));
        }
        match user {
            Some(user)
                if !self.users.is_empty() && !self.users.iter().any(|allowed| allowed == user) =>
            {
                Some(format!(
                    "user {user} is not allowed on this agent ([execution] allowed_users = {:?} in agent.toml)",
                    self.users
                ))
            }
            _ => None,
        }
    }
}

/// The shell's name on the wire (`sh`, `bash`, ...).
fn shell_name(shell: Shell) -> String {
    match serde_json::to_value(shell) {
        Ok(serde_json::Value::String(name)) => name,
        _ => format!("{shell:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allowlist_names_the_refused_shell_or_user() {
        let check = |shells: &[&str], users: &[&str], shell: Shell, user: Option<&str>| {
            let execution = ExecutionConfig {
                allowed_shells: shells.iter().map(|s| s.to_string()).collect(),
                allowed_users: users.iter().map(|u| u.to_string()).collect(),
                ..ExecutionConfig::default()
            };
            Allowlist::new(&execution).refusal(shell, user)
        };
        assert_eq!(
            check(&[], &[], Shell::Bash, Some("root")),
            None,
            "empty allows all"
        );
        assert_eq!(
            check(&["sh", "bash"], &["deploy"], Shell::Bash, Some("deploy")),
            None
        );
        assert_eq!(
            check(&[], &["deploy"], Shell::Sh, None),
            None,
            "no user asked for"
        );
        let shell = check(&["sh"], &[], Shell::Bash, None).unwrap();
        assert!(
            shell.contains("shell bash") && shell.contains("[\"sh\"]"),
            "{shell}"
        );
        let user = check(&[], &["deploy"], Shell::Sh, Some("root")).unwrap();
        assert!(
            user.contains("user root") && user.contains("allowed_users"),
            "{user}"
        );
    }
}
