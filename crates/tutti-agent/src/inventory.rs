//! Built-in inventory: what this machine is (OS, kernel, CPU, memory, disks, network, users)
//! and what is installed on it (dpkg, rpm or apk packages, whichever are present).
//!
//! Collection runs on the blocking pool: it reads `/proc` and `/etc`, calls `statvfs`, and
//! runs the package managers' query tools, which can take a second on a big machine. The
//! snapshot is published to `TUTTI_INVENTORY` at start, every `inventory_interval_secs`, and
//! on request (the `inventory` rpc); the server diffs consecutive snapshots. Facts a
//! platform cannot provide stay at their defaults; the Linux readers live behind `cfg`.

use std::process::Command;
use std::time::Duration;

use jiff::Timestamp;
use tutti_proto::inventory::{Disk, Facts, Interface, InventorySnapshot, Package};
use tutti_proto::{AgentId, subjects};

/// Collects a full snapshot (blocking).
pub fn collect(agent_id: &AgentId) -> InventorySnapshot {
    InventorySnapshot {
        agent_id: agent_id.clone(),
        at: Timestamp::now(),
        facts: platform::facts(),
        packages: packages(),
    }
}

/// Publishes snapshots at start and then every interval or when `on_demand` is poked,
/// until `shutdown` fires. The interval follows the fleet view: a changed interval counts
/// from the last snapshot at once, not after the old interval ran out. Publishing is
/// acknowledged but not retried from an outbox: the next snapshot supersedes a lost one.
pub async fn run(
    js: async_nats::jetstream::Context,
    agent_id: AgentId,
    mut fleet: tokio::sync::watch::Receiver<crate::fleet::FleetView>,
    on_demand: std::sync::Arc<tokio::sync::Notify>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let subject = subjects::agent_inventory(&agent_id);
    let mut collect_now = true;
    let mut last = tokio::time::Instant::now();
    loop {
        if collect_now {
            let id = agent_id.clone();
            if let Ok(snapshot) = tokio::task::spawn_blocking(move || collect(&id)).await {
                publish(&js, &subject, &snapshot).await;
            }
            last = tokio::time::Instant::now();
        }
        let interval =
            Duration::from_secs(fleet.borrow_and_update().config.inventory_interval_secs);
        tokio::select! {
            _ = tokio::time::sleep_until(last + interval) => collect_now = true,
            _ = on_demand.notified() => collect_now = true,
            Ok(()) = fleet.changed() => collect_now = false,
            _ = shutdown.changed() => return,
        }
    }
}

async fn publish(js: &async_nats::jetstream::Context, subject: &str, snapshot: &InventorySnapshot) {
    let Ok(payload) = serde_json::to_vec(snapshot) else {
        return;
    };
    let acked = match js.publish(subject.to_string(), payload.into()).await {
        Ok(ack) => tokio::time::timeout(Duration::from_secs(10), ack)
            .await
            .ok()
            .and_then(Result::ok),
        Err(_) => None,
    };
    match acked {
        Some(_) => tracing::debug!(packages = snapshot.packages.len(), "Inventory published."),
        None => tracing::info!("Inventory could not be published; the next snapshot will be."),
    }
}

/// Installed packages from every package manager present.
fn packages() -> Vec<Package> {
    let mut packages = Vec::new();
    packages.extend(query(
        "dpkg",
        &[
            "dpkg-query",
            "-W",
            "-f",
            "${Package}\t${Version}\t${Architecture}\n",
        ],
    ));
    packages.extend(query(
        "rpm",
        &[
            "rpm",
            "-qa",
            "--qf",
            "%{NAME}\t%{VERSION}-%{RELEASE}\t%{ARCH}\n",
        ],
    ));
    packages.extend(apk());
    packages.sort_by(|a, b| (&a.manager, &a.name, &a.arch).cmp(&(&b.manager, &b.name, &b.arch)));
    packages
}

fn query(manager: &str, argv: &[&str]) -> Vec<Package> {
    let Some(stdout) = run_tool(argv) else {
        return Vec::new();
    };
    stdout
        .lines()
        .filter_map(|line| {
            let mut fields = line.split('\t');
            let name = fields.next()?.trim();
            let version = fields.next()?.trim();
            let arch = fields.next().unwrap_or("").trim();
            (!name.is_empty()).then(|| Package {
                name: name.to_string(),
                version: version.to_string(),
                arch: arch.to_string(),
                manager: manager.to_string(),
            })
        })
        .collect()
}

/// `apk info -v` prints `name-version-rrelease`; the version starts at the last-but-one dash.
fn apk() -> Vec<Package> {
    let Some(stdout) = run_tool(&["apk", "info", "-v"]) else {
        return Vec::new();
    };
    stdout
        .lines()
        .filter_map(|line| {
            let (rest, release) = line.trim().rsplit_once('-')?;
            let (name, version) = rest.rsplit_once('-')?;
            Some(Package {
                name: name.to_string(),
                version: format!("{version}-{release}"),
                arch: String::new(),
                manager: "apk".to_string(),
            })
        })
        .collect()
}

