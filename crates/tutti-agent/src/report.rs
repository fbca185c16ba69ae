//! Builders for what the agent reports through its outbox: events and results.
//!
//! Every message carries a `Nats-Msg-Id` derived from what it describes, so a message
//! published twice (after a crash between publish and outbox delete) is dropped by the
//! broker's de-duplication window, and the server's projector is idempotent beyond it.
//! Results are keyed by (run, agent) — never by command alone, which once made broadcast
//! results overwrite each other in an earlier system.

use jiff::Timestamp;
use tutti_proto::event::{AgentEvent, EventKind};
use tutti_proto::result::{Output, ResultStatus, RunResult, SkipReason};
use tutti_proto::{AgentId, CommandId, ResultId, RunId, subjects};

use crate::state::{OutboxMessage, QueuedCommand, RefusalLimit};

/// The `received` event for a queued command.
pub fn received(agent_id: &AgentId, queued: &QueuedCommand, run_id: &RunId) -> OutboxMessage {
    let kind = EventKind::Received {
        run_id: *run_id,
        command_id: queued.command.command_id,
        stream_seq: queued.stream_seq,
    };
    OutboxMessage {
        progress_of: Some(queued.command.command_id),
        ..event(
            agent_id,
            kind,
            format!("{}:{agent_id}:received", queued.command.command_id),
        )
    }
}

/// The `started` event for a command about to run.
pub fn started(agent_id: &AgentId, queued: &QueuedCommand, run_id: &RunId) -> OutboxMessage {
    let kind = EventKind::Started {
        run_id: *run_id,
        command_id: queued.command.command_id,
    };
    OutboxMessage {
        progress_of: Some(queued.command.command_id),
        ..event(
            agent_id,
            kind,
            format!("{}:{agent_id}:started", queued.command.command_id),
        )
    }
}

/// A refusal of the message at `stream_seq` (bad signature, malformed, misaddressed).
pub fn refused(
    agent_id: &AgentId,
    command_id: Option<CommandId>,
    stream_seq: u64,
    reason: String,
) -> OutboxMessage {
    let msg_id = format!("refused:{agent_id}:{stream_seq}");
    event(
        agent_id,
        EventKind::Refused {
            command_id,
            stream_seq,
            reason,
            suppressed: 0,
        },
        msg_id,
    )
}

/// The summary of `suppressed` refusals that were over `limit` and not reported one by
/// one; `last_seq` is the stream sequence of the last of them.
pub fn refusals_suppressed(
    agent_id: &AgentId,
    suppressed: u64,
    last_seq: u64,
    limit: RefusalLimit,
) -> OutboxMessage {
    let msg_id = format!("refused:{agent_id}:{last_seq}:summary");
    let reason = format!(
        "{suppressed} more commands were refused and not reported one by one (at most {} are, per {:#}); the agent logs each at debug level",
        limit.per_window, limit.window
    );
    event(
        agent_id,
        EventKind::Refused {
            command_id: None,
            stream_seq: last_seq,
            reason,
            suppressed,
        },
        msg_id,
    )
}

/// A fleet-state value that was not applied; reported once per key and content (the
/// message id carries a digest of the refused bytes).
pub fn fleet_value_refused(
    agent_id: &AgentId,
    key: &str,
    value_digest: &str,
    reason: String,
) -> OutboxMessage {
    let msg_id = format!(
        "fleet-refused:{agent_id}:{key}:{}",
        &value_digest[..16.min(value_digest.len())]
    );
    let kind = EventKind::FleetValueRefused {
        key: key.to_string(),
        reason,
    };
    event(agent_id, kind, msg_id)
}

/// A retention gap: sequences `from_seq..=to_seq` can never be read.
pub fn gap(agent_id: &AgentId, from_seq: u64, to_seq: u64) -> OutboxMessage {
    let msg_id = format!("gap:{agent_id}:{from_seq}-{to_seq}");
    event(
        agent_id,
        EventKind::GapDetected { from_seq, to_seq },
        msg_id,
    )
}

/// A result without output: skipped (with its reason) or interrupted.
pub fn bare_result(
    agent_id: &AgentId,
    queued: &QueuedCommand,
    run_id: &RunId,
    status: ResultStatus,
) -> OutboxMessage {
    let finished_at = Timestamp::now();
    result(&RunResult {
        result_id: ResultId::new(run_id, agent_id),
        run_id: *run_id,
        command_id: queued.command.command_id,
        agent_id: agent_id.clone(),
        status,
        exit_code: None,
        stdout: Output::default(),
        stderr: Output::default(),
        delivered_at: Some(queued.received_at),
        started_at: None,
        finished_at,
    })
}

/// A skipped result with its reason.
pub fn skipped(
    agent_id: &AgentId,
    queued: &QueuedCommand,
    run_id: &RunId,
    reason: SkipReason,
) -> OutboxMessage {
    bare_result(agent_id, queued, run_id, ResultStatus::Skipped { reason })
}

/// A result skipped because the command asks for a shell or user this agent does not
/// allow; `refusal` (which value, which setting) is its stderr, where the server shows it.
pub fn not_allowed(
    agent_id: &AgentId,
    queued: &QueuedCommand,
    run_id: &RunId,
    refusal: &str,
) -> OutboxMessage {
    let stderr = format!("tutti-agent: {refusal}\n");
    result(&RunResult {
        result_id: ResultId::new(run_id, agent_id),
        run_id: *run_id,
        command_id: queued.command.command_id,
        agent_id: agent_id.clone(),
        status: ResultStatus::Skipped {
            reason: SkipReason::NotAllowed,
        },
        exit_code: None,
        stdout: Output::default(),
        stderr: Output {
            total_bytes: stderr.len() as u64,
            inline: stderr,
            truncated: None,
            object: None,
        },
        delivered_at: Some(queued.received_at),
        started_at: None,
        finished_at: Timestamp::now(),
    })
}

/// The outbox message for a finished result.
pub fn result(result: &RunResult) -> OutboxMessage {
    OutboxMessage {
        subject: subjects::agent_result(&result.agent_id),
        msg_id: result.result_id.to_string(),
        payload: serde_json::to_vec(result).unwrap_or_default(),
        progress_of: None,
        result_of: Some(result.command_id),
    }
}

fn event(agent_id: &AgentId, kind: EventKind, msg_id: String) -> OutboxMessage {
    let event = AgentEvent {
        agent_id: agent_id.clone(),
        at: Timestamp::now(),
        kind,
    };
    OutboxMessage {
        subject: subjects::agent_event(agent_id),
        msg_id,
        payload: serde_json::to_vec(&event).unwrap_or_default(),
        progress_of: None,
        result_of: None,
    }
}
