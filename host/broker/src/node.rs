//! The node: the registry of live streams of every tenant, the metadata store,
//! and the operations the listeners call — publish (route a message to every
//! stream whose subjects match it), create/update/delete a stream, and the
//! consumer-group operations. Listeners (HTTP now, MQTT later) translate
//! their protocol into these calls and nothing more.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use sluice_core::{GroupName, Message, StreamName, TenantId};
use sluice_log::StoredRecord;
use tokio::sync::Mutex;

use crate::meta::{Meta, MetaWrite};
use crate::metrics::NodeMetrics;
use crate::options::{NodeOptions, StreamSpec};
use crate::spec_doc::StreamDoc;
use crate::stream::{AppendAck, AppendError, Stream, stream_key};

/// Errors of node operations; each maps to one HTTP status and error code.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("stream {0:?} does not exist")]
    StreamNotFound(String),
    #[error("partition {partition} does not exist; stream {stream:?} has {count}")]
    PartitionNotFound {
        stream: String,
        partition: u32,
        count: u32,
    },
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error("stream {stream:?} is busy: {queued} appends are waiting; retry shortly")]
    Backpressure { stream: String, queued: usize },
    #[error("the node holds {0} streams already, its limit")]
    TooManyStreams(usize),
    #[error("tenant {tenant} publishes more than its quota of {limit}; retry shortly")]
    RateLimited {
        tenant: String,
        limit: crate::quota::RateRefusal,
    },
    #[error("{0}")]
    QuotaExceeded(String),
    #[error("{0}")]
    Storage(String),
    #[error("{0} does not exist")]
    NotFound(String),
}

impl From<AppendError> for NodeError {
    fn from(e: AppendError) -> Self {
        NodeError::Storage(e.to_string())
    }
}

impl From<sluice_log::LogError> for NodeError {
    fn from(e: sluice_log::LogError) -> Self {
        NodeError::Storage(e.to_string())
    }
}

impl From<crate::meta::MetaError> for NodeError {
    fn from(e: crate::meta::MetaError) -> Self {
        NodeError::Storage(e.to_string())
    }
}

/// One append of a publish, as the producer is told.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AppendResult {
    pub stream: String,
    pub partition: u32,
    pub offset: u64,
    pub duplicate: bool,
}

/// Appends queued on stream writers, not yet acknowledged.
pub struct PendingAppends {
    waits: Vec<(
        String,
        tokio::sync::oneshot::Receiver<Result<AppendAck, AppendError>>,
    )>,
}

impl PendingAppends {
    /// How many streams captured the message.
    pub fn len(&self) -> usize {
        self.waits.len()
    }

    pub fn is_empty(&self) -> bool {
        self.waits.is_empty()
    }

    /// Waits until every append is durable (per its stream's fsync policy).
    pub async fn wait(self) -> Result<Vec<AppendResult>, NodeError> {
        let mut out = Vec::with_capacity(self.waits.len());
        for (stream, rx) in self.waits {
            let AppendAck {
                partition,
                offset,
                duplicate,
            } = rx.await.map_err(|_| AppendError::Closed)??;
            out.push(AppendResult {
                stream,
                partition,
                offset,
                duplicate,
            });
        }
        Ok(out)
    }
}

/// Where a group starts reading, per partition, and what it got.
#[derive(Debug, Default)]
pub struct Fetched {
    pub messages: Vec<(u32, StoredRecord)>,
    /// Per partition, the offset to commit once these messages are processed.
    pub next_offsets: BTreeMap<u32, u64>,
}

/// Where to move a group.
#[derive(Debug, Clone, Copy)]
pub enum ResetTo {
    Earliest,
    Latest,
    Offset(u64),
    TimeMs(i64),
}

pub struct Node {
    pub options: NodeOptions,
    pub meta: Meta,
    pub metrics: Arc<NodeMetrics>,
    /// Live MQTT sessions, subscriptions and retained messages.
    pub router: Arc<crate::mqtt::Router>,
    pub mqtt_stats: Arc<crate::mqtt::ListenerStats>,
    pub auth: Arc<crate::auth::Authenticator>,
    /// Connections across every MQTT listener (`mqtt.connections_max`).
    pub mqtt_permits: Arc<tokio::sync::Semaphore>,
    /// Wasm pipelines, their handlers and the tenants' secrets.
    pub pipelines: crate::pipeline::Pipelines,
    pub(crate) quotas: crate::quota::Quotas,
    streams: RwLock<BTreeMap<(TenantId, StreamName), Arc<Stream>>>,
    /// Serialises stream creation and deletion; publishes never take it.
    admin: Mutex<()>,
    pub(crate) runtime: tokio::runtime::Handle,
    /// When the previous run of this data directory was last known up
    /// (`heartbeat`): where the streams' de-duplication windows stopped.
    down_since_ms: Option<i64>,
    /// Keeps the heartbeat going while the node lives.
    _heartbeat: Arc<()>,
}

