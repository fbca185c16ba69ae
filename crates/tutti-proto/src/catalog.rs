//! The resource catalog: one table, in code, of every JetStream stream, KV bucket and
//! object store tutti uses, with its subjects, age limit, size cap and discard policy.
//!
//! These are tutti's own types; `tutti-bus` converts them to async-nats configs,
//! creates the resources at start and reconciles drift. Every size cap is a fixed share
//! of one storage budget ([`CatalogConfig::storage_budget_bytes`]), because JetStream
//! reserves `max_bytes` up front and refuses a resource whose cap does not fit (error
//! 10047): one number sized to the host is easier to get right than fifteen.
//! Stream subjects come from [`crate::subjects`], the single source of subject strings.
//! `docs/protocol.md` carries the table for the default budget; a test keeps it current.

use std::time::Duration;

use crate::subjects;

/// Commands to agents.
pub const COMMANDS_STREAM: &str = "TUTTI_COMMANDS";
/// Run results from agents.
pub const RESULTS_STREAM: &str = "TUTTI_RESULTS";
/// Agent events.
pub const EVENTS_STREAM: &str = "TUTTI_EVENTS";
/// Inventory snapshots.
pub const INVENTORY_STREAM: &str = "TUTTI_INVENTORY";
/// Audit records.
pub const AUDIT_STREAM: &str = "TUTTI_AUDIT";
/// Everything agents follow: configuration layers, group membership, revocations and the
/// freeze, under the key prefixes of [`crate::kv_keys`]. One bucket, so an agent follows
/// all of it through one watcher: one broker consumer per agent instead of one per kind
/// of state, which is what lets a broker hold ten thousand agents.
pub const FLEET_BUCKET: &str = "tutti_fleet";
/// Leader leases.
pub const LEASES_BUCKET: &str = "tutti_leases";
/// Server-side catalogs (jobs, schedules) shared between server replicas.
pub const CATALOG_BUCKET: &str = "tutti_catalog";
/// Run output beyond the inline limit.
pub const OUTPUT_STORE: &str = "tutti_output";
/// Scripts referenced by commands.
pub const SCRIPTS_STORE: &str = "tutti_scripts";
/// Agent release binaries.
pub const RELEASES_STORE: &str = "tutti_releases";

/// Default storage budget: 4 GiB.
pub const DEFAULT_STORAGE_BUDGET_BYTES: u64 = 4 << 30;
/// No resource gets less than 1 MiB, whatever its share.
pub const MIN_RESOURCE_BYTES: u64 = 1 << 20;
/// Largest message on any stream: the NATS default `max_payload`, stated on the stream
/// so a broker configured with a larger payload cannot let one message bloat a stream.
pub const MAX_STREAM_MSG_BYTES: i32 = 1 << 20;
/// Consumers one stream may hold. Every agent keeps one on `TUTTI_COMMANDS` and a watcher
/// on `tutti_fleet`, so this bounds the fleet size. Set explicitly because a
/// stream without its own limit gets the broker's default (1,000 consumers on the pinned
/// nats-server), which stops the 1,001st agent from taking its commands.
pub const MAX_CONSUMERS_PER_STREAM: i32 = 1_000_000;
/// Largest KV value.
pub const MAX_KV_VALUE_BYTES: i32 = 256 << 10;

const DAY: Duration = Duration::from_secs(24 * 60 * 60);
const MINUTE: Duration = Duration::from_secs(60);
/// The age of state buckets (config, groups, fleet, catalog). Their values are state,
/// not history: expiring one would silently change the fleet's behaviour. Every tutti
/// resource still carries an age limit, so state gets ten years, which any write resets.
const STATE_MAX_AGE: Duration = Duration::from_secs(3650 * 24 * 60 * 60);
/// A lease expires unless its holder renews it (a compare-and-set update) within this.
const LEASE_MAX_AGE: Duration = Duration::from_secs(30);
/// How long a revocation stays in `tutti_fleet` (a per-message TTL): longer than the 7 days
/// in which a revoked command can still be delivered. The rest of the bucket is state.
pub const REVOCATION_TTL: Duration = Duration::from_secs(14 * 24 * 60 * 60);

/// Inputs to [`Catalog::tutti`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogConfig {
    /// Bytes of JetStream file storage tutti may reserve, per server. Default 4 GiB.
    pub storage_budget_bytes: u64,
    /// Replicas of every resource: 1 on a single node, 3 on a cluster. Default 1.
    pub replicas: usize,
}

impl Default for CatalogConfig {
    fn default() -> Self {
        CatalogConfig {
            storage_budget_bytes: DEFAULT_STORAGE_BUDGET_BYTES,
            replicas: 1,
        }
    }
}

/// What kind of JetStream resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceKind {
    /// A stream.
    Stream,
    /// A KV bucket (stream `KV_<name>`).
    KeyValue,
    /// An object store (stream `OBJ_<name>`).
    ObjectStore,
}

