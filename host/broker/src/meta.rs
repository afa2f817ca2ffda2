//! The metadata store: stream definitions, committed group offsets, MQTT
//! sessions (with their held messages and QoS 2 ids) and retained messages,
//! deployed handlers, pipelines, tenant secrets, the token vault and the
//! admin audit log, in redb. Messages never come here (they live in the
//! log); this is the small, mutable state around them. Writes go through one
//! thread that coalesces whatever is waiting into a single redb transaction,
//! so a hundred groups committing at once cost one commit, not a hundred.
//! That thread is shared by every tenant, so each tenant has its own share
//! of its queue ([`TenantMeta`]): a tenant flooding it waits for its own
//! writes, not the others.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

use futures_util::FutureExt;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::{mpsc, oneshot};

use crate::drain::Drain;

/// Stream definitions: key `tenant/stream`, value the JSON [`crate::spec_doc::StreamDoc`].
const STREAMS: TableDefinition<&str, &[u8]> = TableDefinition::new("streams");
/// Committed offsets: key `tenant/stream \0 group \0 partition(10 digits)`, value the next offset to read.
const OFFSETS: TableDefinition<&str, u64> = TableDefinition::new("group_offsets");

/// Retained MQTT messages: key `tenant/topic`, value `qos u8, timestamp i64 LE, key, envelope` (see `retained_value`).
const RETAINED: TableDefinition<&str, &[u8]> = TableDefinition::new("retained");

/// Persistent MQTT sessions: key client id, value JSON (`mqtt::store::StoredSession`).
const MQTT_SESSIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("mqtt_sessions");
/// Messages held for persistent MQTT sessions: key `client \0 seq(20 digits)`, value `mqtt::store` encoding.
const MQTT_QUEUE: TableDefinition<&str, &[u8]> = TableDefinition::new("mqtt_queue");
/// QoS 2 packet ids a persistent session acknowledged with PUBREC and whose
/// PUBREL has not come: key `client \0 id(5 digits)`, an empty value. They
/// let a resend after a restart be recognised as one, never delivered twice.
const MQTT_QOS2_IN: TableDefinition<&str, &[u8]> = TableDefinition::new("mqtt_qos2_in");

/// Small documents keyed by name, one table each (see [`Table`]).
const PIPELINES: TableDefinition<&str, &[u8]> = TableDefinition::new("pipelines");
const HANDLERS: TableDefinition<&str, &[u8]> = TableDefinition::new("handlers");
const SECRETS: TableDefinition<&str, &[u8]> = TableDefinition::new("tenant_secrets");
const TOKENS: TableDefinition<&str, &[u8]> = TableDefinition::new("token_vault");
const AUDIT: TableDefinition<&str, &[u8]> = TableDefinition::new("admin_audit");

/// The tables of small named documents, written with [`MetaWrite::PutItem`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// Key `tenant/pipeline`, value the JSON `PipelineDoc`.
    Pipelines,
    /// Key `tenant/handler/version`, value the JSON `HandlerRecord`.
    Handlers,
    /// Key tenant, value its 32-byte pseudonymisation secret.
    Secrets,
    /// Key `tenant/token`, value the JSON `vault::Entry` it stands for.
    Tokens,
    /// Key `time(20 digits) \0 random`, value the JSON `vault::AuditRecord`.
    Audit,
}

// `apply_batch` indexes its open tables by `Table as usize`.
const _: () = {
    let mut i = 0;
    while i < Table::ALL.len() {
        assert!(Table::ALL[i] as usize == i);
        i += 1;
    }
};

impl Table {
    const ALL: [Table; 5] = [
        Table::Pipelines,
        Table::Handlers,
        Table::Secrets,
        Table::Tokens,
        Table::Audit,
    ];

    fn def(self) -> TableDefinition<'static, &'static str, &'static [u8]> {
        match self {
            Table::Pipelines => PIPELINES,
            Table::Handlers => HANDLERS,
            Table::Secrets => SECRETS,
            Table::Tokens => TOKENS,
            Table::Audit => AUDIT,
        }
    }
}

fn queue_key(client: &str, seq: u64) -> String {
    format!("{client}\0{seq:020}")
}