impl Node {
    /// Opens the data directory, reopens every stored stream, then applies the
    /// streams declared in the options.
    pub async fn open(options: NodeOptions) -> anyhow::Result<Arc<Node>> {
        std::fs::create_dir_all(&options.data_dir)?;
        let trash = options.data_dir.join("trash");
        if trash.exists() {
            std::fs::remove_dir_all(&trash)?;
        }
        let down_since_ms = crate::heartbeat::last_alive_ms(&options.data_dir);
        let meta = Meta::open(
            &options.data_dir.join("meta.redb"),
            options.limits.meta_cache_bytes_max,
            options.limits.meta_queue_requests_max,
            options.limits.meta_queue_requests_per_tenant_max,
        )
        .map_err(|e| {
            anyhow::anyhow!(
                "{e} ({}; is another node using this data directory?)",
                options.data_dir.display()
            )
        })?;
        let node = Arc::new(Node {
            options: options.clone(),
            meta: meta.clone(),
            metrics: Arc::new(NodeMetrics::default()),
            router: Arc::new(crate::mqtt::Router::new(
                options.mqtt.session_stored_messages_max,
                crate::mqtt::Pacing {
                    backlog_messages_high: options.mqtt.publisher_wait_backlog_messages,
                    wait_max: std::time::Duration::from_millis(options.mqtt.publisher_wait_ms_max),
                },
            )),
            mqtt_stats: Arc::default(),
            mqtt_permits: Arc::new(tokio::sync::Semaphore::new(options.mqtt.connections_max)),
            auth: Arc::new(crate::auth::Authenticator::new(&options.auth)?),
            pipelines: crate::pipeline::Pipelines::new(
                &options.data_dir,
                meta.clone(),
                options.wasm.clone(),
            ),
            quotas: crate::quota::Quotas::new(options.tenant_quotas.clone()),
            streams: RwLock::new(BTreeMap::new()),
            admin: Mutex::new(()),
            runtime: tokio::runtime::Handle::current(),
            down_since_ms,
            _heartbeat: crate::heartbeat::spawn(&options.data_dir)?,
        });
        for (key, doc) in node.meta.streams()? {
            let (tenant, name) = key
                .split_once('/')
                .ok_or_else(|| anyhow::anyhow!("bad stream key {key:?} in metadata"))?;
            let doc: StreamDoc = serde_json::from_slice(&doc)?;
            let spec = doc
                .into_spec(Some(name))
                .map_err(|e| anyhow::anyhow!("stored stream {key}: {e}"))?;
            let tenant = TenantId::new(tenant)?;
            let n = node.clone();
            let stream = tokio::task::spawn_blocking(move || n.open_stream(tenant, spec)).await??;
            node.insert(stream);
        }
        let retained = node.meta.retained()?;
        node.restore_mqtt_sessions()?;
        node.router.load_retained(
            retained
                .iter()
                .filter_map(|(k, v)| crate::mqtt::retained_from_value(k, v))
                .collect(),
        );
        for (tenant, spec) in &options.streams {
            node.put_stream(tenant, spec.clone()).await.map_err(|e| {
                anyhow::anyhow!(
                    "stream {:?} of tenant {tenant} from the configuration: {e}",
                    spec.name.as_str()
                )
            })?;
        }
        node.start_pipelines(&options.pipelines, &options.handlers)
            .await?;
        Ok(node)
    }

    fn stream_dir(&self, tenant: &TenantId, name: &StreamName) -> PathBuf {
        self.options
            .data_dir
            .join("streams")
            .join(tenant.as_str())
            .join(name.as_str())
    }

    fn open_stream(&self, tenant: TenantId, spec: StreamSpec) -> anyhow::Result<Arc<Stream>> {
        let dir = self.stream_dir(&tenant, &spec.name);
        Stream::open(
            tenant,
            spec,
            &dir,
            self.metrics.clone(),
            &self.runtime,
            self.down_since_ms,
        )
    }

