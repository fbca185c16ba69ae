//! Building a live broker connection from a [`BusConfig`].
//!
//! The result is a [`Bus`]: the core client, a JetStream context whose API requests carry
//! the configured timeout, and that timeout for callers that bound their own awaits.

use std::time::Duration;

use async_nats::{Client, ConnectOptions, jetstream};
use rand::Rng;

use crate::config::{Auth, BusConfig};
use crate::error::BusError;

/// The first reconnect delay; later ones double up to the configured ceiling.
const RECONNECT_BASE_DELAY: Duration = Duration::from_millis(250);

/// A connected (or, with `connect_in_background`, connecting) broker handle.
#[derive(Debug, Clone)]
pub struct Bus {
    client: Client,
    jetstream: jetstream::Context,
    request_timeout: Duration,
}

impl Bus {
    /// The core NATS client (publish, subscribe, request).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The JetStream context; its API requests time out after the configured bound.
    pub fn jetstream(&self) -> &jetstream::Context {
        &self.jetstream
    }

    /// The bound for JetStream, KV and object-store requests.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }
}

/// Connects to the broker described by `config`.
///
/// With `connect_in_background` the call returns at once and the client keeps trying with
/// jittered backoff; otherwise an unreachable broker is an error naming the URLs.
pub async fn connect(config: &BusConfig) -> Result<Bus, BusError> {
    if config.urls.is_empty() {
        return Err(BusError::Other(
            "no broker URL configured (bus.urls is empty)".into(),
        ));
    }
    let options = connect_options(config).await?;
    let client = options.connect(config.urls.clone()).await.map_err(|err| {
        BusError::Unavailable(format!(
            "cannot connect to {}: {err}",
            config.urls.join(", ")
        ))
    })?;
    let request_timeout = config.request_timeout();
    let jetstream = jetstream::ContextBuilder::new()
        .timeout(request_timeout)
        .build(client.clone());
    Ok(Bus {
        client,
        jetstream,
        request_timeout,
    })
}

async fn connect_options(config: &BusConfig) -> Result<ConnectOptions, BusError> {
    let mut options = match &config.auth {
        Auth::None => ConnectOptions::new(),
        Auth::Token { token } => ConnectOptions::with_token(token.clone()),
        Auth::UserPassword { user, password } => {
            ConnectOptions::with_user_and_password(user.clone(), password.clone())
        }
        Auth::Nkey { seed } => ConnectOptions::with_nkey(seed.clone()),
        Auth::Creds { creds } => ConnectOptions::with_credentials(creds)
            .map_err(|err| BusError::Other(format!("invalid inline credentials: {err}")))?,
        Auth::CredsFile { path } => {
            ConnectOptions::with_credentials_file(path)
                .await
                .map_err(|err| {
                    BusError::Other(format!(
                        "cannot read credentials file {}: {err}",
                        path.display()
                    ))
                })?
        }
    };
    if let Some(tls) = &config.tls {
        options = options.require_tls(tls.required);
        if let Some(ca_file) = &tls.ca_file {
            options = options.add_root_certificates(ca_file.clone());
        }
        if let (Some(cert), Some(key)) = (&tls.client_cert, &tls.client_key) {
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
    }
    let max_delay = Duration::from_millis(config.reconnect_max_delay_ms);
    options = options
        .name(&config.name)
        .connection_timeout(Duration::from_millis(config.connect_timeout_ms))
        .request_timeout(Some(config.request_timeout()))
        .reconnect_delay_callback(move |attempts| reconnect_delay(attempts, max_delay));
    if config.connect_in_background {
        options = options.retry_on_initial_connect();
    }
    if let Some(prefix) = &config.inbox_prefix {
        options = options.custom_inbox_prefix(prefix);
    }
    Ok(options)
}

/// Full-jitter exponential backoff: uniformly random in `[0, min(max, base * 2^attempts)]`.
/// Jitter spreads a fleet's reconnects after a broker restart instead of synchronising them.
pub fn reconnect_delay(attempts: usize, max_delay: Duration) -> Duration {
    let exponent = attempts.min(20) as u32;
    let ceiling = RECONNECT_BASE_DELAY
        .saturating_mul(1u32 << exponent)
        .min(max_delay);
    let millis = ceiling.as_millis() as u64;
    Duration::from_millis(rand::thread_rng().gen_range(0..=millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnect_delay_is_bounded_by_the_ceiling_and_grows() {
        let max = Duration::from_secs(30);
        for attempts in 0..64 {
            assert!(reconnect_delay(attempts, max) <= max);
        }
        let early_ceiling = RECONNECT_BASE_DELAY.saturating_mul(2);
        assert!((0..100).all(|_| reconnect_delay(1, max) <= early_ceiling));
        assert!((0..200).any(|_| reconnect_delay(10, max) > early_ceiling));
    }
}