fn qos2_key(client: &str, packet_id: u16) -> String {
    format!("{client}\0{packet_id:05}")
}

/// Splits a `client \0 number` key ([`queue_key`], [`qos2_key`]).
fn parse_client_key<N: std::str::FromStr>(key: &str) -> Option<(&str, N)> {
    let (client, n) = key.split_once('\0')?;
    Some((client, n.parse().ok()?))
}

/// Requests folded into one transaction at most.
const META_BATCH_MAX: usize = 512;

#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("metadata store: {0}")]
    Db(String),
    #[error("metadata store is shut down")]
    Closed,
}

fn db_err(e: impl std::fmt::Display) -> MetaError {
    MetaError::Db(e.to_string())
}

/// One change, applied atomically with the others of its request.
#[derive(Debug, Clone)]
pub enum MetaWrite {
    PutStream {
        key: String,
        doc: Vec<u8>,
    },
    DeleteStream {
        key: String,
    },
    CommitOffset {
        stream: String,
        group: String,
        partition: u32,
        offset: u64,
    },
    /// Removes every offset of a stream, or of one group when `group` is set.
    DeleteOffsets {
        stream: String,
        group: Option<String>,
    },
    /// Stores a retained MQTT message (see `mqtt::retained_value`).
    PutRetained {
        key: String,
        value: Vec<u8>,
    },
    DeleteRetained {
        key: String,
    },
    PutSession {
        client: String,
        record: Vec<u8>,
    },
    /// Removes a session and every message it holds.
    DeleteSession {
        client: String,
    },
    PutQueued {
        client: String,
        seq: u64,
        value: Vec<u8>,
    },
    DeleteQueued {
        client: String,
        seq: u64,
    },
    /// Records a QoS 2 packet id received (PUBREC sent) by a persistent session.
    PutQos2Received {
        client: String,
        packet_id: u16,
    },
    /// Forgets it (PUBREL came).
    DeleteQos2Received {
        client: String,
        packet_id: u16,
    },
    PutItem {
        table: Table,
        key: String,
        value: Vec<u8>,
    },
    DeleteItem {
        table: Table,
        key: String,
    },
}

struct Request {
    writes: Vec<MetaWrite>,
    reply: oneshot::Sender<Result<(), MetaError>>,
    /// The tenant's share it counts against, if a tenant's traffic made it.
    share: Option<Arc<Backlog>>,
}

/// Handle to the metadata store; cheap to clone.
#[derive(Clone)]
pub struct Meta {
    db: Arc<Database>,
    /// Unbounded so that [`Meta::enqueue`] never waits and never reorders;
    /// [`Backlog`] is the bound: producers wait for room past its mark.
    tx: mpsc::UnboundedSender<Request>,
    backlog: Arc<Backlog>,
    /// Each tenant's share of the backlog (see [`TenantMeta`]), made on
    /// its first write.
    shares: Arc<Mutex<HashMap<String, Arc<Backlog>>>>,
    share_high: usize,
}

/// Requests queued for the writer thread (all of them, or one tenant's
/// share), and those waiting for it to catch up.
#[derive(Debug)]
struct Backlog {
    queued: AtomicUsize,
    /// At or past this many queued requests, producers wait for room.
    high: usize,
    drain: Drain,
}

impl Backlog {
    fn new(high: usize) -> Self {
        Backlog {
            queued: AtomicUsize::new(0),
            high: high.max(2),
            drain: Drain::default(),
        }
    }

    fn queued(&self) -> usize {
        self.queued.load(SeqCst)
    }

    fn low(&self) -> usize {
        self.high / 2
    }

    /// The writer took `n` requests off the queue.
    fn taken(&self, n: usize) {
        let left = self.queued.fetch_sub(n, SeqCst) - n;
        if left <= self.low() {
            self.drain.wake();
        }
    }

    /// Returns once at most half the mark is queued.
    async fn drained(&self) {
        self.drain.wait(|| self.queued() <= self.low()).await;
    }
}

fn offset_key(stream: &str, group: &str, partition: u32) -> String {
    format!("{stream}\0{group}\0{partition:010}")
}