    fn insert(&self, stream: Arc<Stream>) {
        let key = (stream.tenant.clone(), stream.spec.name.clone());
        self.streams
            .write()
            .expect("streams lock")
            .insert(key, stream);
    }

    pub fn stream(&self, tenant: &TenantId, name: &str) -> Result<Arc<Stream>, NodeError> {
        let name_ok =
            StreamName::new(name).map_err(|_| NodeError::StreamNotFound(name.to_owned()))?;
        self.streams
            .read()
            .expect("streams lock")
            .get(&(tenant.clone(), name_ok))
            .cloned()
            .ok_or_else(|| NodeError::StreamNotFound(name.to_owned()))
    }

    pub fn streams(&self, tenant: &TenantId) -> Vec<Arc<Stream>> {
        // The map is ordered by tenant first: walk this tenant's range only,
        // so no tenant's publishes pay for another's streams.
        let from = (tenant.clone(), StreamName::smallest());
        self.streams
            .read()
            .expect("streams lock")
            .range(from..)
            .take_while(|((t, _), _)| t == tenant)
            .map(|(_, s)| s.clone())
            .collect()
    }

    /// Creates the stream, or updates the settings that may change (subjects
    /// and retention). Returns whether it was created.
    pub async fn put_stream(
        self: &Arc<Self>,
        tenant: &TenantId,
        spec: StreamSpec,
    ) -> Result<bool, NodeError> {
        let _admin = self.admin.lock().await;
        let doc = serde_json::to_vec(&StreamDoc::from_spec(&spec)).expect("stream doc serialises");
        let key = stream_key(tenant, spec.name.as_str());
        if let Ok(existing) = self.stream(tenant, spec.name.as_str()) {
            let old = &existing.spec;
            let fixed = [
                ("partitions", old.partitions != spec.partitions),
                ("fsync", old.fsync != spec.fsync),
                (
                    "segment_bytes",
                    old.segment_bytes_max != spec.segment_bytes_max,
                ),
                (
                    "segment_age",
                    old.segment_age_ms_max != spec.segment_age_ms_max,
                ),
                ("dedup_window", old.dedup_window_ms != spec.dedup_window_ms),
                ("dedup_ids_max", old.dedup_ids_max != spec.dedup_ids_max),
                (
                    "queue_messages_max",
                    old.queue_messages_max != spec.queue_messages_max,
                ),
            ];
            if let Some((field, _)) = fixed.iter().find(|(_, changed)| *changed) {
                return Err(NodeError::Conflict(format!(
                    "stream {:?} exists and its `{field}` cannot change; delete and recreate it",
                    spec.name.as_str()
                )));
            }
            self.meta
                .apply(vec![MetaWrite::PutStream { key, doc }])
                .await?;
            let mut m = existing.mutable.write().expect("spec lock");
            m.subjects = spec.subjects.clone();
            m.retention = sluice_log::Retention {
                max_age_ms: spec.retention_max_age_ms,
                max_bytes: spec.retention_max_bytes,
            };
            return Ok(false);
        }
        let count = self.streams.read().expect("streams lock").len();
        if count >= self.options.limits.streams_max {
            return Err(NodeError::TooManyStreams(count));
        }
        if let Some(max) = self.quotas.streams_max(tenant) {
            let held = self.streams(tenant).len();
            if held >= max {
                return Err(NodeError::QuotaExceeded(format!(
                    "tenant {tenant} holds {held} streams, its quota (`streams_max`)"
                )));
            }
        }
        let n = self.clone();
        let t = tenant.clone();
        let stream = tokio::task::spawn_blocking(move || n.open_stream(t, spec))
            .await
            .map_err(|e| NodeError::Storage(e.to_string()))?
            .map_err(|e| NodeError::Storage(e.to_string()))?;
        if let Err(e) = self
            .meta
            .apply(vec![MetaWrite::PutStream { key, doc }])
            .await
        {
            tokio::task::spawn_blocking(move || stream.shutdown())
                .await
                .ok();
            return Err(e.into());
        }
        self.insert(stream);
        Ok(true)
    }

