//! Inventory snapshots on `tutti.agent.<id>.inventory` (stream `TUTTI_INVENTORY`):
//! hardware, OS and installed packages of one machine.
//!
//! The agent sends a full snapshot every `inventory_interval_secs` and on request over
//! the `inventory` rpc. Facts a platform cannot provide are left at their defaults.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::ids::AgentId;

/// One full snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventorySnapshot {
    /// The reporting agent; must match the subject's agent id.
    pub agent_id: AgentId,
    /// When it was collected.
    pub at: Timestamp,
    /// Hardware and OS facts.
    #[serde(default)]
    pub facts: Facts,
    /// Installed packages.
    #[serde(default)]
    pub packages: Vec<Package>,
}

/// Hardware and OS facts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct Facts {
    /// OS name, e.g. `Ubuntu`.
    pub os_name: String,
    /// OS version, e.g. `24.04`.
    pub os_version: String,
    /// Kernel version.
    pub kernel: String,
    /// CPU architecture, e.g. `x86_64`.
    pub arch: String,
    /// Hostname.
    pub hostname: String,
    /// CPU model name.
    pub cpu_model: String,
    /// Logical CPU cores.
    pub cpu_cores: u32,
    /// Physical memory.
    pub memory_bytes: u64,
    /// Mounted file systems.
    pub disks: Vec<Disk>,
    /// Network interfaces.
    pub interfaces: Vec<Interface>,
    /// Seconds since boot.
    pub uptime_secs: u64,
    /// Local user accounts with a login shell.
    pub users: Vec<String>,
}

/// One mounted file system.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct Disk {
    /// Mount point.
    pub mount: String,
    /// File system type.
    pub fs: String,
    /// Capacity.
    pub total_bytes: u64,
    /// Used space.
    pub used_bytes: u64,
}

/// One network interface.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct Interface {
    /// Interface name, e.g. `eth0`.
    pub name: String,
    /// MAC address, lowercase with colons.
    pub mac: String,
    /// IP addresses with prefix length, e.g. `10.0.0.5/24`.
    pub addresses: Vec<String>,
}

/// One installed package.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct Package {
    /// Package name.
    pub name: String,
    /// Installed version.
    pub version: String,
    /// Package architecture.
    pub arch: String,
    /// Package manager, e.g. `dpkg`, `rpm`, `brew`, `winget`.
    pub manager: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_ignores_unknown_fields() {
        let snapshot = InventorySnapshot {
            agent_id: AgentId::parse("web-01").unwrap(),
            at: "2024-05-01T12:00:00Z".parse().unwrap(),
            facts: Facts {
                os_name: "Ubuntu".to_string(),
                cpu_cores: 8,
                disks: vec![Disk {
                    mount: "/".to_string(),
                    fs: "ext4".to_string(),
                    total_bytes: 100,
                    used_bytes: 40,
                }],
                interfaces: vec![Interface {
                    name: "eth0".to_string(),
                    mac: "00:11:22:33:44:55".to_string(),
                    addresses: vec!["10.0.0.5/24".to_string()],
                }],
                users: vec!["alice".to_string()],
                ..Facts::default()
            },
            packages: vec![Package {
                name: "curl".to_string(),
                version: "8.5.0".to_string(),
                arch: "amd64".to_string(),
                manager: "dpkg".to_string(),
            }],
        };
        let mut json = serde_json::to_value(&snapshot).unwrap();
        let back: InventorySnapshot = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back, snapshot);
        json["facts"]["gpu"] = "none".into();
        json["packages"][0]["license"] = "MIT".into();
        json["collected_in_ms"] = 12.into();
        let back: InventorySnapshot = serde_json::from_value(json).unwrap();
        assert_eq!(back, snapshot);
    }
}