/// What a full resource does with a new message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Discard {
    /// Drop the oldest messages to make room.
    Old,
    /// Refuse the new message.
    New,
}

/// One stream, KV bucket or object store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// What kind of resource.
    pub kind: ResourceKind,
    /// Stream name, or bucket name for KV and object stores.
    pub name: String,
    /// One line for operators.
    pub description: String,
    /// Stream subjects; empty for KV and object stores.
    pub subjects: Vec<String>,
    /// Age limit; `ZERO` would mean unlimited, which no tutti resource uses.
    pub max_age: Duration,
    /// Size cap, reserved by JetStream up front.
    pub max_bytes: u64,
    /// Messages kept per subject, -1 for unlimited; for KV this is the history.
    pub max_msgs_per_subject: i64,
    /// Largest message, -1 for unlimited.
    pub max_msg_size: i32,
    /// What happens when full.
    pub discard: Discard,
    /// De-duplication window for `Nats-Msg-Id`; `ZERO` leaves the server default.
    pub duplicate_window: Duration,
    /// Replicas.
    pub replicas: usize,
    /// Whether messages may carry their own time to live (`Nats-TTL`, nats-server ≥ 2.11).
    pub allow_msg_ttl: bool,
}

impl Resource {
    /// The name of the stream that holds the resource (`KV_<name>`, `OBJ_<name>`).
    pub fn backing_stream(&self) -> String {
        match self.kind {
            ResourceKind::Stream => self.name.clone(),
            ResourceKind::KeyValue => format!("KV_{}", self.name),
            ResourceKind::ObjectStore => format!("OBJ_{}", self.name),
        }
    }
}

/// Every resource tutti uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    /// Streams first, then KV buckets, then object stores.
    pub resources: Vec<Resource>,
}

impl Catalog {
    /// tutti's resources, sized from `config`.
    pub fn tutti(config: &CatalogConfig) -> Catalog {
        let sizer = Sizer { config };
        let mut resources = streams(&sizer);
        resources.extend(kv_buckets(&sizer));
        resources.extend(object_stores(&sizer));
        Catalog { resources }
    }

    /// The resource named `name` (stream or bucket name).
    pub fn get(&self, name: &str) -> Option<&Resource> {
        self.resources.iter().find(|resource| resource.name == name)
    }

    /// The sum of every `max_bytes`: what JetStream reserves on each server.
    pub fn total_bytes(&self) -> u64 {
        self.resources
            .iter()
            .map(|resource| resource.max_bytes)
            .sum()
    }
}

// Shares of the storage budget, in basis points (1/100 of a percent). They sum to 95%,
// leaving 5% for JetStream's own overhead and for the floors of tiny budgets.
//
// - Output (30%) and results (20%) are the bulk: results inline up to 256 KiB per
//   stream, anything larger goes to the output store, both kept 14 days.
// - Inventory (10%) holds one snapshot per agent every 12 h for 2 days; package lists
//   make a snapshot tens of KiB.
// - Releases (10%) hold a few agent binaries per platform.
// - Commands, events, audit and scripts (5% each) are small messages or few objects.
// - KV buckets (5% together) hold small state values.
const COMMANDS_SHARE: u64 = 500;
const RESULTS_SHARE: u64 = 2000;
const EVENTS_SHARE: u64 = 500;
const INVENTORY_SHARE: u64 = 1000;
const AUDIT_SHARE: u64 = 500;
const FLEET_SHARE: u64 = 350;
const LEASES_SHARE: u64 = 50;
const CATALOG_SHARE: u64 = 100;
const OUTPUT_SHARE: u64 = 3000;
const SCRIPTS_SHARE: u64 = 500;
const RELEASES_SHARE: u64 = 1000;

/// Turns shares into byte caps and stamps the replica count.
struct Sizer<'a> {
    config: &'a CatalogConfig,
}

