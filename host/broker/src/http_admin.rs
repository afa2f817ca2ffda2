//! The vault's routes, for admins (HTTP Basic, a user with `admin = true`
//! in the users file; [`crate::http_caller`] has authenticated the call):
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

use crate::http_api::method_not_allowed;
use crate::http_caller::Caller;
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
    caller: &Caller,
    method: Method,
    segments: &[&str],
    req: Request<Incoming>,
) -> Result<Resp, ApiError> {
    match (method, segments) {
        (Method::POST, ["v1", "tokens", "reverse"]) => reverse(node, tenant, caller, req).await,
        (Method::GET, ["v1", "audit"]) => {
            admin(node, caller)?;
            let q = query(req.uri().query());
            let limit = param::<usize>(&q, "limit")?
                .unwrap_or(100)
                .min(AUDIT_READ_MAX);
            let records = audit_log(&node.meta, tenant, limit)?;
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
    caller: &Caller,
    req: Request<Incoming>,
) -> Result<Resp, ApiError> {
    let user = admin(node, caller)?;
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

/// The admin's name. A node without a users file has no admins (403); a
/// caller without credentials is asked for them (401), one who is not an
/// admin refused (403).
fn admin(node: &Node, caller: &Caller) -> Result<String, ApiError> {
    if !node.auth.checks_passwords() {
        return Err(crate::http_caller::not_admin());
    }
    let Some(name) = caller.username() else {
        return Err(crate::http_caller::unauthorized());
    };
    caller.must_be_admin()?;
    Ok(name.to_owned())
}
