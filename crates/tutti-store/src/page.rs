//! Pagination: the types are the API's ([`tutti_api::page`]); this module turns them into
//! SQL.

pub use tutti_api::page::{MAX_PAGE_LIMIT, Page, Paged, SortDir};

/// `LIMIT` and `OFFSET` of a page: the limit clamped to 1..=[`MAX_PAGE_LIMIT`], the offset
/// saturated at `i64::MAX` (SQLite's integer).
pub(crate) fn page_sql(page: Page) -> (i64, i64) {
    let offset = i64::try_from(page.offset).unwrap_or(i64::MAX);
    (i64::from(page.effective_limit()), offset)
}

/// The SQL keyword of a sort direction.
pub(crate) fn dir_sql(dir: SortDir) -> &'static str {
    match dir {
        SortDir::Asc => "ASC",
        SortDir::Desc => "DESC",
    }
}