/// The key range holding every offset of `stream` (and of `group`, if given).
fn offset_prefix(stream: &str, group: Option<&str>) -> (String, String) {
    match group {
        Some(g) => (format!("{stream}\0{g}\0"), format!("{stream}\0{g}\x01")),
        None => (format!("{stream}\0"), format!("{stream}\x01")),
    }
}

impl Meta {
    /// Opens (or creates) `path`, keeping at most `cache_bytes` of its pages
    /// in memory and making producers wait once `queue_requests_max` writes
    /// are queued, or a tenant's once `queue_requests_per_tenant_max` of its
    /// own are ([`Meta::tenant`]). redb locks the file, so a second node on
    /// the same data directory fails here instead of corrupting it.
    pub fn open(
        path: &Path,
        cache_bytes: usize,
        queue_requests_max: usize,
        queue_requests_per_tenant_max: usize,
    ) -> Result<Self, MetaError> {
        let db = Database::builder()
            .set_cache_size(cache_bytes)
            .create(path)
            .map_err(db_err)?;
        let db = Arc::new(db);
        {
            let txn = db.begin_write().map_err(db_err)?;
            txn.open_table(STREAMS).map_err(db_err)?;
            txn.open_table(OFFSETS).map_err(db_err)?;
            txn.open_table(RETAINED).map_err(db_err)?;
            txn.open_table(MQTT_SESSIONS).map_err(db_err)?;
            txn.open_table(MQTT_QUEUE).map_err(db_err)?;
            txn.open_table(MQTT_QOS2_IN).map_err(db_err)?;
            for t in Table::ALL {
                txn.open_table(t.def()).map_err(db_err)?;
            }
            txn.commit().map_err(db_err)?;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let backlog = Arc::new(Backlog::new(queue_requests_max));
        let writer_db = db.clone();
        let writer_backlog = backlog.clone();
        std::thread::Builder::new()
            .name("sluice-meta".into())
            .spawn(move || writer_loop(&writer_db, rx, &writer_backlog))
            .map_err(db_err)?;
        Ok(Self {
            db,
            tx,
            backlog,
            shares: Arc::default(),
            share_high: queue_requests_per_tenant_max,
        })
    }

    /// The store as `tenant`'s traffic writes to it: the same writer, with
    /// the tenant's own share of its queue. Keep the handle where writes
    /// are frequent (a connection); making one takes a lock.
    pub fn tenant(&self, tenant: &str) -> TenantMeta {
        let mut shares = self.shares.lock().unwrap_or_else(|p| p.into_inner());
        // Looked up before it is made: publishes to held sessions come here.
        let share = match shares.get(tenant) {
            Some(s) => s.clone(),
            None => shares
                .entry(tenant.to_owned())
                .or_insert_with(|| Arc::new(Backlog::new(self.share_high)))
                .clone(),
        };
        TenantMeta {
            meta: self.clone(),
            share,
        }
    }

    /// Applies `writes` atomically; returns once they are durable. Waits
    /// for room first when the writer is behind.
    pub async fn apply(&self, writes: Vec<MetaWrite>) -> Result<(), MetaError> {
        self.room().await;
        self.enqueue(writes).await
    }

    /// Whether the writer is so far behind that producers should wait
    /// ([`Meta::room`]) before queueing more.
    pub fn congested(&self) -> bool {
        self.backlog.queued() >= self.backlog.high
    }

    /// Returns once the queue is below its mark, or has drained to half
    /// of it if it was at the mark.
    pub async fn room(&self) {
        if self.congested() {
            self.backlog.drained().await;
        }
    }

    /// Queues `writes` now, in the caller's order relative to its other
    /// enqueues, and returns a future that resolves once they are durable.
    /// Use it where the order of writes matters and the caller must not
    /// wait to queue (a connection task routing a publish).
    pub fn enqueue(
        &self,
        writes: Vec<MetaWrite>,
    ) -> impl std::future::Future<Output = Result<(), MetaError>> + Send + 'static + use<> {
        self.enqueue_for(writes, None)
    }

