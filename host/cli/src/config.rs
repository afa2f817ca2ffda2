//! The config file: its TOML shape, its validation, and its conversion into
//! the broker's plain [`NodeOptions`]. Only this binary knows the format.
//! Every value is checked while it is deserialised, so a bad value is
//! reported with the file, the line and the reason, and a bad file is
//! rejected whole: a node never starts on half a configuration.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sluice_broker::pipeline::spec::{PipelineDoc, PipelineSpec};
use sluice_broker::spec_doc::StreamDoc;
use sluice_broker::{NodeOptions, StreamSpec};
use sluice_core::{TenantId, parse_bytes, parse_duration_ms};

/// The whole file. Every field is optional; what is missing keeps the embedded default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Directory for logs, metadata and `ports.json`. Relative paths are relative to the working directory.
    pub data_dir: Option<PathBuf>,
    /// How often retention runs, e.g. `"30s"`.
    pub retention_check: Option<Duration>,
    #[serde(default)]
    pub http: HttpSection,
    #[serde(default)]
    pub mqtt: MqttSection,
    #[serde(default)]
    pub limits: LimitsSection,
    #[serde(default)]
    pub auth: AuthSection,
    /// Streams to create at start-up (or update, for subjects and retention).
    /// Kept with their place in the file, to report errors by line.
    #[serde(default)]
    pub streams: Vec<toml::Spanned<StreamDoc>>,
    /// The checked streams of every tenant, filled in by [`parse`].
    #[serde(skip)]
    pub checked_streams: Vec<(TenantId, StreamSpec)>,
    /// The WebAssembly runtime that runs every pipeline's handlers.
    #[serde(default)]
    pub wasm: WasmSection,
    /// Handler versions to deploy at start-up (Wasm components on disk).
    #[serde(default)]
    pub handlers: Vec<toml::Spanned<HandlerEntry>>,
    /// Pipelines to create at start-up (or reload, when their definition changed).
    #[serde(default)]
    pub pipelines: Vec<toml::Spanned<PipelineDoc>>,
    /// The checked pipelines of every tenant, filled in by [`parse`].
    #[serde(skip)]
    pub checked_pipelines: Vec<(TenantId, PipelineSpec)>,
    /// The handlers of every tenant, filled in by [`parse`].
    #[serde(skip)]
    pub checked_handlers: Vec<(TenantId, HandlerEntry)>,
    /// Every declared tenant but `default`, with its quotas, filled in by
    /// [`parse`].
    #[serde(skip)]
    pub checked_tenants: std::collections::HashMap<TenantId, sluice_broker::quota::TenantQuota>,
    /// Other tenants' streams, handlers and pipelines; those above are the
    /// `default` tenant's.
    #[serde(default)]
    pub tenants: Vec<toml::Spanned<TenantSection>>,
}

/// `[[tenants]]`: what the config file declares for one tenant other than
/// `default`, with the same shapes as the top-level lists.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantSection {
    pub name: String,
    /// Quota: streams the tenant may hold (its dead-letter streams too).
    pub streams_max: Option<usize>,
    /// Quota: messages a second the tenant may publish, over HTTP, MQTT and
    /// its pipelines' outputs, in bursts of up to one second's worth.
    pub publish_messages_per_s_max: Option<u32>,
    /// Quota: payload bytes a second the tenant may publish, counted like
    /// messages, e.g. `"1MiB"`.
    pub publish_bytes_per_s_max: Option<Bytes>,
    /// Quota: MQTT clients (distinct client ids) connected at once.
    pub mqtt_connections_max: Option<usize>,
    /// Quota: subscriptions each of the tenant's MQTT sessions may hold.
    pub mqtt_subscriptions_per_client_max: Option<usize>,
    /// Quota: retained messages the tenant holds.
    pub retained_messages_max: Option<usize>,
    /// Quota: runner threads the tenant's pipelines use together.
    pub pipeline_runners_max: Option<usize>,
    #[serde(default)]
    pub streams: Vec<toml::Spanned<StreamDoc>>,
    #[serde(default)]
    pub handlers: Vec<toml::Spanned<HandlerEntry>>,
    #[serde(default)]
    pub pipelines: Vec<toml::Spanned<PipelineDoc>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WasmSection {
    /// Meter every handler call with fuel (costs 10-40% of guest speed; the deadline still holds without it).
    pub fuel: Option<bool>,
    /// Resolution of handler deadlines (the epoch tick), e.g. `"5ms"`.
    pub epoch_tick: Option<Duration>,
    /// Live handler instances across all pipelines; the pool reserves slots for them.
    pub instances_max: Option<u32>,
    /// The largest linear memory any handler may be given, e.g. `"256MiB"`.
    pub memory_bytes_max_ceiling: Option<Bytes>,
}

