//! Inventory: the current snapshot per agent and the history of changes.

use crate::page::Page;
pub use tutti_api::inventory::{AgentInventory, ChangeKind, InventoryChange, ItemType, PackageHit};

/// Fleet-wide package search.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackageQuery {
    /// Exact package name.
    pub name: String,
    /// Exact version, when given (`name@version` in the API).
    pub version: Option<String>,
    /// Which rows.
    pub page: Page,
}
