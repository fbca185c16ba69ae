//! The per-target state machine lives with the API's types ([`tutti_api::state`]); this
//! module turns its transition table into SQL.
//!
//! Every state change is a conditional `UPDATE … WHERE state IN (<predecessors>)` whose
//! list comes from [`predecessors_sql`], so a late or replayed message can never move a
//! target backwards (a `received` after `succeeded` changes nothing).

pub use tutti_api::state::{RunCounts, RunStatus, TargetState};

/// The quoted names of the states that may move to `to`, for an SQL `IN (...)` list;
/// empty when none may.
pub(crate) fn predecessors_sql(to: TargetState) -> String {
    let names: Vec<String> = TargetState::predecessors(to)
        .into_iter()
        .map(|state| format!("'{}'", state.as_str()))
        .collect();
    names.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predecessor_sql_lists_quoted_names() {
        assert_eq!(
            predecessors_sql(TargetState::Running),
            "'queued','delivered'"
        );
        assert_eq!(predecessors_sql(TargetState::Queued), "");
    }
}