    fn enqueue_for(
        &self,
        writes: Vec<MetaWrite>,
        share: Option<&Arc<Backlog>>,
    ) -> impl std::future::Future<Output = Result<(), MetaError>> + Send + 'static + use<> {
        let (reply, rx) = oneshot::channel();
        // Always queued now, whatever the backlog: order is what callers
        // rely on. The backlog is bounded by producers that look at
        // `congested` and wait for `room`.
        self.backlog.queued.fetch_add(1, SeqCst);
        if let Some(s) = share {
            s.queued.fetch_add(1, SeqCst);
        }
        let request = Request {
            writes,
            reply,
            share: share.cloned(),
        };
        if let Err(mpsc::error::SendError(r)) = self.tx.send(request) {
            self.backlog.taken(1);
            if let Some(s) = r.share {
                s.taken(1);
            }
            return futures_closed().left_future();
        }
        async move { rx.await.map_err(|_| MetaError::Closed)? }.right_future()
    }

    /// Every stored stream definition, by `tenant/stream` key.
    pub fn streams(&self) -> Result<Vec<(String, Vec<u8>)>, MetaError> {
        self.all(STREAMS)
    }

    /// Every persistent MQTT session record, by client id.
    pub fn mqtt_sessions(&self) -> Result<Vec<(String, Vec<u8>)>, MetaError> {
        self.all(MQTT_SESSIONS)
    }

    /// Every message held for persistent sessions: (client, seq, value), in order per client.
    pub fn mqtt_queue(&self) -> Result<Vec<(String, u64, Vec<u8>)>, MetaError> {
        Ok(self
            .all(MQTT_QUEUE)?
            .into_iter()
            .filter_map(|(k, v)| {
                let (client, seq) = parse_client_key(&k)?;
                Some((client.to_owned(), seq, v))
            })
            .collect())
    }

    /// Up to `limit` messages held for `client` with store ids `from..=last`, in order.
    pub fn mqtt_queue_range(
        &self,
        client: &str,
        from: u64,
        last: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, MetaError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(MQTT_QUEUE).map_err(db_err)?;
        let (lo, hi) = (queue_key(client, from), queue_key(client, last));
        let mut out = Vec::new();
        for entry in table
            .range(lo.as_str()..=hi.as_str())
            .map_err(db_err)?
            .take(limit)
        {
            let (k, v) = entry.map_err(db_err)?;
            if let Some((_, seq)) = parse_client_key(k.value()) {
                out.push((seq, v.value().to_vec()));
            }
        }
        Ok(out)
    }

    /// Every QoS 2 packet id awaiting PUBREL: (client, id).
    pub fn mqtt_qos2_received(&self) -> Result<Vec<(String, u16)>, MetaError> {
        Ok(self
            .all(MQTT_QOS2_IN)?
            .into_iter()
            .filter_map(|(k, _)| {
                let (client, id) = parse_client_key(&k)?;
                Some((client.to_owned(), id))
            })
            .collect())
    }

    fn all(&self, def: TableDefinition<&str, &[u8]>) -> Result<Vec<(String, Vec<u8>)>, MetaError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(def).map_err(db_err)?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(db_err)? {
            let (k, v) = entry.map_err(db_err)?;
            out.push((k.value().to_owned(), v.value().to_vec()));
        }
        Ok(out)
    }

    /// Every document of `table`, by key.
    pub fn items(&self, table: Table) -> Result<Vec<(String, Vec<u8>)>, MetaError> {
        self.all(table.def())
    }

    /// The last `limit` documents of `table` that `keep` accepts, in key
    /// order, newest (last) first.
    pub fn last_items(
        &self,
        table: Table,
        limit: usize,
        keep: impl Fn(&[u8]) -> bool,
    ) -> Result<Vec<(String, Vec<u8>)>, MetaError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let t = txn.open_table(table.def()).map_err(db_err)?;
        let mut out = Vec::new();
        for entry in t.iter().map_err(db_err)?.rev() {
            if out.len() >= limit {
                break;
            }
            let (k, v) = entry.map_err(db_err)?;
            if keep(v.value()) {
                out.push((k.value().to_owned(), v.value().to_vec()));
            }
        }
        Ok(out)
    }

    /// How many keys of `table` start with `prefix`.
    pub fn count_prefix(&self, table: Table, prefix: &str) -> Result<u64, MetaError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let t = txn.open_table(table.def()).map_err(db_err)?;
        let mut n = 0;
        for entry in t.range(prefix..).map_err(db_err)? {
            let (k, _) = entry.map_err(db_err)?;
            if !k.value().starts_with(prefix) {
                break;
            }
            n += 1;
        }
        Ok(n)
    }

    /// One document of `table`.
    pub fn item(&self, table: Table, key: &str) -> Result<Option<Vec<u8>>, MetaError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let t = txn.open_table(table.def()).map_err(db_err)?;
        Ok(t.get(key).map_err(db_err)?.map(|v| v.value().to_vec()))
    }

    /// Every retained message, by `tenant/topic` key.
    pub fn retained(&self) -> Result<Vec<(String, Vec<u8>)>, MetaError> {
        self.all(RETAINED)
    }

    /// Committed offsets of a stream: group → partition → next offset.
    pub fn offsets(&self, stream: &str) -> Result<BTreeMap<String, BTreeMap<u32, u64>>, MetaError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(OFFSETS).map_err(db_err)?;
        let (lo, hi) = offset_prefix(stream, None);
        let mut out: BTreeMap<String, BTreeMap<u32, u64>> = BTreeMap::new();
        for entry in table.range(lo.as_str()..hi.as_str()).map_err(db_err)? {
            let (k, v) = entry.map_err(db_err)?;
            let key = k.value();
            let mut parts = key[stream.len() + 1..].split('\0');
            let (Some(group), Some(p)) = (parts.next(), parts.next()) else {
                continue;
            };
            let Ok(p) = p.parse() else { continue };
            out.entry(group.to_owned())
                .or_default()
                .insert(p, v.value());
        }
        Ok(out)
    }
}

