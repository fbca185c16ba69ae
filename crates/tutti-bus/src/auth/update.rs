//! Pushing a new account JWT to a running broker, the way a revocation takes effect
//! without a restart.
//!
//! The request goes to `$SYS.REQ.CLAIMS.UPDATE`, which every server with a `full` resolver
//! answers (the per-account `$SYS.REQ.ACCOUNT.<id>.CLAIMS.UPDATE` is answered too; the
//! generic one needs no account id in the subject). Only a user of the system account can
//! publish there ([`BrokerAuth::mint_system_user_creds`](super::BrokerAuth)). The broker
//! stores the JWT, applies it (closing connections of newly revoked users) and only then
//! replies, so a successful return means the update is in force on that server.

use std::time::Duration;

use async_nats::RequestErrorKind;
use serde::Deserialize;

use crate::error::BusError;

/// The subject a `full` resolver takes account JWT updates on.
pub const CLAIM_UPDATE_SUBJECT: &str = "$SYS.REQ.CLAIMS.UPDATE";

/// Why a claim update did not take effect.
#[derive(Debug, thiserror::Error)]
pub enum ClaimUpdateError {
    /// The broker is unreachable, nobody answered (not a system account connection, or no
    /// `full` resolver), or the answer did not come within the bound.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// The broker answered and refused the JWT.
    #[error("broker refused the account JWT for {account} ({code}): {description}")]
    Refused {
        account: String,
        code: i64,
        description: String,
    },
}

/// Sends `account_jwt` to the broker over a system account connection and waits at most
/// `timeout` for its verdict.
pub async fn push_account_jwt(
    client: &async_nats::Client,
    account_jwt: &str,
    timeout: Duration,
) -> Result<(), ClaimUpdateError> {
    let request = client.request(CLAIM_UPDATE_SUBJECT, account_jwt.to_owned().into());
    let reply = match tokio::time::timeout(timeout, request).await {
        Ok(reply) => reply.map_err(|error| request_error(error, timeout))?,
        Err(_) => return Err(timed_out(timeout).into()),
    };
    verdict(&reply.payload)
}

/// The broker's reply: `{"server":{..},"data":{"account","code":200,"message":"jwt updated"}}`
/// on success, `{"server":{..},"error":{"account","code":500,"description"}}` on refusal.
#[derive(Debug, Deserialize)]
struct ClaimUpdateReply {
    #[serde(default)]
    data: Option<serde_json::Value>,
    #[serde(default)]
    error: Option<ClaimUpdateRefusal>,
}

#[derive(Debug, Deserialize)]
struct ClaimUpdateRefusal {
    #[serde(default)]
    account: String,
    #[serde(default)]
    code: i64,
    #[serde(default)]
    description: String,
}

fn verdict(payload: &[u8]) -> Result<(), ClaimUpdateError> {
    let reply: ClaimUpdateReply = serde_json::from_slice(payload)
        .map_err(|err| BusError::Other(format!("malformed claim update reply: {err}")))?;
    match (reply.error, reply.data) {
        (Some(refusal), _) => Err(ClaimUpdateError::Refused {
            account: refusal.account,
            code: refusal.code,
            description: refusal.description,
        }),
        (None, Some(_)) => Ok(()),
        (None, None) => {
            Err(BusError::Other("claim update reply has neither data nor error".into()).into())
        }
    }
}

fn request_error(error: async_nats::RequestError, timeout: Duration) -> BusError {
    match error.kind() {
        RequestErrorKind::NoResponders => BusError::Unavailable(
            "no broker answers claim updates (is this a system account connection to a broker \
             with a full resolver?)"
                .to_string(),
        ),
        RequestErrorKind::TimedOut => timed_out(timeout),
        _ => BusError::Other(error.to_string()),
    }
}

fn timed_out(after: Duration) -> BusError {
    BusError::Timeout {
        what: "claim update".to_string(),
        after,
    }
}