/// One handler version of the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandlerEntry {
    pub name: String,
    pub version: String,
    /// The component file, relative to the config file.
    pub wasm: PathBuf,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    /// Address of the HTTP API, e.g. `"127.0.0.1:8080"`; port 0 picks a free port.
    pub listen: Option<SocketAddr>,
    /// Largest message payload accepted, e.g. `"1MiB"`.
    pub payload_bytes_max: Option<Bytes>,
    /// Concurrent HTTP connections served; more wait in the accept queue.
    pub connections_max: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttSection {
    /// Address of the MQTT listener, e.g. `"127.0.0.1:1883"`.
    pub listen: Option<SocketAddr>,
    /// Concurrent MQTT connections.
    pub connections_max: Option<usize>,
    /// Largest packet accepted from a client, e.g. `"1MiB"`.
    pub packet_bytes_max: Option<Bytes>,
    /// Unacknowledged QoS 1/2 publishes a client may have in flight.
    pub receive_maximum: Option<u16>,
    /// Topic aliases a client may use.
    pub topic_alias_maximum: Option<u16>,
    /// Keep-alive imposed on clients asking for none or more, e.g. `"1h"`.
    pub keep_alive_max: Option<Duration>,
    /// Longest session expiry granted, e.g. `"7d"`.
    pub session_expiry_max: Option<Duration>,
    /// Messages queued per client session.
    pub session_queue_messages_max: Option<usize>,
    /// Unacknowledged QoS 1/2 messages a persistent session holds on disk.
    pub session_stored_messages_max: Option<usize>,
    /// QoS 1/2 messages in flight to one client.
    pub inflight_messages_max: Option<u16>,
    /// Subscriptions one MQTT session may hold.
    pub subscriptions_per_client_max: Option<usize>,
    /// Retained messages the node holds.
    pub retained_messages_max: Option<usize>,
    /// A subscriber backlog, in messages, at which its publishers wait (0 = never).
    pub publisher_wait_backlog_messages: Option<usize>,
    /// The longest a publisher waits for one subscriber, e.g. `"100ms"`.
    pub publisher_wait_max: Option<Duration>,
    /// How often `$SYS/` statistics are published, e.g. `"10s"` (`"0ms"` = never).
    pub sys_interval: Option<Duration>,
    /// MQTT over WebSocket (subprotocol `mqtt`), e.g. `"127.0.0.1:8083"`.
    pub ws_listen: Option<SocketAddr>,
    /// MQTT over TLS.
    pub tls: Option<TlsSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// e.g. `"127.0.0.1:8883"`.
    pub listen: SocketAddr,
    /// PEM certificate chain, relative to the config file.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1), relative to the config file.
    pub key: PathBuf,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSection {
    /// A TOML file of `[[users]]` with `name`, `password_hash` (from `sluice passwd`),
    /// `publish` and `subscribe` topic-filter lists. Relative to the config file.
    pub users_file: Option<PathBuf>,
    /// With a users file: let clients without a username connect, with the ACL
    /// of the user named `anonymous` if there is one (else nothing).
    pub allow_anonymous: Option<bool>,
}

/// The users file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersFile {
    #[serde(default)]
    users: Vec<UserEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserEntry {
    name: String,
    password_hash: String,
    #[serde(default)]
    publish: Vec<String>,
    #[serde(default)]
    subscribe: Vec<String>,
    #[serde(default)]
    admin: bool,
    /// The tenant the user belongs to; `default` when absent.
    #[serde(default)]
    tenant: Option<toml::Spanned<String>>,
}

/// Reads a users file into the broker's user specs, with file:line errors.
/// A user's `tenant` must be `default` or one of `tenants` (declared in
/// the config file), so a misspelt name is an error, not a new tenant.
pub fn read_users(
    path: &Path,
    tenants: &std::collections::HashMap<TenantId, sluice_broker::quota::TenantQuota>,
) -> Result<Vec<sluice_broker::auth::UserSpec>, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
    let file: UsersFile = toml::from_str(&text).map_err(|e| {
        let (line, col) = e.span().map(|s| line_col(&text, s.start)).unwrap_or((1, 1));
        ConfigError(format!(
            "{}:{line}:{col}: {}",
            path.display(),
            e.message().trim()
        ))
    })?;
    let users: Vec<sluice_broker::auth::UserSpec> = file
        .users
        .into_iter()
        .map(|u| {
            let tenant = match &u.tenant {
                None => TenantId::default_tenant(),
                Some(t) => {
                    let at = |msg: String| {
                        let (line, col) = line_col(&text, t.span().start);
                        ConfigError(format!("{}:{line}:{col}: {msg}", path.display()))
                    };
                    let tenant = TenantId::new(t.get_ref()).map_err(|e| at(e.to_string()))?;
                    if !tenant.is_default() && !tenants.contains_key(&tenant) {
                        return Err(at(format!(
                            "user {:?}: tenant \"{tenant}\" is not declared in the config file (add [[tenants]] name = \"{tenant}\")",
                            u.name
                        )));
                    }
                    tenant
                }
            };
            Ok(sluice_broker::auth::UserSpec {
                name: u.name,
                password_hash: u.password_hash,
                publish: u.publish,
                subscribe: u.subscribe,
                admin: u.admin,
                tenant,
            })
        })
        .collect::<Result<_, ConfigError>>()?;
    sluice_broker::auth::Authenticator::new(&sluice_broker::auth::AuthOptions {
        users: Some(users.clone()),
        allow_anonymous: false,
    })
    .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
    Ok(users)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// Streams per node.
    pub streams_max: Option<usize>,
    /// Messages one fetch or replay returns at most.
    pub fetch_messages_max: Option<usize>,
    /// Bytes one fetch or replay returns at most, e.g. `"8MiB"`.
    pub fetch_bytes_max: Option<Bytes>,
    /// Longest long-poll a consumer may ask for, e.g. `"30s"`.
    pub fetch_wait_max: Option<Duration>,
    /// Tokens the vault keeps per tenant.
    pub vault_tokens_max: Option<u64>,
    /// Metadata store pages kept in memory, e.g. `"64MiB"`.
    pub meta_cache_bytes_max: Option<Bytes>,
    /// Metadata writes queued before publishers wait.
    pub meta_queue_requests_max: Option<usize>,
    /// A tenant's own metadata writes queued before its publishers wait.
    pub meta_queue_requests_per_tenant_max: Option<usize>,
}

