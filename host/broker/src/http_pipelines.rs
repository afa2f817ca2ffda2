//! The HTTP routes of handlers and pipelines:
//!
//! - `PUT /v1/handlers/{name}/{version}` with the component as the body,
//!   `GET /v1/handlers`, `DELETE /v1/handlers/{name}/{version}`;
//! - `PUT /v1/pipelines/{name}` with a JSON [`PipelineDoc`] (create, or
//!   reload while traffic flows), `GET /v1/pipelines`, `GET` and `DELETE
//!   /v1/pipelines/{name}`.
//!
//! Kept apart from `http_api.rs` so that the streams API reads on its own.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde_json::json;
use sluice_core::TenantId;

use crate::http_api::method_not_allowed;
use crate::http_util::{ApiError, Resp, empty, json, parse_json, read_body, read_body_limited};
use crate::node::Node;
use crate::pipeline::handlers::HANDLER_BYTES_MAX;
use crate::pipeline::spec::PipelineDoc;

/// Largest pipeline document accepted.
const PIPELINE_DOC_BYTES_MAX: u64 = 1 << 20;

pub async fn route(
    node: &Arc<Node>,
    tenant: &TenantId,
    method: Method,
    segments: &[&str],
    req: Request<Incoming>,
) -> Result<Resp, ApiError> {
    match (method, segments) {
        (Method::GET, ["v1", "handlers"]) => {
            let list = node.pipelines.handlers.list(tenant)?;
            Ok(json(StatusCode::OK, &json!({"handlers": list})))
        }
        (Method::PUT, ["v1", "handlers", name, version]) => {
            let (parts, body) = req.into_parts();
            let wasm = read_body_limited(
                &parts.headers,
                body,
                HANDLER_BYTES_MAX as u64,
                "handler_bytes_max",
            )
            .await?;
            if wasm.is_empty() {
                return Err(ApiError::bad_request(
                    "invalid",
                    "the body must be a WebAssembly component",
                ));
            }
            let (record, created) = node
                .deploy_handler(tenant, name, version, wasm.to_vec())
                .await?;
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok(json(status, &record))
        }
        (Method::DELETE, ["v1", "handlers", name, version]) => {
            node.delete_handler(tenant, name, version).await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        (Method::GET, ["v1", "pipelines"]) => {
            let list: Vec<serde_json::Value> = node
                .pipeline_names(tenant)
                .iter()
                .filter_map(|n| node.pipeline_status(tenant, n).ok())
                .collect();
            Ok(json(StatusCode::OK, &json!({"pipelines": list})))
        }
        (Method::PUT, ["v1", "pipelines", name]) => {
            let (parts, body) = req.into_parts();
            let body = read_body(&parts.headers, body, PIPELINE_DOC_BYTES_MAX).await?;
            let doc: PipelineDoc = parse_json(&body)?;
            if doc.name.as_deref().is_some_and(|n| n != *name) {
                return Err(ApiError::bad_request(
                    "invalid",
                    "the body's `name` differs from the path's",
                ));
            }
            let spec = doc
                .into_spec(Some(name))
                .map_err(|e| ApiError::bad_request("invalid_pipeline", e.0))?;
            let created = node.put_pipeline(tenant, spec).await?;
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok(json(status, &node.pipeline_status(tenant, name)?))
        }
        (Method::GET, ["v1", "pipelines", name]) => {
            Ok(json(StatusCode::OK, &node.pipeline_status(tenant, name)?))
        }
        (Method::DELETE, ["v1", "pipelines", name]) => {
            node.delete_pipeline(tenant, name).await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        (
            _,
            ["v1", "handlers" | "pipelines"] | ["v1", "handlers", _, _] | ["v1", "pipelines", _],
        ) => Err(method_not_allowed()),
        _ => Err(ApiError::not_found(
            "not_found",
            "no such route: handlers are /v1/handlers/{name}/{version}, pipelines /v1/pipelines/{name}",
        )),
    }
}
