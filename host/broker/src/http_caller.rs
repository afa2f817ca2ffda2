//! Who is calling the HTTP API and what they may do. Without a users file
//! the API is open, as it always was. With one, every route but `/healthz`
//! needs HTTP Basic credentials of a user in it (or, with `allow_anonymous`,
//! none, and the `anonymous` user's ACL), and the same ACLs as MQTT apply:
//!
//! - publishing to a topic needs a publish ACL matching it;
//! - reading a stream (its description, replay, groups, fetch, commit,
//!   reset) needs subscribe ACLs covering every subject it captures, so
//!   HTTP cannot show what MQTT would not;
//! - creating, changing or deleting streams and groups, handlers and
//!   pipelines, and reading `/metrics`, are for admin users.

use std::sync::Arc;

use base64::Engine as _;
use hyper::{HeaderMap, StatusCode, header};
use sluice_core::{TenantId, TopicName};

use crate::auth::{Principal, Refusal};
use crate::http_util::ApiError;
use crate::node::Node;
use crate::stream::Stream;

/// The `WWW-Authenticate` challenge of a 401 from the API.
const CHALLENGE: &str = "Basic realm=\"sluice\"";

/// An authenticated caller of the HTTP API.
pub struct Caller {
    principal: Principal,
}

impl Caller {
    /// Authenticates the request's Basic credentials (Argon2 off the I/O
    /// threads unless the credentials were verified before).
    pub async fn of(node: &Arc<Node>, headers: &HeaderMap) -> Result<Caller, ApiError> {
        let auth = node.auth.clone();
        let (user, password) = basic_credentials(headers).unzip();
        let quick = !auth.checks_passwords()
            || match (&user, &password) {
                (Some(u), Some(p)) => auth.remembers(u, p),
                _ => true, // no Argon2 without a password
            };
        // A client id no ACL pattern can name: `%c` is MQTT's.
        let check = move || auth.authenticate(user.as_deref(), password.as_deref(), "\u{0}");
        let outcome = if quick {
            check()
        } else {
            tokio::task::spawn_blocking(check).await.map_err(|e| {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
            })?
        };
        match outcome {
            Ok(principal) => Ok(Caller { principal }),
            Err(Refusal::BadCredentials | Refusal::NotAuthorized) => Err(unauthorized()),
        }
    }

    /// The tenant the caller's every call acts in.
    pub fn tenant(&self) -> &TenantId {
        &self.principal.tenant
    }

    /// The user's name; `None` for an anonymous caller.
    pub fn username(&self) -> Option<&str> {
        self.principal.username.as_deref()
    }

    pub fn may_publish(&self, topic: &TopicName) -> Result<(), ApiError> {
        if self.principal.may_publish(topic) {
            return Ok(());
        }
        Err(forbidden(format!("no publish ACL allows topic {topic:?}")))
    }

    /// Whether every subject of `stream` is within the caller's subscribe ACLs.
    pub fn can_read(&self, stream: &Stream) -> bool {
        stream
            .spec
            .subjects
            .iter()
            .all(|f| self.principal.may_subscribe(f))
    }

    pub fn may_read(&self, stream: &Stream) -> Result<(), ApiError> {
        if self.can_read(stream) {
            return Ok(());
        }
        Err(forbidden(format!(
            "reading stream {:?} needs subscribe ACLs covering all its subjects",
            stream.name()
        )))
    }

    pub fn must_be_admin(&self) -> Result<(), ApiError> {
        if self.principal.admin {
            return Ok(());
        }
        Err(not_admin())
    }
}

/// 401, with the challenge that asks for Basic credentials.
pub fn unauthorized() -> ApiError {
    ApiError {
        challenge: Some(CHALLENGE),
        ..ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this node has users: send the HTTP Basic credentials of one",
        )
    }
}

/// 403 for a call only admins may make.
pub fn not_admin() -> ApiError {
    forbidden("this call is for admin users only (`admin = true` in the users file)".into())
}

fn forbidden(message: String) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
}

/// The user and password of an `Authorization: Basic …` header.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, Vec<u8>)> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let i = raw.iter().position(|&b| b == b':')?;
    let user = String::from_utf8(raw[..i].to_vec()).ok()?;
    Some((user, raw[i + 1..].to_vec()))
}