/// A byte size written as `"10GiB"` or a plain integer.
#[derive(Debug, Clone, Copy)]
pub struct Bytes(pub u64);

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(Bytes(n)),
            Raw::S(s) => parse_bytes(&s).map(Bytes).map_err(serde::de::Error::custom),
        }
    }
}

/// A duration written as `"250ms"`, `"30s"`, `"7d"`.
#[derive(Debug, Clone, Copy)]
pub struct Duration(pub u64);

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_duration_ms(&s)
            .map(Duration)
            .map_err(serde::de::Error::custom)
    }
}

/// A configuration error, already formatted as `file:line:column: reason`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

/// Parses `text` (read from `path`) into a config, or says where it is wrong.
pub fn parse(path: &Path, text: &str) -> Result<ConfigFile, ConfigError> {
    let cfg: ConfigFile = toml::from_str(text).map_err(|e| {
        let (line, col) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
        ConfigError(format!(
            "{}:{line}:{col}: {}",
            path.display(),
            e.message().trim()
        ))
    })?;
    let mut cfg = cfg;
    let at = |span: std::ops::Range<usize>, msg: String| {
        let (line, col) = line_col(text, span.start);
        ConfigError(format!("{}:{line}:{col}: {msg}", path.display()))
    };
    let mut checked = Checked::default();
    checked.namespace(
        TenantId::default_tenant(),
        &cfg.streams,
        &cfg.handlers,
        &cfg.pipelines,
        &at,
    )?;
    for t in &cfg.tenants {
        let section = t.get_ref();
        let tenant = TenantId::new(&section.name).map_err(|e| at(t.span(), e.to_string()))?;
        if section.streams_max == Some(0)
            || section.publish_messages_per_s_max == Some(0)
            || section.publish_bytes_per_s_max.as_ref().map(|b| b.0) == Some(0)
            || section.mqtt_connections_max == Some(0)
            || section.mqtt_subscriptions_per_client_max == Some(0)
            || section.retained_messages_max == Some(0)
            || section.pipeline_runners_max == Some(0)
        {
            return Err(at(
                t.span(),
                "a quota of 0 allows nothing: leave it out for no limit".into(),
            ));
        }
        if tenant.is_default() || checked.tenants.contains_key(&tenant) {
            return Err(at(
                t.span(),
                format!(
                    "tenant {:?} is declared twice (the top-level lists are the default tenant's)",
                    section.name
                ),
            ));
        }
        let quota = sluice_broker::quota::TenantQuota {
            streams_max: section.streams_max,
            publish_messages_per_s_max: section.publish_messages_per_s_max,
            publish_bytes_per_s_max: section.publish_bytes_per_s_max.as_ref().map(|b| b.0),
            mqtt_connections_max: section.mqtt_connections_max,
            mqtt_subscriptions_per_client_max: section.mqtt_subscriptions_per_client_max,
            retained_messages_max: section.retained_messages_max,
            pipeline_runners_max: section.pipeline_runners_max,
        };
        checked.tenants.insert(tenant.clone(), quota);
        checked.namespace(
            tenant,
            &section.streams,
            &section.handlers,
            &section.pipelines,
            &at,
        )?;
    }
    cfg.checked_streams = checked.streams;
    cfg.checked_pipelines = checked.pipelines;
    cfg.checked_handlers = checked.handlers;
    cfg.checked_tenants = checked.tenants;
    Ok(cfg)
}

