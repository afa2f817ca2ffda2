//! Plain option structs the broker is configured with. Only the `sluice`
//! binary knows the config file's format; it validates the file and converts
//! it into these, so the broker never sees TOML and every value here is
//! already checked.

use std::net::SocketAddr;
use std::path::PathBuf;

use sluice_core::{StreamName, TenantId, TopicFilter};

/// Everything a node needs to start.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// Where the logs, the metadata database and `ports.json` live.
    pub data_dir: PathBuf,
    pub http_listen: SocketAddr,
    /// Reserved for the MQTT listener; bound now so the port is ours and
    /// reported in `ports.json`.
    pub mqtt_listen: SocketAddr,
    pub limits: Limits,
    pub mqtt: MqttOptions,
    /// Users, passwords and ACLs (MQTT today).
    pub auth: crate::auth::AuthOptions,
    /// Streams declared in the config file, with their tenant: created at
    /// start-up when missing, updated when their mutable settings differ.
    pub streams: Vec<(TenantId, StreamSpec)>,
    /// How often retention runs over every partition, in milliseconds.
    pub retention_check_ms: u64,
    /// The Wasm runtime's node-wide settings (`cache_dir` defaults to `data_dir/wasm-cache`).
    pub wasm: sluice_wasm::RuntimeConfig,
    /// Handler versions declared in the config file, deployed at start-up.
    pub handlers: Vec<crate::pipeline::HandlerDeploy>,
    /// Pipelines declared in the config file, with their tenant: created or
    /// reloaded at start-up.
    pub pipelines: Vec<(TenantId, crate::pipeline::spec::PipelineSpec)>,
    /// Quotas of the tenants that have any.
    pub tenant_quotas: std::collections::HashMap<TenantId, crate::quota::TenantQuota>,
}

/// Node-wide limits, each named with its unit.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest message payload accepted over HTTP (413 beyond).
    pub payload_bytes_max: u64,
    /// Concurrent HTTP connections; further clients wait in the accept queue.
    pub http_connections_max: usize,
    /// Streams per node (each has a writer thread).
    pub streams_max: usize,
    /// Messages a consumer fetch or replay may return at once.
    pub fetch_messages_max: usize,
    /// Bytes a consumer fetch or replay may return at once (at least one message is always returned).
    pub fetch_bytes_max: usize,
    /// Longest long-poll a consumer may ask for, in milliseconds.
    pub fetch_wait_ms_max: u64,
    /// Tokens the vault keeps per tenant; `tokenize` is refused beyond.
    pub vault_tokens_max: u64,
    /// Bytes of the metadata store's pages kept in memory (redb's cache).
    pub meta_cache_bytes_max: usize,
    /// Metadata writes queued for the writer thread at which publishers
    /// wait for it to catch up (to half).
    pub meta_queue_requests_max: usize,
    /// A tenant's share of that queue: its own writes queued at which its
    /// publishers wait (to half), whatever the others do.
    pub meta_queue_requests_per_tenant_max: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            payload_bytes_max: 1 << 20,
            http_connections_max: 1024,
            streams_max: 256,
            fetch_messages_max: 1000,
            fetch_bytes_max: 8 << 20,
            fetch_wait_ms_max: 30_000,
            vault_tokens_max: 10_000_000,
            meta_cache_bytes_max: 64 << 20,
            meta_queue_requests_max: 4096,
            meta_queue_requests_per_tenant_max: 1024,
        }
    }
}

impl NodeOptions {
    /// The embedded default: loopback listeners, `./sluice-data`, no streams.
    pub fn embedded_default() -> Self {
        Self {
            data_dir: PathBuf::from("sluice-data"),
            http_listen: "127.0.0.1:8080".parse().expect("literal address"),
            mqtt_listen: "127.0.0.1:1883".parse().expect("literal address"),
            limits: Limits::default(),
            mqtt: MqttOptions::default(),
            auth: crate::auth::AuthOptions::default(),
            streams: Vec::new(),
            retention_check_ms: 30_000,
            wasm: sluice_wasm::RuntimeConfig::default(),
            handlers: Vec::new(),
            pipelines: Vec::new(),
            tenant_quotas: Default::default(),
        }
    }
}

