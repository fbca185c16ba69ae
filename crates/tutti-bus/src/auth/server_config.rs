//! The nats-server configuration for operator mode: which operator to trust, which account
//! is the system account, and a `full` account resolver that keeps account JWTs in a
//! directory and accepts updates pushed over `$SYS` ([`super::push_account_jwt`]).
//!
//! The caller appends this to the rest of the broker config (listen address, JetStream,
//! TLS); `tutti_testkit::TestNats` does so in operator mode.

use std::path::Path;

use super::keys::BrokerAuth;

impl BrokerAuth {
    /// The config snippet for operator mode, with both accounts preloaded and the tutti
    /// account carrying `revocations` (see [`BrokerAuth::account_jwt`]).
    ///
    /// The broker stores a preloaded JWT over the one in `resolver_dir` whenever the
    /// preload was issued later, so a config written without the current revocations
    /// would undo every revocation at the next start. Pass the full list each time the
    /// config is written.
    pub fn nats_server_config(&self, resolver_dir: &Path, revocations: &[(String, u64)]) -> String {
        let system_account = self.system_account_public_key();
        let account = self.account_public_key();
        format!(
            "operator: \"{operator_jwt}\"\n\
             system_account: {system_account}\n\
             resolver {{\n  type: full\n  dir: {dir:?}\n  allow_delete: false\n  \
             interval: \"2m\"\n  timeout: \"1.9s\"\n}}\n\
             resolver_preload {{\n  {system_account}: \"{system_jwt}\"\n  \
             {account}: \"{account_jwt}\"\n}}\n",
            operator_jwt = self.operator_jwt(),
            dir = resolver_dir.display().to_string(),
            system_jwt = self.system_account_jwt(),
            account_jwt = self.account_jwt(revocations),
        )
    }
}
