//! `POST /api/v1/enroll`: the endpoint agents call with a token (the contract is
//! `tutti_proto::enroll`). The token is the credential, so this route needs no actor.

use axum::Json;
use axum::extract::State;
use tutti_proto::enroll::{EnrollRequest, EnrollResponse};

use tutti_proto::audit::AuditOutcome;

use crate::actor::ClientAddr;
use crate::api::json::ApiJson;
use crate::app::App;
use crate::error::Result;

#[utoipa::path(post, path = "/api/v1/enroll", request_body = Object, responses((status = 200, description = "The agent's identity (tutti_proto::enroll::EnrollResponse)", body = tutti_proto::enroll::EnrollResponse), (status = 401, body = crate::api::error::ErrorBody), (status = 409, body = crate::api::error::ErrorBody)))]
/// Enrolls an agent.
pub async fn enroll(
    State(app): State<App>,
    ClientAddr(source): ClientAddr,
    ApiJson(request): ApiJson<EnrollRequest>,
) -> Result<Json<EnrollResponse>> {
    let hostname = request.hostname.clone();
    let broker_public_key = request.nats_public_key.clone();
    let response = crate::enroll::enroll(&app, request).await?;
    // The broker identity issued, if any: its public key (never a secret) is the record.
    let broker_identity = response.nats_user_jwt.as_ref().and(broker_public_key);
    let summary = serde_json::json!({
        "hostname": hostname, "start_after_seq": response.start_after_seq,
        "broker_public_key": broker_identity,
    });
    app.auditor
        .unauthenticated(
            &format!("agent:{}", response.agent_id),
            source,
            "agent.enroll",
            format!("agent/{}", response.agent_id),
            summary,
            AuditOutcome::Succeeded,
        )
        .await;
    Ok(Json(response))
}