/// The MQTT listener's limits and promises.
#[derive(Debug, Clone)]
pub struct MqttOptions {
    /// Concurrent MQTT connections; more wait in the accept queue.
    pub connections_max: usize,
    /// Largest packet accepted from a client (and announced in CONNACK).
    pub packet_bytes_max: usize,
    /// Unacknowledged QoS 1/2 publishes a client may have in flight towards us.
    pub receive_maximum: u16,
    /// Topic aliases a client may use towards us.
    pub topic_alias_maximum: u16,
    /// Keep-alive imposed on clients that ask for none or more, in seconds.
    pub keep_alive_s_max: u16,
    /// Longest session expiry granted, in seconds (3.1.1 persistent sessions get this).
    pub session_expiry_s_max: u32,
    /// Messages queued per connection (mailbox and QoS 1/2 queue) before drops are counted.
    pub session_queue_messages_max: usize,
    /// Unacknowledged QoS 1/2 messages a persistent session holds on disk;
    /// newer ones are dropped and counted.
    pub session_stored_messages_max: usize,
    /// QoS 1/2 messages in flight to one client, at most (the client's
    /// Receive Maximum can only lower it).
    pub inflight_messages_max: u16,
    /// Subscriptions one session may hold; more get SUBACK 0x97. Bounds the
    /// subscription tree's memory and the copies one publish can make.
    pub subscriptions_per_client_max: usize,
    /// Retained messages the node holds (memory and metadata store); a
    /// retained publish to a new topic beyond it is refused.
    pub retained_messages_max: usize,
    /// A subscriber's backlog (mailbox and queue, in messages) at which its
    /// publishers stop reading until it has drained to half; 0 = never.
    pub publisher_wait_backlog_messages: usize,
    /// The longest a publisher waits for one subscriber, in milliseconds;
    /// a subscriber that has not drained by then is not waited for again
    /// until it has.
    pub publisher_wait_ms_max: u64,
    /// How often `$SYS/` statistics are published, in milliseconds (0 = never).
    pub sys_interval_ms: u64,
    /// MQTT over TLS, when configured.
    pub tls: Option<TlsOptions>,
    /// MQTT over WebSocket (subprotocol `mqtt`), when configured.
    pub ws_listen: Option<SocketAddr>,
}

/// A TLS listener: its address and its certificate chain and key, in PEM.
#[derive(Clone)]
pub struct TlsOptions {
    pub listen: SocketAddr,
    pub cert_chain_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

impl std::fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a private key.
        f.debug_struct("TlsOptions")
            .field("listen", &self.listen)
            .finish_non_exhaustive()
    }
}

impl Default for MqttOptions {
    fn default() -> Self {
        Self {
            connections_max: 10_000,
            packet_bytes_max: 1 << 20,
            receive_maximum: 1024,
            topic_alias_maximum: 64,
            keep_alive_s_max: 3600,
            session_expiry_s_max: 7 * 86_400,
            session_queue_messages_max: 10_000,
            session_stored_messages_max: 1_000_000,
            inflight_messages_max: 1024,
            subscriptions_per_client_max: 1000,
            retained_messages_max: 1_000_000,
            publisher_wait_backlog_messages: 1000,
            publisher_wait_ms_max: 100,
            sys_interval_ms: 10_000,
            tls: None,
            ws_listen: None,
        }
    }
}

/// When an append counts as durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FsyncPolicy {
    /// Acknowledge only after fdatasync (group commit shares one sync among
    /// every producer waiting at that moment). The default.
    Always,
    /// Acknowledge once written to the OS; sync at most this many ms later.
    /// A crash of the machine (not of the process) can lose that window.
    IntervalMs(u64),
    /// Never sync explicitly; the OS writes back when it likes.
    Never,
}

/// A stream's definition, as stored in metadata and shown by the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSpec {
    pub name: StreamName,
    pub subjects: Vec<TopicFilter>,
    pub partitions: u32,
    pub retention_max_age_ms: Option<u64>,
    pub retention_max_bytes: Option<u64>,
    pub fsync: FsyncPolicy,
    pub segment_bytes_max: u64,
    pub segment_age_ms_max: u64,
    /// How long a `Sluice-Msg-Id` is remembered for de-duplication.
    pub dedup_window_ms: u64,
    /// How many ids the window holds at most; the oldest are forgotten first.
    pub dedup_ids_max: usize,
    /// Appends waiting for this stream's writer before producers get 429.
    pub queue_messages_max: usize,
}

/// The most partitions a stream may have.
pub const PARTITIONS_MAX: u32 = 1024;

impl StreamSpec {
    /// A spec with production defaults for everything but name and subjects.
    pub fn new(name: StreamName, subjects: Vec<TopicFilter>) -> Self {
        Self {
            name,
            subjects,
            partitions: 1,
            retention_max_age_ms: None,
            retention_max_bytes: None,
            fsync: FsyncPolicy::Always,
            segment_bytes_max: 64 << 20,
            segment_age_ms_max: 24 * 3_600_000,
            dedup_window_ms: 120_000,
            dedup_ids_max: 100_000,
            queue_messages_max: 10_000,
        }
    }
}
