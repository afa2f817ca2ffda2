//! The token vault and the admin audit log. `tokenize` in a handler gives a
//! token computed in the Wasm host; this module remembers, per tenant, what
//! each token stands for, in redb, so an admin can reverse it later. A
//! mapping is made durable before any output carrying its token leaves the
//! node (the pipeline runner calls [`Vault::flush`] before it publishes), so
//! a `kill -9` can never leave a published token that cannot be reversed.
//! Every reversal is written to the audit log first, and refused if that
//! write fails.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::{Deserialize, Serialize};
use sluice_core::TenantId;
use sluice_wasm::{TokenVault, VaultError};

use crate::meta::{Meta, MetaWrite, Table};
use crate::node::NodeError;

/// Tokens remembered as already stored, so a repeated value costs no
/// lookup; the set is cleared when it reaches this size.
const KNOWN_TOKENS_MAX: usize = 100_000;

/// What a token stands for, as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Entry {
    pub domain: String,
    pub value: String,
    pub created_ms: i64,
}

/// One tenant's vault.
pub struct Vault {
    tenant: TenantId,
    meta: Meta,
    tokens_max: u64,
    /// Tokens stored (durable), counted at start and on each flush.
    stored: AtomicU64,
    /// Issued since the last flush; not yet durable.
    pending: Mutex<HashMap<String, Entry>>,
    known: Mutex<HashSet<String>>,
    /// Held for a whole flush, so a flush that finds nothing pending still
    /// waits for the one writing its tokens.
    flushing: tokio::sync::Mutex<()>,
}

impl Vault {
    pub fn open(meta: Meta, tenant: TenantId, tokens_max: u64) -> Result<Self, NodeError> {
        let stored = meta.count_prefix(Table::Tokens, &format!("{tenant}/"))?;
        Ok(Self {
            tenant,
            meta,
            tokens_max,
            stored: AtomicU64::new(stored),
            pending: Mutex::new(HashMap::new()),
            known: Mutex::new(HashSet::new()),
            flushing: tokio::sync::Mutex::new(()),
        })
    }

    fn key(&self, token: &str) -> String {
        format!("{}/{token}", self.tenant)
    }

    /// Makes every token issued so far durable.
    pub async fn flush(&self) -> Result<(), NodeError> {
        let _one = self.flushing.lock().await;
        let pending = std::mem::take(&mut *self.pending.lock().expect("vault lock"));
        if pending.is_empty() {
            return Ok(());
        }
        let mut writes = Vec::with_capacity(pending.len());
        for (token, entry) in &pending {
            writes.push(MetaWrite::PutItem {
                table: Table::Tokens,
                key: self.key(token),
                value: serde_json::to_vec(entry).expect("an entry serialises"),
            });
        }
        if let Err(e) = self.meta.tenant(self.tenant.as_str()).apply(writes).await {
            // Put them back: the batch is retried and must find them.
            self.pending.lock().expect("vault lock").extend(pending);
            return Err(e.into());
        }
        self.stored.fetch_add(pending.len() as u64, Relaxed);
        let mut known = self.known.lock().expect("vault lock");
        if known.len() + pending.len() > KNOWN_TOKENS_MAX {
            known.clear();
        }
        known.extend(pending.into_keys());
        Ok(())
    }

    /// What `tokens` stand for; `None` for a token this tenant never issued.
    pub fn reverse(&self, tokens: &[String]) -> Result<Vec<Option<Entry>>, NodeError> {
        tokens
            .iter()
            .map(|t| {
                Ok(match self.meta.item(Table::Tokens, &self.key(t))? {
                    Some(v) => Some(serde_json::from_slice(&v).map_err(|e| {
                        NodeError::Storage(format!("vault entry of {t} is unreadable: {e}"))
                    })?),
                    None => None,
                })
            })
            .collect()
    }
}

impl TokenVault for Vault {
    fn remember(&self, token: &str, domain: &str, value: &str) -> Result<(), VaultError> {
        if self.known.lock().expect("vault lock").contains(token) {
            return Ok(());
        }
        if self.pending.lock().expect("vault lock").contains_key(token) {
            return Ok(());
        }
        let stored = self
            .meta
            .item(Table::Tokens, &self.key(token))
            .map_err(|e| VaultError::Storage(e.to_string()))?;
        if stored.is_some() {
            self.known
                .lock()
                .expect("vault lock")
                .insert(token.to_owned());
            return Ok(());
        }
        let mut pending = self.pending.lock().expect("vault lock");
        if self.stored.load(Relaxed) + pending.len() as u64 >= self.tokens_max {
            return Err(VaultError::Full(self.tokens_max));
        }
        pending.insert(
            token.to_owned(),
            Entry {
                domain: domain.to_owned(),
                value: value.to_owned(),
                created_ms: crate::stream::now_ms(),
            },
        );
        Ok(())
    }
}

/// Just the tenant of an audit record.
#[derive(Deserialize)]
struct TenantOf<'a> {
    tenant: &'a str,
}

/// One admin action, as the audit log keeps it: who, when, what, and
/// which tokens (never the values behind them).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditRecord {
    pub at_ms: i64,
    pub user: String,
    pub tenant: String,
    pub action: String,
    pub tokens: Vec<String>,
    /// How many of `tokens` the vault knew.
    pub found: usize,
}

/// Writes `record` to the audit log (durably) and to the node's log.
pub async fn audit(meta: &Meta, record: &AuditRecord) -> Result<(), NodeError> {
    tracing::warn!(target: "sluice::audit", user = %record.user, tenant = %record.tenant,
        action = %record.action, tokens = record.tokens.len(), found = record.found, "admin action");
    let key = format!("{:020}\0{:016x}", record.at_ms, rand::random::<u64>());
    meta.apply(vec![MetaWrite::PutItem {
        table: Table::Audit,
        key,
        value: serde_json::to_vec(record).expect("a record serialises"),
    }])
    .await?;
    Ok(())
}

/// The newest `limit` audit records of `tenant`, newest first.
pub fn audit_log(
    meta: &Meta,
    tenant: &TenantId,
    limit: usize,
) -> Result<Vec<AuditRecord>, NodeError> {
    // Admin actions are few: reading back through other tenants' records
    // to find `limit` of this one's is cheap.
    let mine =
        |v: &[u8]| serde_json::from_slice::<TenantOf>(v).is_ok_and(|r| r.tenant == tenant.as_str());
    meta.last_items(Table::Audit, limit, mine)?
        .into_iter()
        .map(|(_, v)| {
            serde_json::from_slice(&v)
                .map_err(|e| NodeError::Storage(format!("audit record unreadable: {e}")))
        })
        .collect()
}
