//! Request/reply from the server to this agent on `tutti.rpc.<id>.<method>`:
//! `ping` answers with a fresh heartbeat, `inventory` with a fresh snapshot (and publishes it),
//! `log-tail` with the agent's recent log lines.
//!
//! Replies go to the requester's inbox; broker permissions allow that through
//! `allow_responses` (see `docs/protocol.md`), so an agent needs no publish right on inboxes.

use std::sync::Arc;

use futures::StreamExt;
use serde::Serialize;
use tokio::sync::Notify;
use tutti_proto::AgentId;
use tutti_proto::subjects::{self, RpcMethod};

use crate::heartbeat::HeartbeatBuilder;
use crate::log_ring::LogRing;
use crate::state::StateHandle;

/// Lines returned by `log-tail`.
const LOG_TAIL_LINES: usize = 200;

/// What the handlers need.
#[derive(Debug, Clone)]
pub struct RpcContext {
    /// This agent.
    pub agent_id: AgentId,
    /// For queue depths in ping replies.
    pub state: StateHandle,
    /// Recent log lines.
    pub log_ring: LogRing,
    /// Poked to publish an inventory snapshot now.
    pub inventory_now: Arc<Notify>,
    /// The trusted signing keys, reported in ping replies.
    pub trust: Arc<crate::trust::TrustStore>,
}

/// Serves requests until `shutdown` fires. The subscription is re-established by the client
/// after reconnects.
pub async fn run(
    client: async_nats::Client,
    context: RpcContext,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let subject = subjects::agent_rpc_all_methods(&context.agent_id);
    let mut requests = match client.subscribe(subject.clone()).await {
        Ok(requests) => requests,
        Err(err) => {
            tracing::warn!(%subject, error = %err, "Cannot subscribe to rpc requests; the agent will not answer pings.");
            return;
        }
    };
    let mut heartbeat =
        HeartbeatBuilder::new(context.agent_id.clone()).with_trust(Arc::clone(&context.trust));
    loop {
        let request = tokio::select! {
            request = requests.next() => request,
            _ = shutdown.changed() => return,
        };
        let Some(request) = request else { return };
        let Some(reply) = request.reply.clone() else {
            continue;
        };
        let method = request
            .subject
            .rsplit('.')
            .next()
            .and_then(RpcMethod::from_token);
        let body = match method {
            Some(RpcMethod::Ping) => to_json(&heartbeat.build(&context.state).await),
            Some(RpcMethod::Inventory) => inventory(&context).await,
            Some(RpcMethod::LogTail) => to_json(&context.log_ring.tail(LOG_TAIL_LINES)),
            None => to_json(
                &serde_json::json!({ "error": format!("unknown method in {}", request.subject) }),
            ),
        };
        let _ = client.publish(reply, body.into()).await;
    }
}

async fn inventory(context: &RpcContext) -> Vec<u8> {
    context.inventory_now.notify_one();
    let agent_id = context.agent_id.clone();
    match tokio::task::spawn_blocking(move || crate::inventory::collect(&agent_id)).await {
        Ok(snapshot) => to_json(&snapshot),
        Err(err) => to_json(&serde_json::json!({ "error": err.to_string() })),
    }
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value)
        .unwrap_or_else(|err| format!("{{\"error\":{:?}}}", err.to_string()).into_bytes())
}
