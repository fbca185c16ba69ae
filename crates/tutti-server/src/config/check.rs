//! The checks of values that parse but cannot work: each names the key it is about, so
//! `load.rs` can point at its line. Files the server will read (certificates, keys, CA
//! bundles, credentials) must exist and be readable now, not at the first request.

use std::path::Path;

use super::{IpNet, ServerConfig};

/// `(key, message)` of the first problem found.
pub(super) type Problem = (String, String);

/// Every check, in the order of the example file.
pub(super) fn validate(config: &ServerConfig) -> Result<(), Problem> {
    check_top_level(config)?;
    check_bus(config)?;
    check_http(config)?;
    check_enrollment(config)?;
    check_limits(config)?;
    check_auth(config)
}

fn problem(key: &str, message: impl Into<String>) -> Result<(), Problem> {
    Err((key.to_string(), message.into()))
}

fn check_top_level(config: &ServerConfig) -> Result<(), Problem> {
    if config.data_dir.as_os_str().is_empty() {
        return problem("data_dir", "must name a directory");
    }
    if !config.public_url.is_empty() {
        check_url("public_url", &config.public_url, &["http", "https"])?;
    }
    if config.log.level.trim().is_empty() {
        return problem("log.level", "must not be empty (e.g. \"info\")");
    }
    if let Some(path) = &config.keys.signing_key_file
        && path.exists()
    {
        readable_file("keys.signing_key_file", path)?;
    }
    Ok(())
}

fn check_bus(config: &ServerConfig) -> Result<(), Problem> {
    if config.bus.urls.is_empty() {
        return problem("bus.urls", "must name at least one broker");
    }
    for url in &config.bus.urls {
        check_url("bus.urls", url, &["nats", "tls", "ws", "wss"])?;
    }
    if let Some(tls) = &config.bus.tls {
        optional_file("bus.tls.ca_file", tls.ca_file.as_deref())?;
        optional_file("bus.tls.client_cert", tls.client_cert.as_deref())?;
        optional_file("bus.tls.client_key", tls.client_key.as_deref())?;
        if tls.client_cert.is_some() != tls.client_key.is_some() {
            return problem(
                "bus.tls.client_cert",
                "client_cert and client_key go together; set both or neither",
            );
        }
    }
    if let tutti_proto::enroll::NatsAuth::CredsFile { path } = &config.bus.auth {
        readable_file("bus.auth.path", path)?;
    }
    Ok(())
}

fn check_http(config: &ServerConfig) -> Result<(), Problem> {
    let http = &config.http;
    if http.body_limit_bytes < 1024 {
        return problem("http.body_limit_bytes", "must be at least 1024");
    }
    match (&http.tls_cert_file, &http.tls_key_file) {
        (Some(cert), Some(key)) => {
            readable_file("http.tls_cert_file", cert)?;
            readable_file("http.tls_key_file", key)?;
        }
        (Some(_), None) => {
            return problem("http.tls_cert_file", "needs http.tls_key_file as well");
        }
        (None, Some(_)) => {
            return problem("http.tls_key_file", "needs http.tls_cert_file as well");
        }
        (None, None) => {}
    }
    for proxy in &http.trusted_proxies {
        IpNet::parse(proxy).map_err(|message| ("http.trusted_proxies".to_string(), message))?;
    }
    Ok(())
}

fn check_enrollment(config: &ServerConfig) -> Result<(), Problem> {
    let enrollment = &config.enrollment;
    for url in &enrollment.nats_urls {
        check_url("enrollment.nats_urls", url, &["nats", "tls", "ws", "wss"])?;
    }
    if let Some(path) = &enrollment.nats_ca_file {
        readable_file("enrollment.nats_ca_file", path)?;
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if !text.contains("-----BEGIN CERTIFICATE-----") {
            return problem(
                "enrollment.nats_ca_file",
                format!("{} holds no PEM certificate", path.display()),
            );
        }
    }
    if let Some(dir) = &enrollment.agent_binary_dir
        && !dir.is_dir()
    {
        return problem(
            "enrollment.agent_binary_dir",
            format!("{} is not a directory", dir.display()),
        );
    }
    Ok(())
}

