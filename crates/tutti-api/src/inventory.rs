//! Inventory: facts, packages and their history.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tutti_proto::AgentId;
use tutti_proto::inventory::{Facts, Package};
use utoipa::ToSchema;

/// The current inventory of one agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AgentInventory {
    /// The agent.
    pub agent_id: AgentId,
    /// When the snapshot was collected.
    pub at: Timestamp,
    /// `TUTTI_INVENTORY` sequence of the snapshot.
    pub stream_seq: u64,
    /// Hardware and OS facts.
    pub facts: Facts,
    /// Installed packages; list them page by page with `list_agent_packages`.
    pub n_packages: u64,
}

/// Added, removed or changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// Present now, absent before.
    Added,
    /// Absent now, present before.
    Removed,
    /// Present in both with a different value.
    Changed,
}

impl ChangeKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Added => "added",
            ChangeKind::Removed => "removed",
            ChangeKind::Changed => "changed",
        }
    }

    pub fn parse(name: &str) -> Option<ChangeKind> {
        [ChangeKind::Added, ChangeKind::Removed, ChangeKind::Changed]
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }
}

/// A package or a fact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ItemType {
    /// An installed package, named `manager/name/arch`.
    Package,
    /// A field of [`Facts`], named by the field.
    Fact,
}

impl ItemType {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemType::Package => "package",
            ItemType::Fact => "fact",
        }
    }

    pub fn parse(name: &str) -> Option<ItemType> {
        [ItemType::Package, ItemType::Fact]
            .into_iter()
            .find(|item| item.as_str() == name)
    }
}

/// One recorded inventory change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InventoryChange {
    /// The agent.
    pub agent_id: AgentId,
    /// Collection time of the snapshot that showed the change.
    pub at: Timestamp,
    /// Its stream sequence.
    pub stream_seq: u64,
    /// Added, removed or changed.
    pub kind: ChangeKind,
    /// Package or fact.
    pub item_type: ItemType,
    /// `manager/name/arch` for a package, the field name for a fact.
    pub name: String,
    /// Value before: a version, or the fact as JSON.
    pub old_value: Option<String>,
    /// Value after.
    pub new_value: Option<String>,
}

/// One agent that has a package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PackageHit {
    /// The agent.
    pub agent_id: AgentId,
    /// Its hostname.
    pub hostname: String,
    /// The package.
    pub package: Package,
}

/// An agent's current inventory and a page of its packages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct InventoryView {
    /// Facts and package count.
    pub inventory: AgentInventory,
    /// A page of packages by name.
    pub packages: crate::page::Paged<Package>,
}
