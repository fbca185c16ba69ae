//! Pagination and sort direction shared by every list query.
//!
//! Lists are never unbounded: a [`Page`] asks for at most [`MAX_PAGE_LIMIT`] rows, and
//! every list answers with a [`Paged`] that carries the total so a dashboard can draw its
//! pager. Pages are limit/offset, which is exact for the sizes the dashboard browses; a
//! consumer that walks a whole table (an export) should filter by time instead.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The most rows one page may hold; larger limits are clamped.
pub const MAX_PAGE_LIMIT: u32 = 500;

/// The rows a list query asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Page {
    /// Rows per page, clamped to 1..=[`MAX_PAGE_LIMIT`].
    pub limit: u32,
    /// Rows to skip.
    pub offset: u64,
}

impl Page {
    /// A page of `limit` rows after skipping `offset`.
    pub fn new(limit: u32, offset: u64) -> Self {
        Page { limit, offset }
    }

    /// The first `limit` rows.
    pub fn first(limit: u32) -> Self {
        Page::new(limit, 0)
    }

    /// The limit actually applied.
    pub fn effective_limit(self) -> u32 {
        self.limit.clamp(1, MAX_PAGE_LIMIT)
    }
}

impl Default for Page {
    /// The first 50 rows.
    fn default() -> Self {
        Page::first(50)
    }
}

/// One page of a list, with the number of rows matching the filter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Paged<T> {
    /// The rows of this page.
    pub items: Vec<T>,
    /// Rows matching the filter across all pages.
    pub total: u64,
}

/// Ascending or descending.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SortDir {
    /// Smallest first.
    #[default]
    Asc,
    /// Largest first.
    Desc,
}