fn check_limits(config: &ServerConfig) -> Result<(), Problem> {
    if config.projector.batch_size == 0 {
        return problem("projector.batch_size", "must be at least 1");
    }
    if config.storage.replicas == 0 || config.storage.replicas > 5 {
        return problem("storage.replicas", "must be between 1 and 5");
    }
    if config.scheduler.tick_ms < 100 {
        return problem("scheduler.tick_ms", "must be at least 100");
    }
    if !(2..30).contains(&config.scheduler.lease_ttl_secs) {
        return problem("scheduler.lease_ttl_secs", "must be between 2 and 29");
    }
    Ok(())
}

fn check_auth(config: &ServerConfig) -> Result<(), Problem> {
    let auth = &config.auth;
    if auth.session_ttl_secs == 0 {
        return problem("auth.session_ttl_secs", "must be at least 1");
    }
    if auth.session_idle_secs == 0 {
        return problem("auth.session_idle_secs", "must be at least 1");
    }
    if auth.max_failures_per_account == 0 {
        return problem("auth.max_failures_per_account", "must be at least 1");
    }
    if auth.max_failures_per_source == 0 {
        return problem("auth.max_failures_per_source", "must be at least 1");
    }
    Ok(())
}

/// A URL with one of `schemes`, a host, and nothing that could not be a broker or server
/// address. Parsed by hand: the config crate needs no URL parser for this much.
fn check_url(key: &str, url: &str, schemes: &[&str]) -> Result<(), Problem> {
    let expected = schemes
        .iter()
        .map(|scheme| format!("{scheme}://"))
        .collect::<Vec<_>>()
        .join(", ");
    let Some((scheme, rest)) = url.split_once("://") else {
        return problem(
            key,
            format!("{url:?} is not a URL (expected {expected}...)"),
        );
    };
    if !schemes.contains(&scheme) {
        return problem(
            key,
            format!("{url:?} has scheme {scheme:?}; expected {expected}..."),
        );
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit('@').next().unwrap_or_default();
    let host = match host_port.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => host_port.split(':').next().unwrap_or_default(),
    };
    if host.is_empty() || url.chars().any(char::is_whitespace) {
        return problem(key, format!("{url:?} has no host"));
    }
    if let Some(port) = host_port
        .rsplit_once("]:")
        .map(|(_, port)| port)
        .or_else(|| {
            (!host_port.starts_with('['))
                .then(|| host_port.split_once(':').map(|(_, port)| port))
                .flatten()
        })
        && port.parse::<u16>().is_err()
    {
        return problem(key, format!("{url:?} has an invalid port {port:?}"));
    }
    Ok(())
}

fn optional_file(key: &str, path: Option<&Path>) -> Result<(), Problem> {
    match path {
        Some(path) => readable_file(key, path),
        None => Ok(()),
    }
}

/// The file exists, is a file and can be opened for reading.
fn readable_file(key: &str, path: &Path) -> Result<(), Problem> {
    match std::fs::metadata(path) {
        Err(err) => problem(key, format!("cannot read {}: {err}", path.display())),
        Ok(metadata) if !metadata.is_file() => {
            problem(key, format!("{} is not a file", path.display()))
        }
        Ok(_) => match std::fs::File::open(path) {
            Ok(_) => Ok(()),
            Err(err) => problem(key, format!("cannot read {}: {err}", path.display())),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_for_scheme_host_and_port() {
        let schemes = &["nats", "tls"];
        for good in [
            "nats://127.0.0.1:4222",
            "tls://broker.example.com:4222",
            "nats://user:pass@[::1]:4222",
            "nats://broker",
        ] {
            assert!(check_url("k", good, schemes).is_ok(), "{good}");
        }
        for bad in [
            "127.0.0.1:4222",
            "http://broker:4222",
            "nats://:4222",
            "nats://broker:port",
            "nats://bro ker:4222",
        ] {
            assert!(check_url("k", bad, schemes).is_err(), "{bad}");
        }
    }
}
