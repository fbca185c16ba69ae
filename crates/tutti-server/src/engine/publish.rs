//! Signing and publishing commands into `TUTTI_COMMANDS`.
//!
//! Each message is a fresh [`Command`] whose signed `subject` is the subject it is
//! published on, with its command id as `Nats-Msg-Id` so a retried publish is
//! de-duplicated by the stream. All publishes of one call are sent first and their acks
//! awaited afterwards: a run on a thousand agents costs one round trip of latency, not a
//! thousand.

use std::future::IntoFuture as _;
use std::time::Duration;

use async_nats::HeaderMap;
use jiff::{SignedDuration, Timestamp};
use tutti_proto::catalog::{COMMANDS_STREAM, Catalog};
use tutti_proto::command::{Command, CommandBody};
use tutti_proto::sign::SignedCommand;
use tutti_proto::{CommandId, RunId};
use tutti_store::{CommandPublished, Covers};

use crate::app::App;
use crate::engine::targets::Outgoing;
use crate::error::{Error, Result};

/// Signs `body` once per outgoing subject and publishes; returns what the broker stored.
pub(crate) async fn publish_all(
    app: &App,
    run_id: RunId,
    outgoing: &[Outgoing],
    body: &CommandBody,
) -> Result<Vec<CommandPublished>> {
    let messages: Vec<(Outgoing, CommandId)> = outgoing
        .iter()
        .map(|message| (message.clone(), CommandId::new(ulid::Ulid::new())))
        .collect();
    publish_with_ids(app, run_id, &messages, body).await
}

/// [`publish_all`] with command ids chosen by the caller: a rollout stores each target's
/// id when it releases it, so a publish repeated after a crash carries the same id and is
/// dropped by the stream's de-duplication (and by the agent, which takes an id in once).
pub(crate) async fn publish_with_ids(
    app: &App,
    run_id: RunId,
    messages: &[(Outgoing, CommandId)],
    body: &CommandBody,
) -> Result<Vec<CommandPublished>> {
    let issued_at = Timestamp::now();
    let expires_at = issued_at.checked_add(command_lifetime(app)).ok();
    let mut pending = Vec::with_capacity(messages.len());
    for (message, command_id) in messages {
        let command = Command {
            command_id: *command_id,
            subject: message.subject.clone(),
            issued_at,
            expires_at,
            body: body.clone(),
        };
        let ack = send(app, &command).await?;
        pending.push((command, message.covers.clone(), ack));
    }
    let mut published = Vec::with_capacity(pending.len());
    for (command, covers, ack) in pending {
        let stream_seq = await_ack(app, ack).await?;
        app.metrics
            .commands_published
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        published.push(record(run_id, command, covers, stream_seq, issued_at));
    }
    Ok(published)
}

/// How long a command stays acceptable: as long as the stream keeps it. Past that an
/// agent would detect a gap anyway; a captured command stays useless after it.
fn command_lifetime(app: &App) -> SignedDuration {
    let catalog = Catalog::tutti(&app.config.catalog());
    let max_age = catalog
        .get(COMMANDS_STREAM)
        .map_or(Duration::from_secs(7 * 24 * 3600), |resource| {
            resource.max_age
        });
    SignedDuration::try_from(max_age).unwrap_or(SignedDuration::from_hours(7 * 24))
}

async fn send(
    app: &App,
    command: &Command,
) -> Result<async_nats::jetstream::context::PublishAckFuture> {
    let signed = SignedCommand::sign(command, app.keys.current().signing());
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Msg-Id", command.command_id.to_string().as_str());
    let timeout = app.bus.request_timeout();
    let publish = app.bus.jetstream().publish_with_headers(
        command.subject.clone(),
        headers,
        signed.to_bytes().into(),
    );
    tutti_bus::bounded("command publish", timeout, publish)
        .await
        .map_err(Error::from)
}

async fn await_ack(
    app: &App,
    ack: async_nats::jetstream::context::PublishAckFuture,
) -> Result<u64> {
    let timeout = app.bus.request_timeout();
    let ack = tutti_bus::bounded("command publish ack", timeout, ack.into_future())
        .await
        .map_err(Error::from)?;
    Ok(ack.sequence)
}

fn record(
    run_id: RunId,
    command: Command,
    covers: Covers,
    stream_seq: u64,
    published_at: Timestamp,
) -> CommandPublished {
    CommandPublished {
        run_id,
        subject: command.subject,
        command_id: command.command_id,
        stream_seq,
        published_at,
        covers,
    }
}