/// The checked declarations of every tenant, in file order.
#[derive(Default)]
struct Checked {
    streams: Vec<(TenantId, StreamSpec)>,
    pipelines: Vec<(TenantId, PipelineSpec)>,
    handlers: Vec<(TenantId, HandlerEntry)>,
    tenants: std::collections::HashMap<TenantId, sluice_broker::quota::TenantQuota>,
    /// Runner threads of every pipeline declared so far.
    runners: usize,
}

impl Checked {
    /// Checks one tenant's lists: each entry valid, no name twice, its
    /// pipelines' runners within its `pipeline_runners_max` (its quota is
    /// checked before its lists) and every tenant's within the node's limit.
    fn namespace(
        &mut self,
        tenant: TenantId,
        streams: &[toml::Spanned<StreamDoc>],
        handlers: &[toml::Spanned<HandlerEntry>],
        pipelines: &[toml::Spanned<PipelineDoc>],
        at: &impl Fn(std::ops::Range<usize>, String) -> ConfigError,
    ) -> Result<(), ConfigError> {
        let mut seen = std::collections::HashSet::new();
        for entry in streams {
            let spec = entry
                .get_ref()
                .clone()
                .into_spec(None)
                .map_err(|e| at(entry.span(), format!("stream: {e}")))?;
            if !seen.insert(spec.name.clone()) {
                let msg = format!("stream {:?} is declared twice", spec.name.as_str());
                return Err(at(entry.span(), msg));
            }
            self.streams.push((tenant.clone(), spec));
        }
        let mut seen = std::collections::HashSet::new();
        for entry in handlers {
            let h = entry.get_ref();
            sluice_broker::pipeline::handlers::HandlerStore::validate_ident(&h.name, &h.version)
                .map_err(|e| at(entry.span(), format!("handler: {e}")))?;
            if !seen.insert((h.name.clone(), h.version.clone())) {
                let msg = format!("handler {}@{} is declared twice", h.name, h.version);
                return Err(at(entry.span(), msg));
            }
            self.handlers.push((tenant.clone(), h.clone()));
        }
        let mut seen = std::collections::HashSet::new();
        let runners_max = self
            .tenants
            .get(&tenant)
            .and_then(|q| q.pipeline_runners_max);
        let mut runners = 0;
        for entry in pipelines {
            let spec = entry
                .get_ref()
                .clone()
                .into_spec(None)
                .map_err(|e| at(entry.span(), format!("pipeline: {e}")))?;
            if !seen.insert(spec.name.clone()) {
                let msg = format!("pipeline {:?} is declared twice", spec.name);
                return Err(at(entry.span(), msg));
            }
            runners += spec.runners;
            self.runners += spec.runners;
            if let Some(max) = runners_max.filter(|&max| runners > max) {
                let msg = format!(
                    "pipeline {:?} brings tenant {tenant}'s pipelines to {runners} runners, past its pipeline_runners_max of {max}",
                    spec.name
                );
                return Err(at(entry.span(), msg));
            }
            let node_max = sluice_broker::pipeline::RUNNERS_TOTAL_MAX;
            if self.runners > node_max {
                let msg = format!(
                    "pipeline {:?} brings the node's pipelines to {} runners, past its limit of {node_max}",
                    spec.name, self.runners
                );
                return Err(at(entry.span(), msg));
            }
            self.pipelines.push((tenant.clone(), spec));
        }
        Ok(())
    }
}