    /// Deletes a stream, its data and its groups' offsets.
    pub async fn delete_stream(&self, tenant: &TenantId, name: &str) -> Result<(), NodeError> {
        let _admin = self.admin.lock().await;
        let stream = self.stream(tenant, name)?;
        if let Some(p) = self.pipelines.uses_stream(tenant, name) {
            return Err(NodeError::Conflict(format!(
                "stream {name:?} is used by pipeline {p:?}; delete the pipeline first"
            )));
        }
        let key = stream.key();
        // Forget it in metadata first: if we crash after this, the files are
        // orphaned (and cleaned below or on the next delete), never resurrected.
        self.meta
            .apply(vec![
                MetaWrite::DeleteStream { key: key.clone() },
                MetaWrite::DeleteOffsets {
                    stream: key,
                    group: None,
                },
            ])
            .await?;
        self.streams
            .write()
            .expect("streams lock")
            .remove(&(tenant.clone(), stream.spec.name.clone()));
        let trash = self.options.data_dir.join("trash");
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            stream.shutdown();
            std::fs::create_dir_all(&trash)?;
            let target = trash.join(format!(
                "{}-{}-{}",
                stream.tenant,
                stream.name(),
                crate::stream::now_ms()
            ));
            std::fs::rename(&stream.dir, &target)?;
            std::fs::remove_dir_all(&target)
        })
        .await
        .map_err(|e| NodeError::Storage(e.to_string()))?
        .map_err(|e| NodeError::Storage(format!("removing files: {e}")))?;
        Ok(())
    }

    /// Appends `msg` to every stream of `tenant` whose subjects match its
    /// topic and returns once every append is acknowledged (durable under
    /// each stream's fsync policy). Either every matching stream takes the
    /// message or, when one is full, none does.
    pub async fn publish(
        &self,
        tenant: &TenantId,
        msg: Message,
    ) -> Result<Vec<AppendResult>, NodeError> {
        self.begin_publish(tenant, &msg)?.wait().await
    }

    /// Queues `msg` on every matching stream's writer without waiting for the
    /// appends; [`PendingAppends::wait`] waits for them. Refuses (and queues
    /// nothing) when one matching stream is full.
    pub fn begin_publish(
        &self,
        tenant: &TenantId,
        msg: &Message,
    ) -> Result<PendingAppends, NodeError> {
        let targets: Vec<Arc<Stream>> = self
            .streams(tenant)
            .into_iter()
            .filter(|s| s.matches(&msg.topic))
            .collect();
        let mut permits = Vec::with_capacity(targets.len());
        for s in &targets {
            match s.try_reserve() {
                Ok(p) => permits.push(p),
                Err(_) => {
                    self.metrics
                        .publishes_rejected_backpressure
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    return Err(NodeError::Backpressure {
                        stream: s.name().to_owned(),
                        queued: s.spec.queue_messages_max,
                    });
                }
            }
        }
        // Taken once the streams have room: a publish refused for
        // back-pressure (and retried) does not spend the tenant's allowance.
        self.quotas
            .take_publish(tenant, msg.payload.len())
            .map_err(|limit| NodeError::RateLimited {
                tenant: tenant.to_string(),
                limit,
            })?;
        let mut waits = Vec::with_capacity(targets.len());
        for (s, permit) in targets.iter().zip(permits) {
            let (cmd, rx) = s.append_cmd(msg);
            permit.send(cmd);
            waits.push((s.name().to_owned(), rx));
        }
        Ok(PendingAppends { waits })
    }

    /// Hands `msg` to live MQTT subscribers. The returned future stores the
    /// copies held for persistent sessions; await it before acknowledging the
    /// publisher. A subscriber that has fallen behind comes back too: the
    /// publisher should wait for it ([`crate::mqtt::Congested::drained`])
    /// before taking its next message. Only `tenant`'s subscribers can get
    /// it (`mqtt::namespace`).
    pub fn route_live(
        &self,
        tenant: &TenantId,
        msg: &Message,
        qos: sluice_mqtt::QoS,
        retain: bool,
        publisher: Option<&str>,
    ) -> (
        usize,
        impl std::future::Future<Output = Result<(), NodeError>> + Send + 'static,
        Option<crate::mqtt::Congested>,
    ) {
        let inside = mqtt_view(tenant, msg);
        let routed = inside.map(|msg| {
            self.router.route(&msg, qos, retain, publisher, |held| {
                let writes: Vec<MetaWrite> = held
                    .iter()
                    .map(|(client, seq, value)| MetaWrite::PutQueued {
                        client: client.clone(),
                        seq: *seq,
                        value: value.clone(),
                    })
                    .collect();
                // Queued now, under the router's lock, so no acknowledgement's
                // delete can overtake it; awaited by whoever acknowledges the publisher.
                (!writes.is_empty()).then(|| self.meta_for(tenant).enqueue(writes))
            })
        });
        let (subscribers, stored, congested) = match routed {
            Some(r) => (r.subscribers, r.stored, r.congested),
            None => (0, None, None),
        };
        let store = async move {
            if let Some(s) = stored {
                s.await?;
            }
            Ok(())
        };
        (subscribers, store, congested)
    }

    /// Brings persistent MQTT sessions back from the metadata store.
    fn restore_mqtt_sessions(&self) -> anyhow::Result<()> {
        let now = std::time::Instant::now();
        let now_ms = crate::stream::now_ms();
        let mut held: std::collections::HashMap<String, Vec<sluice_mqtt::Delivery>> =
            std::collections::HashMap::new();
        for (client, seq, value) in self.meta.mqtt_queue()? {
            match crate::mqtt::store::decode_delivery(&value, seq, now, now_ms) {
                Some(d) => held.entry(client).or_default().push(d),
                None => tracing::error!(client, seq, "unreadable held MQTT message; skipped"),
            }
        }
        let mut received: std::collections::HashMap<String, Vec<u16>> =
            std::collections::HashMap::new();
        for (client, id) in self.meta.mqtt_qos2_received()? {
            received.entry(client).or_default().push(id);
        }
        let mut expired = Vec::new();
        for (client, record) in self.meta.mqtt_sessions()? {
            let Ok(record) = serde_json::from_slice::<crate::mqtt::store::StoredSession>(&record)
            else {
                tracing::error!(client, "unreadable MQTT session record; dropped");
                expired.push(client);
                continue;
            };
            // A session whose client was connected at the crash went offline then.
            let offline_ms = record
                .disconnected_ms
                .map_or(0, |d| (now_ms - d).max(0) as u64);
            if offline_ms >= u64::from(record.expiry_s) * 1000 {
                expired.push(client);
                continue;
            }
            let messages = held.remove(&client).unwrap_or_default();
            let qos2_received = received.remove(&client).unwrap_or_default();
            self.router.restore(
                &client,
                &record,
                messages,
                qos2_received,
                std::time::Duration::from_millis(offline_ms),
            );
        }
        // What is left belongs to no stored session.
        expired.extend(held.into_keys());
        expired.extend(received.into_keys());
        if !expired.is_empty() {
            let meta = self.meta.clone();
            tokio::spawn(async move {
                let writes = expired
                    .into_iter()
                    .map(|client| MetaWrite::DeleteSession { client })
                    .collect();
                if let Err(e) = meta.apply(writes).await {
                    tracing::error!(error = %e, "could not drop expired MQTT sessions");
                }
            });
        }
        Ok(())
    }

    /// Refuses a retained publish that would store a new retained message
    /// past the node's `retained_messages_max` or its tenant's quota.
    /// Replacing or clearing one is always allowed. Checked before the
    /// publish is captured, so a refused one is refused whole; publishes
    /// racing for the last place may each pass it. At a limit, expired
    /// retained messages are deleted first.
    pub fn check_retain(&self, tenant: &TenantId, msg: &Message) -> Result<(), NodeError> {
        use crate::mqtt::RetainRoom;
        if msg.payload.is_empty() {
            return Ok(());
        }
        let Some(inside) = crate::mqtt::namespace::topic(tenant, &msg.topic) else {
            return Ok(());
        };
        let tenant_max = self.quotas.retained_messages_max(tenant);
        let node_max = self.options.mqtt.retained_messages_max;
        let (room, expired) = self
            .router
            .may_retain(inside.as_str(), tenant_max, node_max);
        let deletes: Vec<MetaWrite> = expired
            .iter()
            .filter_map(|t| retained_key_of(t))
            .map(|key| MetaWrite::DeleteRetained { key })
            .collect();
        if !deletes.is_empty() {
            // Durable in the background: a restart before then loads them
            // again, and the next sweep removes them again.
            drop(self.meta.enqueue(deletes));
        }
        match room {
            RetainRoom::Yes => Ok(()),
            RetainRoom::TenantFull => Err(NodeError::QuotaExceeded(format!(
                "tenant {tenant} holds {} retained messages, its quota (`retained_messages_max`)",
                tenant_max.unwrap_or_default()
            ))),
            RetainRoom::NodeFull => Err(NodeError::QuotaExceeded(format!(
                "the node holds {node_max} retained messages (`retained_messages_max`)"
            ))),
        }
    }

    /// Stores (or, with an empty payload, clears) the retained message of
    /// `msg`'s topic: current for new subscribers at once, durable when the
    /// returned future resolves.
    pub fn retain(
        &self,
        tenant: &TenantId,
        msg: &Message,
        qos: sluice_mqtt::QoS,
    ) -> impl std::future::Future<Output = Result<(), NodeError>> + Send + 'static {
        let key = retained_key(tenant, msg.topic.as_str());
        // The router's name for the topic, which the stored copy keeps so
        // that a restart hands it back as is.
        let inside = mqtt_view(tenant, msg);
        let write = match &inside {
            Some(m) if !m.payload.is_empty() => MetaWrite::PutRetained {
                key,
                value: crate::mqtt::retained_value(m, qos),
            },
            _ => MetaWrite::DeleteRetained { key },
        };
        // Memory and disk both take retained messages in arrival order: the
        // router now, the store's queue now (the caller awaits durability).
        if let Some(m) = &inside {
            self.router.retain(m, qos);
        }
        let queued = self.meta_for(tenant).enqueue(vec![write]);
        async move { queued.await.map_err(NodeError::from) }
    }

    /// The metadata store as `tenant`'s traffic writes to it, within the
    /// tenant's share of the writer's queue (`meta::TenantMeta`).
    pub fn meta_for(&self, tenant: &TenantId) -> crate::meta::TenantMeta {
        self.meta.tenant(tenant.as_str())
    }

    /// Committed offsets of `group`, with a partition's log start where the
    /// group has committed nothing (new groups start at the earliest message),
    /// clamped into what the log holds now.
    pub fn group_positions(
        &self,
        stream: &Stream,
        group: &GroupName,
    ) -> Result<Vec<u64>, NodeError> {
        let committed = self
            .meta
            .offsets(&stream.key())?
            .remove(group.as_str())
            .unwrap_or_default();
        Ok(stream
            .partitions
            .iter()
            .enumerate()
            .map(|(p, h)| {
                let start = h.start_offset();
                committed
                    .get(&(p as u32))
                    .copied()
                    .unwrap_or(start)
                    .clamp(start, h.visible_end())
            })
            .collect())
    }

    /// The next messages of `group` after its committed offsets, waiting up to
    /// `wait` for some to arrive. Fetching does not move the group: commit does.
    pub async fn fetch(
        &self,
        stream: Arc<Stream>,
        group: &GroupName,
        max_messages: usize,
        wait: Duration,
    ) -> Result<Fetched, NodeError> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut changed = stream.changed.subscribe();
        loop {
            changed.borrow_and_update();
            let positions = self.group_positions(&stream, group)?;
            let limits = self.options.limits.clone();
            let s = stream.clone();
            let fetched = tokio::task::spawn_blocking(move || {
                let all: Vec<u32> = (0..positions.len() as u32).collect();
                read_round_robin(
                    &s,
                    &positions,
                    &all,
                    max_messages.min(limits.fetch_messages_max),
                    limits.fetch_bytes_max,
                )
            })
            .await
            .map_err(|e| NodeError::Storage(e.to_string()))??;
            if !fetched.messages.is_empty() || tokio::time::Instant::now() >= deadline {
                return Ok(fetched);
            }
            if tokio::time::timeout_at(deadline, changed.changed())
                .await
                .is_err()
            {
                return Ok(fetched);
            }
        }
    }

    /// Durably records `offsets` (partition → next offset to read) for `group`.
    pub async fn commit(
        &self,
        stream: &Stream,
        group: &GroupName,
        offsets: &BTreeMap<u32, u64>,
    ) -> Result<(), NodeError> {
        let mut writes = Vec::with_capacity(offsets.len());
        for (&p, &offset) in offsets {
            let handle = stream
                .partitions
                .get(p as usize)
                .ok_or(NodeError::PartitionNotFound {
                    stream: stream.name().to_owned(),
                    partition: p,
                    count: stream.spec.partitions,
                })?;
            let end = handle.visible_end();
            if offset > end {
                return Err(NodeError::Invalid(format!(
                    "offset {offset} of partition {p} is past its end {end}"
                )));
            }
            writes.push(MetaWrite::CommitOffset {
                stream: stream.key(),
                group: group.to_string(),
                partition: p,
                offset,
            });
        }
        self.meta_for(&stream.tenant).apply(writes).await?;
        Ok(())
    }

    /// Moves every partition of `group` to `to`.
    pub async fn reset(
        &self,
        stream: Arc<Stream>,
        group: &GroupName,
        to: ResetTo,
    ) -> Result<BTreeMap<u32, u64>, NodeError> {
        let s = stream.clone();
        let offsets =
            tokio::task::spawn_blocking(move || -> Result<BTreeMap<u32, u64>, NodeError> {
                let mut out = BTreeMap::new();
                for (p, h) in s.partitions.iter().enumerate() {
                    let (start, end) = (h.start_offset(), h.visible_end());
                    let o = match to {
                        ResetTo::Earliest => start,
                        ResetTo::Latest => end,
                        ResetTo::Offset(o) => o.clamp(start, end),
                        ResetTo::TimeMs(t) => s.offset_for_time(p as u32, t)?.clamp(start, end),
                    };
                    out.insert(p as u32, o);
                }
                Ok(out)
            })
            .await
            .map_err(|e| NodeError::Storage(e.to_string()))??;
        self.commit(&stream, group, &offsets).await?;
        Ok(offsets)
    }

    pub async fn delete_group(&self, stream: &Stream, group: &GroupName) -> Result<(), NodeError> {
        self.meta
            .apply(vec![MetaWrite::DeleteOffsets {
                stream: stream.key(),
                group: Some(group.to_string()),
            }])
            .await?;
        Ok(())
    }

    /// Runs retention over every stream once. Blocking.
    pub fn enforce_retention(&self) {
        let all: Vec<Arc<Stream>> = self
            .streams
            .read()
            .expect("streams lock")
            .values()
            .cloned()
            .collect();
        let now = crate::stream::now_ms();
        for s in all {
            s.enforce_retention(now);
        }
    }

    /// Stops every pipeline, then every writer after it has synced what it
    /// holds. Blocking.
    pub fn shutdown(&self) {
        self.pipelines.stop_all();
        let all: Vec<Arc<Stream>> =
            std::mem::take(&mut *self.streams.write().expect("streams lock"))
                .into_values()
                .collect();
        for s in all {
            s.shutdown();
        }
    }
}

