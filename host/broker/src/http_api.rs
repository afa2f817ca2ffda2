//! The HTTP API: one function per route, each translating HTTP into a call on
//! the [`Node`] and its result back into JSON. Every error leaves in the same
//! shape, `{"error": {"code": "...", "message": "..."}}`, with a status that
//! says whose fault it was.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode, header};
use serde::Deserialize;
use serde_json::{Value, json as j};
use sluice_core::{GroupName, Message, TenantId, TopicName};
use sluice_log::StoredRecord;

use crate::http_caller::Caller;
use crate::http_util::{
    ApiError, Resp, empty, format_time, json, param, parse_json, parse_time, query, read_body,
};
use crate::metrics::{family, label};
use crate::node::{Node, NodeError, ResetTo};
use crate::spec_doc::StreamDoc;
use crate::stream::Stream;

/// Header prefix that turns an HTTP header into a message header.
const HEADER_PREFIX: &str = "sluice-header-";

impl From<NodeError> for ApiError {
    fn from(e: NodeError) -> Self {
        let msg = e.to_string();
        match e {
            NodeError::StreamNotFound(_) => ApiError::not_found("stream_not_found", msg),
            NodeError::PartitionNotFound { .. } => ApiError::not_found("partition_not_found", msg),
            NodeError::Conflict(_) => ApiError::new(StatusCode::CONFLICT, "conflict", msg),
            NodeError::Invalid(_) => ApiError::bad_request("invalid", msg),
            NodeError::Backpressure { .. } => ApiError {
                retry_after_s: Some(1),
                ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "backpressure", msg)
            },
            NodeError::RateLimited { .. } => ApiError {
                retry_after_s: Some(1),
                ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", msg)
            },
            NodeError::QuotaExceeded(_) => {
                ApiError::new(StatusCode::FORBIDDEN, "quota_exceeded", msg)
            }
            NodeError::TooManyStreams(_) => {
                ApiError::new(StatusCode::INSUFFICIENT_STORAGE, "too_many_streams", msg)
            }
            NodeError::Storage(_) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable", msg)
            }
            NodeError::NotFound(_) => ApiError::not_found("not_found", msg),
        }
    }
}