fn line_col(text: &str, byte: usize) -> (usize, usize) {
    let before = &text[..byte.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, col)
}

impl ConfigFile {
    /// Applies the file over the embedded default; `base` is the config
    /// file's directory, against which the users file is found.
    pub fn into_options_at(self, base: &Path) -> Result<NodeOptions, ConfigError> {
        let users = match &self.auth.users_file {
            Some(f) => Some(read_users(&base.join(f), &self.checked_tenants)?),
            None => None,
        };
        let allow_anonymous = self.auth.allow_anonymous.unwrap_or(users.is_none());
        let tls = match &self.mqtt.tls {
            Some(t) => {
                let read = |p: &Path| {
                    std::fs::read(base.join(p))
                        .map_err(|e| ConfigError(format!("{}: {e}", base.join(p).display())))
                };
                Some(sluice_broker::options::TlsOptions {
                    listen: t.listen,
                    cert_chain_pem: read(&t.cert)?,
                    key_pem: read(&t.key)?,
                })
            }
            None => None,
        };
        let handlers = self
            .checked_handlers
            .iter()
            .map(|(tenant, h)| {
                let file = base.join(&h.wasm);
                let wasm = std::fs::read(&file).map_err(|e| {
                    ConfigError(format!(
                        "handler {}@{}: {}: {e}",
                        h.name,
                        h.version,
                        file.display()
                    ))
                })?;
                Ok(sluice_broker::pipeline::HandlerDeploy {
                    tenant: tenant.clone(),
                    name: h.name.clone(),
                    version: h.version.clone(),
                    wasm,
                })
            })
            .collect::<Result<Vec<_>, ConfigError>>()?;
        let mut o = self.into_options();
        o.handlers = handlers;
        o.mqtt.tls = tls;
        o.auth = sluice_broker::auth::AuthOptions {
            users,
            allow_anonymous,
        };
        Ok(o)
    }

