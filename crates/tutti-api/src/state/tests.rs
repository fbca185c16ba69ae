//! The transition table of [`TargetState`], written out pair by pair so a change to
//! `can_move` shows up as a diff of this file.

use super::TargetState::{self, *};

/// Every allowed `(from, to)`; every other pair must be refused.
const ALLOWED: &[(TargetState, &[TargetState])] = &[
    (
        Queued,
        &[
            Delivered,
            Running,
            Succeeded,
            Failed,
            TimedOut,
            Killed,
            Skipped,
            Interrupted,
            Missed,
            Expired,
        ],
    ),
    (
        Delivered,
        &[
            Running,
            Succeeded,
            Failed,
            TimedOut,
            Killed,
            Skipped,
            Interrupted,
            Missed,
        ],
    ),
    (
        Running,
        &[Succeeded, Failed, TimedOut, Killed, Skipped, Interrupted],
    ),
    (Succeeded, &[]),
    (Failed, &[]),
    (TimedOut, &[]),
    (Killed, &[]),
    (Skipped, &[]),
    (Interrupted, &[]),
    (
        Missed,
        &[Succeeded, Failed, TimedOut, Killed, Skipped, Interrupted],
    ),
    (
        Expired,
        &[Succeeded, Failed, TimedOut, Killed, Skipped, Interrupted],
    ),
];

#[test]
fn every_pair_of_states() {
    assert_eq!(ALLOWED.len(), TargetState::ALL.len());
    for (from, allowed) in ALLOWED {
        for to in TargetState::ALL {
            assert_eq!(
                TargetState::can_move(*from, to),
                allowed.contains(&to),
                "{} -> {}",
                from.as_str(),
                to.as_str()
            );
        }
    }
}

#[test]
fn no_state_moves_to_itself_or_back_to_queued() {
    for state in TargetState::ALL {
        assert!(!TargetState::can_move(state, state), "{}", state.as_str());
        assert!(!TargetState::can_move(state, Queued), "{}", state.as_str());
    }
}

#[test]
fn names_round_trip() {
    for state in TargetState::ALL {
        assert_eq!(TargetState::parse(state.as_str()), Some(state));
    }
    assert_eq!(TargetState::parse("pending"), None);
}