/// Serves one request; never fails (errors become responses).
pub async fn handle(node: Arc<Node>, req: Request<Incoming>) -> Resp {
    node.metrics.http_requests.fetch_add(1, Relaxed);
    match route(&node, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn route(node: &Arc<Node>, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    if method == Method::GET && path == "/healthz" {
        return Ok(json(StatusCode::OK, &j!({"status": "ok"})));
    }
    let caller = Caller::of(node, req.headers()).await?;
    let tenant = caller.tenant().clone();
    if let Some(topic) = path.strip_prefix("/v1/topics/") {
        return match method {
            Method::POST => publish(node, &tenant, &caller, topic, req).await,
            _ => Err(method_not_allowed()),
        };
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    authorize(node, &tenant, &caller, &method, &segments)?;
    match (method, segments.as_slice()) {
        (Method::GET, ["metrics"]) => Ok(metrics(node, &tenant)),
        (Method::GET, ["v1", "streams"]) => {
            let list: Vec<Value> = node
                .streams(&tenant)
                .iter()
                .filter(|s| caller.can_read(s))
                .map(|s| stream_info(node, s))
                .collect();
            Ok(json(StatusCode::OK, &j!({"streams": list})))
        }
        (Method::PUT, ["v1", "streams", name]) => put_stream(node, &tenant, name, req).await,
        (Method::GET, ["v1", "streams", name]) => Ok(json(
            StatusCode::OK,
            &stream_info(node, &*node.stream(&tenant, name)?),
        )),
        (Method::DELETE, ["v1", "streams", name]) => {
            node.delete_stream(&tenant, name).await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        (Method::GET, ["v1", "streams", name, "partitions", p, "messages"]) => {
            replay(node, &tenant, name, p, req).await
        }
        (Method::GET, ["v1", "streams", name, "groups"]) => {
            let s = node.stream(&tenant, name)?;
            let groups: Vec<String> = node
                .meta
                .offsets(&s.key())
                .map_err(NodeError::from)?
                .into_keys()
                .collect();
            Ok(json(StatusCode::OK, &j!({"groups": groups})))
        }
        (Method::GET, ["v1", "streams", name, "groups", g]) => {
            let (s, g) = stream_and_group(node, &tenant, name, g)?;
            Ok(json(StatusCode::OK, &group_info(node, &s, &g)?))
        }
        (Method::DELETE, ["v1", "streams", name, "groups", g]) => {
            let (s, g) = stream_and_group(node, &tenant, name, g)?;
            node.delete_group(&s, &g).await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        (Method::GET, ["v1", "streams", name, "groups", g, "messages"]) => {
            fetch(node, &tenant, name, g, req).await
        }
        (Method::POST, ["v1", "streams", name, "groups", g, "commit"]) => {
            commit(node, &tenant, name, g, req).await
        }
        (Method::POST, ["v1", "streams", name, "groups", g, "reset"]) => {
            reset(node, &tenant, name, g, req).await
        }
        (method, ["v1", "tokens" | "audit", ..]) => {
            crate::http_admin::route(node, &tenant, &caller, method, &segments, req).await
        }
        (method, ["v1", "handlers" | "pipelines", ..]) => {
            crate::http_pipelines::route(node, &tenant, method, &segments, req).await
        }
        (_, ["healthz" | "metrics"] | ["v1", "streams", ..]) => Err(method_not_allowed()),
        _ => Err(ApiError::not_found(
            "not_found",
            format!("no route for {path}"),
        )),
    }
}

/// What a route needs of its caller beyond being authenticated (see
/// [`crate::http_caller`]); publishing is checked where the topic is parsed,
/// and the admin routes check their own, stricter, credential.
fn authorize(
    node: &Node,
    tenant: &TenantId,
    caller: &Caller,
    method: &Method,
    segments: &[&str],
) -> Result<(), ApiError> {
    match (method, segments) {
        (_, ["v1", "tokens" | "audit", ..]) => Ok(()),
        (&Method::GET, ["v1", "streams"]) => Ok(()), // filtered to what the caller may read
        (_, ["metrics"] | ["v1", "handlers" | "pipelines", ..]) => caller.must_be_admin(),
        (&Method::PUT | &Method::DELETE, ["v1", "streams", _]) => caller.must_be_admin(),
        (&Method::DELETE, ["v1", "streams", _, "groups", _]) => caller.must_be_admin(),
        (_, ["v1", "streams", name, ..]) => match node.stream(tenant, name) {
            Ok(s) => caller.may_read(&s),
            Err(_) => Ok(()), // the route answers 404
        },
        _ => Ok(()),
    }
}

pub(crate) fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this path does not take that method",
    )
}

async fn publish(
    node: &Node,
    tenant: &TenantId,
    caller: &Caller,
    raw_topic: &str,
    req: Request<Incoming>,
) -> Result<Resp, ApiError> {
    let decoded = percent_encoding::percent_decode_str(raw_topic)
        .decode_utf8()
        .map_err(|_| ApiError::bad_request("bad_topic", "the topic is not valid UTF-8"))?;
    let topic =
        TopicName::new(&decoded).map_err(|e| ApiError::bad_request("bad_topic", e.to_string()))?;
    if topic.is_system() {
        return Err(ApiError::bad_request(
            "bad_topic",
            "topics starting with '$' are reserved for the broker",
        ));
    }
    if !crate::mqtt::namespace::fits(tenant, &topic) {
        return Err(ApiError::bad_request(
            "bad_topic",
            "too deep once the tenant's prefix is added: a tenant's topics have at most 126 levels",
        ));
    }
    caller.may_publish(&topic)?;
    let (parts, body) = req.into_parts();
    let text = |name: &str| -> Result<Option<String>, ApiError> {
        parts
            .headers
            .get(name)
            .map(|v| {
                v.to_str().map(str::to_owned).map_err(|_| {
                    ApiError::bad_request(
                        "bad_header",
                        format!("header {name} is not visible ASCII"),
                    )
                })
            })
            .transpose()
    };
    let key = text("sluice-key")?.map(Bytes::from);
    let msg_id = text("sluice-msg-id")?;
    let content_type = text(header::CONTENT_TYPE.as_str())?;
    let mut headers = Vec::new();
    for (name, value) in &parts.headers {
        if let Some(h) = name.as_str().strip_prefix(HEADER_PREFIX) {
            let v = value.to_str().map_err(|_| {
                ApiError::bad_request("bad_header", format!("header {name} is not visible ASCII"))
            })?;
            headers.push((h.to_owned(), v.to_owned()));
        }
    }
    if headers.len() > sluice_core::envelope::HEADERS_MAX {
        return Err(ApiError::bad_request(
            "too_many_headers",
            format!(
                "at most {} message headers",
                sluice_core::envelope::HEADERS_MAX
            ),
        ));
    }
    let payload = read_body(&parts.headers, body, node.options.limits.payload_bytes_max).await?;
    let msg = Message {
        topic,
        key,
        headers,
        content_type,
        msg_id,
        payload,
        timestamp_ms: crate::stream::now_ms(),
        mqtt: Default::default(),
    };
    let retain = text("sluice-retain")?.is_some_and(|v| v == "true" || v == "1");
    // Durable capture first (refused whole on back-pressure), then live
    // delivery to MQTT subscribers at QoS 1, then the wait for durability.
    if retain {
        node.check_retain(tenant, &msg)?;
    }
    let pending = node.begin_publish(tenant, &msg)?;
    let retained = retain.then(|| node.retain(tenant, &msg, sluice_mqtt::QoS::AtLeastOnce));
    let (_, held, congested) =
        node.route_live(tenant, &msg, sluice_mqtt::QoS::AtLeastOnce, retain, None);
    let appends = pending.wait().await?;
    if let Some(r) = retained {
        r.await?;
    }
    held.await?;
    // A subscriber far behind slows this publisher down, for a bounded time.
    if let Some(c) = congested {
        c.drained().await;
    }
    let duplicate = !appends.is_empty() && appends.iter().all(|a| a.duplicate);
    Ok(json(
        StatusCode::OK,
        &j!({"appends": appends, "duplicate": duplicate}),
    ))
}

async fn put_stream(
    node: &Arc<Node>,
    tenant: &TenantId,
    name: &str,
    req: Request<Incoming>,
) -> Result<Resp, ApiError> {
    let (parts, body) = req.into_parts();
    let body = read_body(&parts.headers, body, 1 << 20).await?;
    let doc: StreamDoc = parse_json(&body)?;
    if doc.name.as_deref().is_some_and(|n| n != name) {
        return Err(ApiError::bad_request(
            "invalid",
            "the body's `name` differs from the path's",
        ));
    }
    let spec = doc
        .into_spec(Some(name))
        .map_err(|e| ApiError::bad_request("invalid_stream", e.0))?;
    let created = node.put_stream(tenant, spec).await?;
    let s = node.stream(tenant, name)?;
    Ok(json(
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        &stream_info(node, &s),
    ))
}

fn stream_info(node: &Node, s: &Stream) -> Value {
    let live = s.mutable.read().expect("spec lock").clone();
    let spec = StreamDoc::from_spec(&crate::options::StreamSpec {
        subjects: live.subjects,
        retention_max_age_ms: live.retention.max_age_ms,
        retention_max_bytes: live.retention.max_bytes,
        ..s.spec.clone()
    });
    let partitions: Vec<Value> = s
        .partitions
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let log = p.log.read().expect("partition lock");
            let quarantined: Vec<Value> = log
                .quarantined()
                .iter()
                .map(|q| j!({"from": q.offsets.start, "to": q.offsets.end, "reason": q.reason}))
                .collect();
            j!({
                "partition": i,
                "start_offset": log.start_offset(),
                "end_offset": p.visible_end(),
                "bytes": log.size_bytes(),
                "segments": log.segment_count(),
                "quarantined": quarantined,
                "healthy": !log.is_poisoned(),
            })
        })
        .collect();
    let groups = node
        .meta
        .offsets(&s.key())
        .map(|g| g.into_keys().collect::<Vec<_>>())
        .unwrap_or_default();
    j!({
        "name": s.name(),
        "config": spec,
        "partitions": partitions,
        "groups": groups,
        "appends": s.metrics.appends.load(Relaxed),
        "duplicates": s.metrics.duplicates.load(Relaxed),
    })
}

fn message_json(partition: Option<u32>, r: &StoredRecord) -> Value {
    let mut v = match Message::decode(r.key.clone(), r.timestamp_ms, &r.value) {
        Ok(m) => {
            let headers: serde_json::Map<String, Value> = m
                .headers
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
            j!({
                "offset": r.offset,
                "timestamp": format_time(r.timestamp_ms),
                "topic": m.topic.as_str(),
                "key": m.key.map(|k| String::from_utf8_lossy(&k).into_owned()),
                "headers": headers,
                "content_type": m.content_type,
                "msg_id": m.msg_id,
                "payload": base64::engine::general_purpose::STANDARD.encode(&m.payload),
            })
        }
        Err(e) => {
            j!({"offset": r.offset, "timestamp": format_time(r.timestamp_ms), "error": format!("undecodable envelope: {e}")})
        }
    };
    if let Some(p) = partition {
        v["partition"] = j!(p);
    }
    v
}

fn partition_index(s: &Stream, p: &str) -> Result<u32, ApiError> {
    match p.parse::<u32>() {
        Ok(i) if i < s.spec.partitions => Ok(i),
        _ => Err(NodeError::PartitionNotFound {
            stream: s.name().to_owned(),
            partition: p.parse().unwrap_or(u32::MAX),
            count: s.spec.partitions,
        }
        .into()),
    }
}

async fn replay(
    node: &Node,
    tenant: &TenantId,
    name: &str,
    p: &str,
    req: Request<Incoming>,
) -> Result<Resp, ApiError> {
    let s = node.stream(tenant, name)?;
    let p = partition_index(&s, p)?;
    let q = query(req.uri().query());
    let limits = &node.options.limits;
    let limit = param::<usize>(&q, "limit")?
        .unwrap_or(100)
        .clamp(1, limits.fetch_messages_max);
    let raw = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/octet-stream"));
    let from_time = q.get("from_time").map(|t| parse_time(t)).transpose()?;
    let offset = param::<u64>(&q, "offset")?;
    if offset.is_some() && from_time.is_some() {
        return Err(ApiError::bad_request(
            "bad_parameter",
            "give `offset` or `from_time`, not both",
        ));
    }
    let (bytes_max, s2) = (limits.fetch_bytes_max, s.clone());
    let (start, records) = tokio::task::spawn_blocking(move || -> Result<_, NodeError> {
        let start = match (offset, from_time) {
            (_, Some(t)) => s2.offset_for_time(p, t)?,
            (Some(o), None) => o,
            (None, None) => 0,
        };
        let records = s2.read(p, start, if raw { 1 } else { limit }, bytes_max)?;
        Ok((start, records))
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))??;
    let handle = &s.partitions[p as usize];
    if raw {
        let r = records
            .into_iter()
            .next()
            .filter(|r| offset.is_none() || Some(r.offset) == offset)
            .ok_or_else(|| {
                ApiError::not_found(
                    "message_not_found",
                    format!("no message at offset {start} of partition {p}"),
                )
            })?;
        let m = Message::decode(r.key.clone(), r.timestamp_ms, &r.value).map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "corrupt_message",
                e.to_string(),
            )
        })?;
        let mut b = hyper::Response::builder()
            .status(StatusCode::OK)
            .header(
                header::CONTENT_TYPE,
                m.content_type
                    .as_deref()
                    .unwrap_or("application/octet-stream"),
            )
            .header("sluice-offset", r.offset)
            .header("sluice-topic", m.topic.as_str())
            .header("sluice-timestamp", format_time(r.timestamp_ms));
        if let Some(k) = m.key.as_ref().and_then(|k| std::str::from_utf8(k).ok()) {
            b = b.header("sluice-key", k);
        }
        for (k, v) in &m.headers {
            b = b.header(format!("{HEADER_PREFIX}{k}"), v.as_str());
        }
        return Ok(b
            .body(http_body_util::Full::new(m.payload))
            .expect("valid header values"));
    }
    let next = records
        .last()
        .map(|r| r.offset + 1)
        .unwrap_or_else(|| start.max(handle.start_offset()).min(handle.visible_end()));
    let messages: Vec<Value> = records.iter().map(|r| message_json(None, r)).collect();
    Ok(json(
        StatusCode::OK,
        &j!({"messages": messages, "next_offset": next, "start_offset": handle.start_offset(), "end_offset": handle.visible_end()}),
    ))
}