    /// Applies the file over the embedded default (no users file).
    pub fn into_options(self) -> NodeOptions {
        let mut o = NodeOptions::embedded_default();
        if let Some(d) = self.data_dir {
            o.data_dir = d;
        }
        if let Some(d) = self.retention_check {
            o.retention_check_ms = d.0;
        }
        if let Some(a) = self.http.listen {
            o.http_listen = a;
        }
        if let Some(b) = self.http.payload_bytes_max {
            o.limits.payload_bytes_max = b.0;
        }
        if let Some(n) = self.http.connections_max {
            o.limits.http_connections_max = n.max(1);
        }
        let m = self.mqtt;
        if let Some(a) = m.listen {
            o.mqtt_listen = a;
        }
        if let Some(n) = m.connections_max {
            o.mqtt.connections_max = n.max(1);
        }
        if let Some(b) = m.packet_bytes_max {
            o.mqtt.packet_bytes_max = b.0.clamp(64, 268_435_460) as usize;
        }
        if let Some(n) = m.receive_maximum {
            o.mqtt.receive_maximum = n.max(1);
        }
        if let Some(n) = m.topic_alias_maximum {
            o.mqtt.topic_alias_maximum = n;
        }
        if let Some(d) = m.keep_alive_max {
            o.mqtt.keep_alive_s_max = (d.0 / 1000).clamp(1, u64::from(u16::MAX)) as u16;
        }
        if let Some(d) = m.session_expiry_max {
            o.mqtt.session_expiry_s_max = (d.0 / 1000).min(u64::from(u32::MAX)) as u32;
        }
        if let Some(n) = m.session_queue_messages_max {
            o.mqtt.session_queue_messages_max = n.max(1);
        }
        if let Some(n) = m.session_stored_messages_max {
            o.mqtt.session_stored_messages_max = n.max(1);
        }
        if let Some(n) = m.inflight_messages_max {
            o.mqtt.inflight_messages_max = n.max(1);
        }
        if let Some(n) = m.subscriptions_per_client_max {
            o.mqtt.subscriptions_per_client_max = n.max(1);
        }
        if let Some(n) = m.retained_messages_max {
            o.mqtt.retained_messages_max = n.max(1);
        }
        if let Some(n) = m.publisher_wait_backlog_messages {
            o.mqtt.publisher_wait_backlog_messages = n;
        }
        if let Some(d) = m.publisher_wait_max {
            o.mqtt.publisher_wait_ms_max = d.0;
        }
        if let Some(d) = m.sys_interval {
            o.mqtt.sys_interval_ms = d.0;
        }
        o.mqtt.ws_listen = m.ws_listen;
        if let Some(n) = self.limits.streams_max {
            o.limits.streams_max = n;
        }
        if let Some(n) = self.limits.fetch_messages_max {
            o.limits.fetch_messages_max = n.max(1);
        }
        if let Some(b) = self.limits.fetch_bytes_max {
            o.limits.fetch_bytes_max = b.0 as usize;
        }
        if let Some(d) = self.limits.fetch_wait_max {
            o.limits.fetch_wait_ms_max = d.0;
        }
        if let Some(n) = self.limits.vault_tokens_max {
            o.limits.vault_tokens_max = n;
        }
        if let Some(b) = self.limits.meta_cache_bytes_max {
            o.limits.meta_cache_bytes_max = b.0 as usize;
        }
        if let Some(n) = self.limits.meta_queue_requests_max {
            o.limits.meta_queue_requests_max = n.max(2);
        }
        if let Some(n) = self.limits.meta_queue_requests_per_tenant_max {
            o.limits.meta_queue_requests_per_tenant_max = n.max(2);
        }
        // A share is a part of the node's queue, never more than all of it.
        o.limits.meta_queue_requests_per_tenant_max = o
            .limits
            .meta_queue_requests_per_tenant_max
            .min(o.limits.meta_queue_requests_max);
        o.streams = self.checked_streams;
        o.pipelines = self.checked_pipelines;
        o.tenant_quotas = self.checked_tenants;
        let w = self.wasm;
        if let Some(f) = w.fuel {
            o.wasm.fuel_enabled = f;
        }
        if let Some(d) = w.epoch_tick {
            o.wasm.epoch_tick_ms = d.0.max(1);
        }
        if let Some(n) = w.instances_max {
            o.wasm.instances_max = n.max(1);
        }
        if let Some(b) = w.memory_bytes_max_ceiling {
            o.wasm.memory_bytes_max_ceiling = b.0.max(64 << 10);
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<ConfigFile, String> {
        parse(Path::new("sluice.toml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn the_example_config_parses() {
        let text = include_str!("../../../sluice.example.toml");
        let cfg = check(text).unwrap();
        let o = cfg.into_options();
        assert!(!o.streams.is_empty());
    }

    #[test]
    fn errors_name_file_line_and_reason() {
        let e = check("[http]\nlisten = \"127.0.0.1:8080\"\npayload_bytes_max = \"lots\"\n")
            .unwrap_err();
        assert!(e.starts_with("sluice.toml:3:"), "{e}");
        assert!(e.contains("not a size"), "{e}");

        let e = check("data_dir = \"d\"\n[[streams]]\nname = \"s\"\nsubjects = [\"a/#/b\"]\n")
            .unwrap_err();
        assert!(
            e.starts_with("sluice.toml:2:") || e.starts_with("sluice.toml:3:"),
            "{e}"
        );
        assert!(e.contains("'#'"), "{e}");

        let e = check("[htp]\nlisten = \"x\"\n").unwrap_err();
        assert!(e.starts_with("sluice.toml:1:"), "{e}");
        assert!(e.contains("unknown field"), "{e}");

        let e = check("[[streams]]\nname = \"a\"\nsubjects = [\"x\"]\n[[streams]]\nname = \"a\"\nsubjects = [\"y\"]\n").unwrap_err();
        assert!(e.contains("declared twice"), "{e}");
    }
}

#[cfg(test)]
mod docs_tests {
    /// Keeps docs/configuration.md true: every key of the example config
    /// (which a test starts a node with) is documented there.
    #[test]
    fn every_example_key_is_documented() {
        let example = include_str!("../../../sluice.example.toml");
        let docs = include_str!("../../../docs/configuration.md");
        for line in example.lines() {
            let line = line.trim();
            if line.starts_with('#') || line.starts_with('[') || !line.contains('=') {
                continue;
            }
            let key = line.split('=').next().unwrap().trim();
            assert!(
                docs.contains(&format!("`{key}`")),
                "docs/configuration.md does not document `{key}`"
            );
        }
    }
}