fn run_tool(argv: &[&str]) -> Option<String> {
    let (program, args) = argv.split_first()?;
    let output = Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

#[cfg(target_os = "linux")]
mod platform {
    use std::collections::BTreeMap;
    use std::fs;

    use super::*;

    pub(super) fn facts() -> Facts {
        let os_release = os_release();
        let uname = nix::sys::utsname::uname().ok();
        let text = |value: Option<&std::ffi::OsStr>| {
            value
                .map(|v| v.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        let (cpu_model, cpu_cores) = cpu();
        Facts {
            os_name: os_release
                .get("NAME")
                .cloned()
                .unwrap_or_else(|| "Linux".into()),
            os_version: os_release
                .get("VERSION_ID")
                .or(os_release.get("VERSION"))
                .cloned()
                .unwrap_or_default(),
            kernel: text(uname.as_ref().map(|u| u.release())),
            arch: std::env::consts::ARCH.to_string(),
            hostname: text(uname.as_ref().map(|u| u.nodename())),
            cpu_model,
            cpu_cores,
            memory_bytes: meminfo_total(),
            disks: disks(),
            interfaces: interfaces(),
            uptime_secs: uptime(),
            users: users(),
        }
    }

    fn os_release() -> BTreeMap<String, String> {
        let text = fs::read_to_string("/etc/os-release").unwrap_or_default();
        text.lines()
            .filter_map(|line| line.split_once('='))
            .map(|(key, value)| (key.to_string(), value.trim_matches('"').to_string()))
            .collect()
    }

    fn cpu() -> (String, u32) {
        let text = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let model = text
            .lines()
            .find_map(|line| {
                line.strip_prefix("model name")
                    .and_then(|rest| rest.split_once(':'))
            })
            .map(|(_, model)| model.trim().to_string())
            .unwrap_or_default();
        let cores = std::thread::available_parallelism()
            .map(|n| n.get() as u32)
            .unwrap_or(1);
        (model, cores)
    }

    fn meminfo_total() -> u64 {
        let text = fs::read_to_string("/proc/meminfo").unwrap_or_default();
        text.lines()
            .find_map(|line| line.strip_prefix("MemTotal:"))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map(|kib| kib * 1024)
            .unwrap_or(0)
    }

    /// Real file systems from `/proc/mounts` (pseudo file systems left out).
    fn disks() -> Vec<Disk> {
        let text = fs::read_to_string("/proc/mounts").unwrap_or_default();
        let mut disks = Vec::new();
        for line in text.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [device, mount, fs_type, ..] = fields[..] else {
                continue;
            };
            if !device.starts_with('/') || disks.iter().any(|d: &Disk| d.mount == mount) {
                continue;
            }
            let Ok(stat) = nix::sys::statvfs::statvfs(mount) else {
                continue;
            };
            let block = stat.fragment_size();
            let total = stat.blocks() * block;
            let free = stat.blocks_free() * block;
            disks.push(Disk {
                mount: mount.into(),
                fs: fs_type.into(),
                total_bytes: total,
                used_bytes: total.saturating_sub(free),
            });
        }
        disks
    }

    fn interfaces() -> Vec<Interface> {
        let Ok(addresses) = nix::ifaddrs::getifaddrs() else {
            return Vec::new();
        };
        let mut by_name: BTreeMap<String, Interface> = BTreeMap::new();
        for address in addresses {
            let entry = by_name
                .entry(address.interface_name.clone())
                .or_insert_with(|| Interface {
                    name: address.interface_name.clone(),
                    ..Interface::default()
                });
            let Some(storage) = address.address else {
                continue;
            };
            if let Some(link) = storage.as_link_addr().and_then(|link| link.addr()) {
                entry.mac = link
                    .iter()
                    .map(|byte| format!("{byte:02x}"))
                    .collect::<Vec<_>>()
                    .join(":");
            } else if let Some(v4) = storage.as_sockaddr_in() {
                entry.addresses.push(v4.ip().to_string());
            } else if let Some(v6) = storage.as_sockaddr_in6() {
                entry.addresses.push(v6.ip().to_string());
            }
        }
        by_name.into_values().collect()
    }

    fn uptime() -> u64 {
        let text = fs::read_to_string("/proc/uptime").unwrap_or_default();
        text.split_whitespace()
            .next()
            .and_then(|secs| secs.parse::<f64>().ok())
            .map(|secs| secs as u64)
            .unwrap_or(0)
    }

    fn users() -> Vec<String> {
        let Some(stdout) = run_tool(&["who"]) else {
            return Vec::new();
        };
        let mut users: Vec<String> = stdout
            .lines()
            .filter_map(|line| line.split_whitespace().next())
            .map(String::from)
            .collect();
        users.sort();
        users.dedup();
        users
    }
}

#[cfg(not(target_os = "linux"))]
mod platform {
    use super::*;

    pub(super) fn facts() -> Facts {
        Facts {
            arch: std::env::consts::ARCH.to_string(),
            ..Facts::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_of_this_machine_has_the_basics() {
        let snapshot = collect(&AgentId::parse("test").unwrap());
        let facts = &snapshot.facts;
        assert!(
            !facts.kernel.is_empty() && !facts.hostname.is_empty(),
            "{facts:?}"
        );
        assert!(facts.cpu_cores >= 1 && facts.memory_bytes > 0, "{facts:?}");
        assert!(
            facts.disks.iter().any(|disk| disk.total_bytes > 0),
            "{facts:?}"
        );
        assert!(facts.interfaces.iter().any(|i| i.name == "lo"), "{facts:?}");
        // This machine is Debian: dpkg lists packages, and dpkg itself among them.
        if std::path::Path::new("/usr/bin/dpkg-query").exists() {
            assert!(
                snapshot
                    .packages
                    .iter()
                    .any(|p| p.name == "dpkg" && p.manager == "dpkg")
            );
        }
    }
}
