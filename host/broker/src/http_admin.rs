//! The admin routes, the only ones that need an admin credential (HTTP
//! Basic, a user with `admin = true` in the users file):
//!
//! - `POST /v1/tokens/reverse` with `{"tokens": ["tok_…", …]}` looks up
//!   what tokens stand for. The call is written to the audit log before
//!   anything is answered, and refused if it cannot be.
//! - `GET /v1/audit?limit=N` reads the audit log, newest first.
//!
//! A node without a users file has no admins, so both are always refused
//! there (403): the vault is never open to whoever reaches the port.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde::Deserialize;
use serde_json::json;
use sluice_core::TenantId;

use crate::auth::AdminRefusal;
use crate::http_api::method_not_allowed;
use crate::http_caller::basic_credentials;
use crate::http_util::{ApiError, Resp, json, param, parse_json, query, read_body_limited};
use crate::node::Node;
use crate::vault::{AuditRecord, audit, audit_log};

/// Tokens one reversal may ask for.
const REVERSE_TOKENS_MAX: usize = 1000;
/// Largest reversal request body.
const REVERSE_BODY_BYTES_MAX: u64 = 256 << 10;
/// Audit records one read returns at most.
const AUDIT_READ_MAX: usize = 1000;

pub async fn route(
    node: &Arc<Node>,
    tenant: &TenantId,
    method: Method,
    segments: &[&str],
    req: Request<Incoming>,
) -> Result<Resp, ApiError> {
    match (method, segments) {
        (Method::POST, ["v1", "tokens", "reverse"]) => reverse(node, tenant, req).await,
        (Method::GET, ["v1", "audit"]) => {
            admin(node, &req).await?;
            let q = query(req.uri().query());
            let limit = param::<usize>(&q, "limit")?
                .unwrap_or(100)
                .min(AUDIT_READ_MAX);
            let records = audit_log(&node.meta, limit)?;
            Ok(json(StatusCode::OK, &json!({"records": records})))
        }
        (_, ["v1", "tokens", "reverse"] | ["v1", "audit"]) => Err(method_not_allowed()),
        _ => Err(ApiError::not_found(
            "not_found",
            format!("no route for /{}", segments.join("/")),
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReverseDoc {
    tokens: Vec<String>,
}

async fn reverse(
    node: &Arc<Node>,
    tenant: &TenantId,
    req: Request<Incoming>,
) -> Result<Resp, ApiError> {
    let user = admin(node, &req).await?;
    let (parts, body) = req.into_parts();
    let body = read_body_limited(
        &parts.headers,
        body,
        REVERSE_BODY_BYTES_MAX,
        "reverse_body_bytes_max",
    )
    .await?;
    let doc: ReverseDoc = parse_json(&body)?;
    if doc.tokens.is_empty() || doc.tokens.len() > REVERSE_TOKENS_MAX {
        return Err(ApiError::bad_request(
            "invalid",
            format!("`tokens` must hold 1 to {REVERSE_TOKENS_MAX} tokens"),
        ));
    }
    let vault = node.vault(tenant)?;
    let found = vault.reverse(&doc.tokens)?;
    // Logged before anything is answered: no record, no answer.
    audit(
        &node.meta,
        &AuditRecord {
            at_ms: crate::stream::now_ms(),
            user,
            tenant: tenant.to_string(),
            action: "tokens.reverse".into(),
            tokens: doc.tokens.clone(),
            found: found.iter().flatten().count(),
        },
    )
    .await?;
    let results: Vec<_> = doc
        .tokens
        .iter()
        .zip(found)
        .map(|(t, e)| match e {
            Some(e) => json!({"token": t, "found": true, "domain": e.domain,
                              "value": e.value, "created_ms": e.created_ms}),
            None => json!({"token": t, "found": false}),
        })
        .collect();
    Ok(json(StatusCode::OK, &json!({"results": results})))
}

/// The admin's name, from the request's Basic credentials.
async fn admin(node: &Arc<Node>, req: &Request<Incoming>) -> Result<String, ApiError> {
    let (user, password) = basic_credentials(req.headers()).unzip();
    let auth = node.auth.clone();
    // Argon2 is slow on purpose: off the I/O threads.
    let outcome = tokio::task::spawn_blocking(move || {
        auth.authenticate_admin(user.as_deref(), password.as_deref())
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    outcome.map_err(|r| match r {
        AdminRefusal::BadCredentials => ApiError {
            challenge: Some(crate::http_caller::CHALLENGE),
            ..ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "this call needs the Basic credentials of an admin user",
            )
        },
        AdminRefusal::NotAdmin => ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this call is for admin users only (`admin = true` in the users file)",
        ),
    })
}