/// [`Meta`] as one tenant's traffic uses it: its writes count against the
/// tenant's share of the writer's queue as well as the node's, and its
/// producers wait for the tenant's own backlog. At its mark they wait until
/// it is down to half; past half they also wait while the node's queue is
/// at its mark. So a tenant that floods the writer holds at most its share
/// and waits for its own writes, while one with fewer than half its share
/// queued is never held back by the others' (the node's queue then exceeds
/// its mark by at most half a share per tenant). Cheap to clone.
#[derive(Clone)]
pub struct TenantMeta {
    meta: Meta,
    share: Arc<Backlog>,
}

impl TenantMeta {
    /// [`Meta::apply`], waiting for the tenant's room.
    pub async fn apply(&self, writes: Vec<MetaWrite>) -> Result<(), MetaError> {
        self.room().await;
        self.enqueue(writes).await
    }

    /// [`Meta::enqueue`], counted against the tenant's share.
    pub fn enqueue(
        &self,
        writes: Vec<MetaWrite>,
    ) -> impl std::future::Future<Output = Result<(), MetaError>> + Send + 'static + use<> {
        self.meta.enqueue_for(writes, Some(&self.share))
    }

    /// Whether this tenant's producers should wait ([`TenantMeta::room`]):
    /// its share is full, or the node's queue is and the tenant holds more
    /// than half its share of it.
    pub fn congested(&self) -> bool {
        let own = self.share.queued();
        own >= self.share.high || (own > self.share.low() && self.meta.congested())
    }

    /// Returns once the tenant may queue again: at once when it is not
    /// congested, else when its own backlog is down to half its share.
    pub async fn room(&self) {
        if self.congested() {
            self.share.drained().await;
        }
    }
}

fn futures_closed() -> std::future::Ready<Result<(), MetaError>> {
    std::future::ready(Err(MetaError::Closed))
}

fn writer_loop(db: &Database, mut rx: mpsc::UnboundedReceiver<Request>, backlog: &Backlog) {
    while let Some(first) = rx.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < META_BATCH_MAX {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        backlog.taken(batch.len());
        for share in batch.iter().filter_map(|r| r.share.as_ref()) {
            share.taken(1);
        }
        let result = apply_batch(db, &batch);
        for r in batch {
            let _ = r.reply.send(result.clone().map_err(MetaError::Db));
        }
    }
}