fn stream_and_group(
    node: &Node,
    tenant: &TenantId,
    name: &str,
    g: &str,
) -> Result<(Arc<Stream>, GroupName), ApiError> {
    let s = node.stream(tenant, name)?;
    let g = GroupName::new(g).map_err(|e| ApiError::bad_request("bad_group", e.to_string()))?;
    Ok((s, g))
}

fn group_info(node: &Node, s: &Stream, g: &GroupName) -> Result<Value, ApiError> {
    let committed = node
        .meta
        .offsets(&s.key())
        .map_err(NodeError::from)?
        .remove(g.as_str())
        .unwrap_or_default();
    let positions = node.group_positions(s, g)?;
    let partitions: Vec<Value> = positions
        .iter()
        .enumerate()
        .map(|(p, pos)| {
            let end = s.partitions[p].visible_end();
            j!({"partition": p, "committed": committed.get(&(p as u32)), "position": pos, "end_offset": end, "lag": end - pos})
        })
        .collect();
    let lag: u64 = positions
        .iter()
        .enumerate()
        .map(|(p, pos)| s.partitions[p].visible_end() - pos)
        .sum();
    Ok(j!({"stream": s.name(), "group": g.as_str(), "partitions": partitions, "lag": lag}))
}

async fn fetch(
    node: &Node,
    tenant: &TenantId,
    name: &str,
    g: &str,
    req: Request<Incoming>,
) -> Result<Resp, ApiError> {
    let (s, g) = stream_and_group(node, tenant, name, g)?;
    let q = query(req.uri().query());
    let limits = &node.options.limits;
    let limit = param::<usize>(&q, "limit")?
        .unwrap_or(100)
        .clamp(1, limits.fetch_messages_max);
    let wait_ms = param::<u64>(&q, "wait_ms")?
        .unwrap_or(0)
        .min(limits.fetch_wait_ms_max);
    let fetched = node
        .fetch(s, &g, limit, Duration::from_millis(wait_ms))
        .await?;
    let messages: Vec<Value> = fetched
        .messages
        .iter()
        .map(|(p, r)| message_json(Some(*p), r))
        .collect();
    let next: BTreeMap<String, u64> = fetched
        .next_offsets
        .iter()
        .map(|(p, o)| (p.to_string(), *o))
        .collect();
    Ok(json(
        StatusCode::OK,
        &j!({"messages": messages, "next_offsets": next}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommitBody {
    offsets: BTreeMap<String, u64>,
}

async fn commit(
    node: &Node,
    tenant: &TenantId,
    name: &str,
    g: &str,
    req: Request<Incoming>,
) -> Result<Resp, ApiError> {
    let (s, g) = stream_and_group(node, tenant, name, g)?;
    let (parts, body) = req.into_parts();
    let body: CommitBody = parse_json(&read_body(&parts.headers, body, 1 << 20).await?)?;
    let mut offsets = BTreeMap::new();
    for (p, o) in body.offsets {
        offsets.insert(partition_index(&s, &p)?, o);
    }
    node.commit(&s, &g, &offsets).await?;
    Ok(json(StatusCode::OK, &group_info(node, &s, &g)?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResetBody {
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    offset: Option<u64>,
    #[serde(default)]
    time: Option<String>,
}

async fn reset(
    node: &Node,
    tenant: &TenantId,
    name: &str,
    g: &str,
    req: Request<Incoming>,
) -> Result<Resp, ApiError> {
    let (s, g) = stream_and_group(node, tenant, name, g)?;
    let (parts, body) = req.into_parts();
    let body: ResetBody = parse_json(&read_body(&parts.headers, body, 1 << 20).await?)?;
    let to = match (body.to.as_deref(), body.offset, body.time) {
        (Some("earliest"), None, None) => ResetTo::Earliest,
        (Some("latest"), None, None) => ResetTo::Latest,
        (None, Some(o), None) => ResetTo::Offset(o),
        (None, None, Some(t)) => ResetTo::TimeMs(parse_time(&t)?),
        _ => {
            return Err(ApiError::bad_request(
                "invalid",
                "give exactly one of {\"to\": \"earliest\"|\"latest\"}, {\"offset\": N} or {\"time\": RFC3339}",
            ));
        }
    };
    node.reset(s.clone(), &g, to).await?;
    Ok(json(StatusCode::OK, &group_info(node, &s, &g)?))
}

/// A per-stream counter family: name, help, and how to read it.
type StreamCounter = (&'static str, &'static str, fn(&Stream) -> u64);

fn metrics(node: &Node, tenant: &TenantId) -> Resp {
    use std::fmt::Write as _;
    let mut out = String::new();
    // Node-wide counters are the operator's, who is the default tenant's
    // admin; another tenant's admin sees its own streams and pipelines.
    if tenant.is_default() {
        node.metrics.render(&mut out);
    }
    node.render_pipeline_metrics(tenant, &mut out);
    let streams = node.streams(tenant);
    let counters: [StreamCounter; 4] = [
        (
            "sluice_appends_total",
            "Messages appended to a stream.",
            |s| s.metrics.appends.load(Relaxed),
        ),
        (
            "sluice_append_bytes_total",
            "Record bytes appended to a stream.",
            |s| s.metrics.append_bytes.load(Relaxed),
        ),
        (
            "sluice_duplicates_total",
            "Publishes acknowledged as duplicates of a Sluice-Msg-Id in the window.",
            |s| s.metrics.duplicates.load(Relaxed),
        ),
        (
            "sluice_append_errors_total",
            "Appends that failed in storage.",
            |s| s.metrics.append_errors.load(Relaxed),
        ),
    ];
    for (name, help, get) in counters {
        family(&mut out, name, "counter", help);
        for s in &streams {
            let _ = writeln!(out, "{name}{{stream=\"{}\"}} {}", label(s.name()), get(s));
        }
    }
    family(
        &mut out,
        "sluice_stream_end_offset",
        "gauge",
        "Next offset to be written, per partition (visible to readers).",
    );
    for s in &streams {
        for (p, h) in s.partitions.iter().enumerate() {
            let _ = writeln!(
                out,
                "sluice_stream_end_offset{{stream=\"{}\",partition=\"{p}\"}} {}",
                label(s.name()),
                h.visible_end()
            );
        }
    }
    family(
        &mut out,
        "sluice_stream_bytes",
        "gauge",
        "Bytes on disk, per partition.",
    );
    for s in &streams {
        for (p, h) in s.partitions.iter().enumerate() {
            let _ = writeln!(
                out,
                "sluice_stream_bytes{{stream=\"{}\",partition=\"{p}\"}} {}",
                label(s.name()),
                h.log.read().expect("partition lock").size_bytes()
            );
        }
    }
    family(
        &mut out,
        "sluice_group_lag",
        "gauge",
        "Messages between a group's committed offset and the end, per partition.",
    );
    for s in &streams {
        let Ok(groups) = node.meta.offsets(&s.key()) else {
            continue;
        };
        for g in groups.keys() {
            let Ok(g) = GroupName::new(g) else { continue };
            let Ok(positions) = node.group_positions(s, &g) else {
                continue;
            };
            for (p, pos) in positions.iter().enumerate() {
                let lag = s.partitions[p].visible_end() - pos;
                let _ = writeln!(
                    out,
                    "sluice_group_lag{{stream=\"{}\",group=\"{}\",partition=\"{p}\"}} {lag}",
                    label(s.name()),
                    label(g.as_str())
                );
            }
        }
    }
    hyper::Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/plain; version=0.0.4")
        .body(http_body_util::Full::new(Bytes::from(out)))
        .expect("static response parts")
}