/// Reads from each of `partitions` in turn, from its position in
/// `positions` (indexed by partition), so one busy partition cannot starve
/// the others of a fetch.
pub(crate) fn read_round_robin(
    stream: &Stream,
    positions: &[u64],
    partitions: &[u32],
    max_messages: usize,
    max_bytes: usize,
) -> Result<Fetched, NodeError> {
    let mut fetched = Fetched::default();
    let per_partition = max_messages.div_ceil(partitions.len().max(1)).max(1);
    let mut bytes = 0;
    for &p in partitions {
        let from = positions[p as usize];
        fetched.next_offsets.insert(p, from);
        if fetched.messages.len() >= max_messages || bytes >= max_bytes {
            continue;
        }
        let room = per_partition.min(max_messages - fetched.messages.len());
        let records = stream.read(p, from, room, max_bytes - bytes)?;
        if let Some(last) = records.last() {
            fetched.next_offsets.insert(p, last.offset + 1);
        }
        for r in records {
            bytes += r.value.len();
            fetched.messages.push((p, r));
        }
    }
    Ok(fetched)
}

/// The metadata store's key of a retained message: its tenant and its
/// topic as the tenant writes it.
fn retained_key(tenant: &TenantId, topic: &str) -> String {
    format!("{tenant}/{topic}")
}

/// [`retained_key`] from the router's name for the topic.
fn retained_key_of(internal: &str) -> Option<String> {
    let tenant = crate::mqtt::namespace::tenant_of(internal)?;
    Some(retained_key(
        &tenant,
        crate::mqtt::namespace::external_topic(internal),
    ))
}

/// `msg` as the MQTT router knows it: the default tenant's as is, another
/// tenant's under its prefix (`mqtt::namespace`); `None` when the prefix
/// makes the topic too deep to route.
fn mqtt_view<'a>(tenant: &TenantId, msg: &'a Message) -> Option<std::borrow::Cow<'a, Message>> {
    use std::borrow::Cow;
    Some(match crate::mqtt::namespace::topic(tenant, &msg.topic)? {
        Cow::Borrowed(_) => Cow::Borrowed(msg),
        Cow::Owned(topic) => Cow::Owned(Message {
            topic,
            ..msg.clone()
        }),
    })
}