fn apply_batch(db: &Database, batch: &[Request]) -> Result<(), String> {
    let txn = db.begin_write().map_err(|e| e.to_string())?;
    {
        let mut streams = txn.open_table(STREAMS).map_err(|e| e.to_string())?;
        let mut offsets = txn.open_table(OFFSETS).map_err(|e| e.to_string())?;
        let mut retained = txn.open_table(RETAINED).map_err(|e| e.to_string())?;
        let mut sessions = txn.open_table(MQTT_SESSIONS).map_err(|e| e.to_string())?;
        let mut queue = txn.open_table(MQTT_QUEUE).map_err(|e| e.to_string())?;
        let mut qos2_in = txn.open_table(MQTT_QOS2_IN).map_err(|e| e.to_string())?;
        let mut items = Table::ALL
            .map(|t| txn.open_table(t.def()).map_err(|e| e.to_string()))
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
        for w in batch.iter().flat_map(|r| &r.writes) {
            let r = match w {
                MetaWrite::PutStream { key, doc } => {
                    streams.insert(key.as_str(), doc.as_slice()).map(drop)
                }
                MetaWrite::DeleteStream { key } => streams.remove(key.as_str()).map(drop),
                MetaWrite::CommitOffset {
                    stream,
                    group,
                    partition,
                    offset,
                } => offsets
                    .insert(offset_key(stream, group, *partition).as_str(), *offset)
                    .map(drop),
                MetaWrite::PutRetained { key, value } => {
                    retained.insert(key.as_str(), value.as_slice()).map(drop)
                }
                MetaWrite::DeleteRetained { key } => retained.remove(key.as_str()).map(drop),
                MetaWrite::PutSession { client, record } => sessions
                    .insert(client.as_str(), record.as_slice())
                    .map(drop),
                MetaWrite::DeleteSession { client } => {
                    let (lo, hi) = (format!("{client}\0"), format!("{client}\x01"));
                    sessions
                        .remove(client.as_str())
                        .and_then(|_| queue.retain_in(lo.as_str()..hi.as_str(), |_, _| false))
                        .and_then(|_| qos2_in.retain_in(lo.as_str()..hi.as_str(), |_, _| false))
                }
                MetaWrite::PutQueued { client, seq, value } => queue
                    .insert(queue_key(client, *seq).as_str(), value.as_slice())
                    .map(drop),
                MetaWrite::DeleteQueued { client, seq } => {
                    queue.remove(queue_key(client, *seq).as_str()).map(drop)
                }
                MetaWrite::PutQos2Received { client, packet_id } => qos2_in
                    .insert(qos2_key(client, *packet_id).as_str(), &[][..])
                    .map(drop),
                MetaWrite::DeleteQos2Received { client, packet_id } => qos2_in
                    .remove(qos2_key(client, *packet_id).as_str())
                    .map(drop),
                MetaWrite::DeleteOffsets { stream, group } => {
                    let (lo, hi) = offset_prefix(stream, group.as_deref());
                    offsets.retain_in(lo.as_str()..hi.as_str(), |_, _| false)
                }
                MetaWrite::PutItem { table, key, value } => items[*table as usize]
                    .insert(key.as_str(), value.as_slice())
                    .map(drop),
                MetaWrite::DeleteItem { table, key } => {
                    items[*table as usize].remove(key.as_str()).map(drop)
                }
            };
            r.map_err(|e| e.to_string())?;
        }
    }
    txn.commit().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offset(stream: &str, offset: u64) -> Vec<MetaWrite> {
        vec![MetaWrite::CommitOffset {
            stream: stream.into(),
            group: "g".into(),
            partition: 0,
            offset,
        }]
    }

    /// Whether `f` is still pending after the writer had time to move.
    async fn pending(f: impl std::future::Future<Output = ()>) -> bool {
        tokio::time::timeout(std::time::Duration::from_millis(50), f)
            .await
            .is_err()
    }

    /// The writer is shared; its queue is not. With the writer stalled
    /// (a test transaction holds redb's write lock), a tenant that fills
    /// its share waits, another does not; once the whole queue is at its
    /// mark only the tenants holding more than half their share wait; and
    /// every queued write lands, in the end, once the writer moves again.
    #[tokio::test]
    async fn a_tenant_flooding_the_writer_waits_alone() {
        let dir = tempfile::tempdir().unwrap();
        // Node mark 8, shares of 6 (a tenant waits past 3 when the node is full).
        let meta = Meta::open(&dir.path().join("meta.redb"), 1 << 20, 8, 6).unwrap();
        let stall = meta.db.begin_write().unwrap();
        // The writer takes this one and blocks on the lock; from here on
        // requests stay queued.
        let first = meta.enqueue(offset("x/s", 0));
        while meta.backlog.queued() > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        let (a, b, c) = (meta.tenant("a"), meta.tenant("b"), meta.tenant("c"));
        let mut durable = Vec::new();
        for i in 0..6 {
            assert!(!a.congested(), "a has {i} of 6 queued");
            durable.push(a.enqueue(offset("a/s", i)));
        }
        assert!(a.congested(), "a's share is full");
        assert!(!meta.congested(), "6 of the node's 8");
        assert!(pending(a.room()).await, "a waits for its own writes");
        assert!(!b.congested());
        assert!(!pending(b.room()).await, "b does not wait for a's");
        for i in 0..3 {
            durable.push(b.enqueue(offset("b/s", i)));
        }
        assert!(meta.congested(), "9 queued, the node's mark is 8");
        assert!(
            !b.congested(),
            "b holds half its share: the node's backlog is not its"
        );
        durable.push(b.enqueue(offset("b/s", 3)));
        assert!(
            b.congested(),
            "past half its share, b waits while the node is full"
        );
        assert!(
            !c.congested() && !pending(c.room()).await,
            "c has nothing queued"
        );
        let queued = |t: &TenantMeta| t.share.queued();
        assert_eq!((queued(&a), queued(&b), queued(&c)), (6, 4, 0));
        // A handle made again is the same share.
        assert!(meta.tenant("a").congested());

        let a_room = tokio::spawn({
            let a = a.clone();
            async move { a.room().await }
        });
        drop(stall);
        first.await.unwrap();
        for d in durable {
            d.await.unwrap();
        }
        tokio::time::timeout(std::time::Duration::from_secs(5), a_room)
            .await
            .expect("a is woken once its writes are taken")
            .unwrap();
        assert_eq!((queued(&a), queued(&b)), (0, 0));
        assert!(!a.congested() && !b.congested() && !meta.congested());
        let offsets = meta.offsets("a/s").unwrap();
        assert_eq!(offsets["g"][&0], 5, "a's last commit landed");
        assert_eq!(meta.offsets("b/s").unwrap()["g"][&0], 3);
    }

    #[tokio::test]
    async fn offsets_and_streams_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.redb");
        {
            let meta = Meta::open(&path, 1 << 20, 4096, 1024).unwrap();
            meta.apply(vec![
                MetaWrite::PutStream {
                    key: "default/s".into(),
                    doc: b"{}".to_vec(),
                },
                MetaWrite::CommitOffset {
                    stream: "default/s".into(),
                    group: "g".into(),
                    partition: 1,
                    offset: 7,
                },
                MetaWrite::CommitOffset {
                    stream: "default/s".into(),
                    group: "h".into(),
                    partition: 0,
                    offset: 3,
                },
                MetaWrite::CommitOffset {
                    stream: "default/s2".into(),
                    group: "g".into(),
                    partition: 0,
                    offset: 9,
                },
            ])
            .await
            .unwrap();
            meta.apply(vec![MetaWrite::DeleteOffsets {
                stream: "default/s".into(),
                group: Some("h".into()),
            }])
            .await
            .unwrap();
        }
        // The writer thread holds the database until its channel closes; give it a moment.
        let meta = loop {
            match Meta::open(&path, 1 << 20, 4096, 1024) {
                Ok(m) => break m,
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
            }
        };
        assert_eq!(
            meta.streams().unwrap(),
            vec![("default/s".to_owned(), b"{}".to_vec())]
        );
        let offsets = meta.offsets("default/s").unwrap();
        assert_eq!(offsets.len(), 1);
        assert_eq!(offsets["g"][&1], 7);
    }
}