impl Sizer<'_> {
    fn bytes(&self, share_basis_points: u64) -> u64 {
        let budget = u128::from(self.config.storage_budget_bytes);
        let share = budget * u128::from(share_basis_points) / 10_000;
        u64::try_from(share)
            .unwrap_or(u64::MAX)
            .max(MIN_RESOURCE_BYTES)
    }

    fn replicas(&self) -> usize {
        self.config.replicas.max(1)
    }

    /// A stream with the limits shared by all of tutti's streams.
    fn stream(&self, name: &str, description: &str, subject: String, share: u64) -> Resource {
        Resource {
            kind: ResourceKind::Stream,
            name: name.to_string(),
            description: description.to_string(),
            subjects: vec![subject],
            max_age: DAY,
            max_bytes: self.bytes(share),
            max_msgs_per_subject: -1,
            max_msg_size: MAX_STREAM_MSG_BYTES,
            discard: Discard::Old,
            duplicate_window: 2 * MINUTE,
            replicas: self.replicas(),
            allow_msg_ttl: false,
        }
    }

    /// A KV bucket: refuses writes when full rather than dropping keys.
    fn kv(
        &self,
        name: &str,
        description: &str,
        history: i64,
        max_age: Duration,
        share: u64,
    ) -> Resource {
        Resource {
            kind: ResourceKind::KeyValue,
            name: name.to_string(),
            description: description.to_string(),
            subjects: Vec::new(),
            max_age,
            max_bytes: self.bytes(share),
            max_msgs_per_subject: history,
            max_msg_size: MAX_KV_VALUE_BYTES,
            discard: Discard::New,
            duplicate_window: Duration::ZERO,
            replicas: self.replicas(),
            allow_msg_ttl: false,
        }
    }

    /// An object store: refuses uploads when full, so a flood of output fails the
    /// upload (the agent keeps its capped inline output) instead of evicting others.
    fn object_store(
        &self,
        name: &str,
        description: &str,
        max_age: Duration,
        share: u64,
    ) -> Resource {
        Resource {
            kind: ResourceKind::ObjectStore,
            name: name.to_string(),
            description: description.to_string(),
            subjects: Vec::new(),
            max_age,
            max_bytes: self.bytes(share),
            max_msgs_per_subject: -1,
            max_msg_size: -1,
            discard: Discard::New,
            duplicate_window: Duration::ZERO,
            replicas: self.replicas(),
            allow_msg_ttl: false,
        }
    }
}

/// Streams discard old messages when full: an agent that then resumes below the first
/// sequence detects and reports the gap, which is better than refusing new commands.
fn streams(sizer: &Sizer<'_>) -> Vec<Resource> {
    vec![
        // Every command is kept, not only the latest per subject: two broadcasts sent
        // while a laptop sleeps must both run when it wakes.
        Resource {
            max_age: 7 * DAY,
            ..sizer.stream(
                COMMANDS_STREAM,
                "Signed commands to agents",
                subjects::all_commands(),
                COMMANDS_SHARE,
            )
        },
        // Agents retry from their outbox after reconnecting, so de-duplication by
        // result id must cover a longer window than the default.
        Resource {
            max_age: 14 * DAY,
            duplicate_window: 10 * MINUTE,
            ..sizer.stream(
                RESULTS_STREAM,
                "Run results from agents",
                subjects::all_results(),
                RESULTS_SHARE,
            )
        },
        Resource {
            max_age: 7 * DAY,
            duplicate_window: 10 * MINUTE,
            ..sizer.stream(
                EVENTS_STREAM,
                "Agent events: received, started, refused, gaps",
                subjects::all_events(),
                EVENTS_SHARE,
            )
        },
        Resource {
            max_age: 2 * DAY,
            ..sizer.stream(
                INVENTORY_STREAM,
                "Inventory snapshots from agents",
                subjects::all_inventory(),
                INVENTORY_SHARE,
            )
        },
        // The durable audit log is the server's database; this stream carries records to
        // it and to other replicas, so dropping the oldest when full loses nothing
        // already projected, while refusing new records would block operators.
        Resource {
            max_age: 365 * DAY,
            ..sizer.stream(
                AUDIT_STREAM,
                "Audit records of operator actions",
                subjects::audit(),
                AUDIT_SHARE,
            )
        },
    ]
}

fn kv_buckets(sizer: &Sizer<'_>) -> Vec<Resource> {
    vec![
        // State: a value stays until it is replaced, except revocations, which carry a
        // per-message TTL (`REVOCATION_TTL`).
        Resource {
            allow_msg_ttl: true,
            ..sizer.kv(
                FLEET_BUCKET,
                "What agents follow: configuration, groups, revocations, freeze",
                5,
                STATE_MAX_AGE,
                FLEET_SHARE,
            )
        },
        sizer.kv(
            LEASES_BUCKET,
            "Leader leases (scheduler)",
            1,
            LEASE_MAX_AGE,
            LEASES_SHARE,
        ),
        sizer.kv(
            CATALOG_BUCKET,
            "Server catalogs shared by server replicas",
            5,
            STATE_MAX_AGE,
            CATALOG_SHARE,
        ),
    ]
}

fn object_stores(sizer: &Sizer<'_>) -> Vec<Resource> {
    vec![
        // As long as the results that point at it.
        sizer.object_store(
            OUTPUT_STORE,
            "Run output beyond the inline limit",
            14 * DAY,
            OUTPUT_SHARE,
        ),
        // A cache: the server keeps every script in its database and uploads it again,
        // pinned by sha256, when a command needs one that aged out.
        sizer.object_store(
            SCRIPTS_STORE,
            "Scripts referenced by commands",
            90 * DAY,
            SCRIPTS_SHARE,
        ),
        sizer.object_store(
            RELEASES_STORE,
            "Agent release binaries",
            365 * DAY,
            RELEASES_SHARE,
        ),
    ]
}

#[cfg(test)]
mod tests;
