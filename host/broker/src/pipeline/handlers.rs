//! Deployed handlers: the Wasm bytes of every handler version, kept on disk
//! by content hash (`data_dir/handlers/{sha256}.wasm`, written whole and
//! synced before it is recorded), and a record per `tenant/name/version` in
//! the metadata store. A version is immutable once deployed: a changed
//! handler is a new version, which is what lets a pipeline say exactly
//! what it runs and lets a hot reload be undone.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sluice_core::TenantId;
use sluice_core::names::validate_name;

use crate::meta::{Meta, MetaWrite, Table};
use crate::node::NodeError;
use crate::pipeline::spec::validate_version;

/// The largest handler component accepted, in bytes. The JS and Python
/// engines are the big ones (ComponentizeJS ~10 MiB, componentize-py ~40 MiB).
pub const HANDLER_BYTES_MAX: usize = 64 << 20;

/// What the metadata store keeps about one deployed handler version.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct HandlerRecord {
    pub name: String,
    pub version: String,
    /// Lowercase hex SHA-256 of the component, also its file name.
    pub sha256: String,
    pub bytes: u64,
    pub deployed_ms: i64,
}

/// The handler files and their records.
pub struct HandlerStore {
    dir: PathBuf,
    meta: Meta,
}

fn record_key(tenant: &TenantId, name: &str, version: &str) -> String {
    format!("{tenant}/{name}/{version}")
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl HandlerStore {
    pub fn new(data_dir: &Path, meta: Meta) -> Self {
        Self {
            dir: data_dir.join("handlers"),
            meta,
        }
    }

    /// Checks a name and version before anything is read or written.
    pub fn validate_ident(name: &str, version: &str) -> Result<(), NodeError> {
        validate_name("handler", name).map_err(|e| NodeError::Invalid(e.to_string()))?;
        validate_version(version).map_err(NodeError::Invalid)
    }

    /// Stores `wasm` as `name@version` (the caller has checked that it
    /// compiles and links). Returns the record and whether it is new; the
    /// same bytes again are a no-op, other bytes under a deployed version a
    /// conflict.
    pub async fn put(
        &self,
        tenant: &TenantId,
        name: &str,
        version: &str,
        wasm: &[u8],
    ) -> Result<(HandlerRecord, bool), NodeError> {
        Self::validate_ident(name, version)?;
        let sha256 = sha256_hex(wasm);
        if let Some(existing) = self.record(tenant, name, version)? {
            if existing.sha256 == sha256 {
                return Ok((existing, false));
            }
            return Err(NodeError::Conflict(format!(
                "handler {name}@{version} is deployed with other content; versions are immutable, deploy a new version"
            )));
        }
        let path = self.dir.join(format!("{sha256}.wasm"));
        let dir = self.dir.clone();
        let bytes = wasm.to_vec();
        tokio::task::spawn_blocking(move || write_synced(&dir, &path, &bytes))
            .await
            .map_err(|e| NodeError::Storage(e.to_string()))?
            .map_err(|e| NodeError::Storage(format!("writing the handler file: {e}")))?;
        let record = HandlerRecord {
            name: name.to_owned(),
            version: version.to_owned(),
            sha256,
            bytes: wasm.len() as u64,
            deployed_ms: crate::stream::now_ms(),
        };
        self.meta
            .apply(vec![MetaWrite::PutItem {
                table: Table::Handlers,
                key: record_key(tenant, name, version),
                value: serde_json::to_vec(&record).expect("record serialises"),
            }])
            .await?;
        Ok((record, true))
    }

    pub fn record(
        &self,
        tenant: &TenantId,
        name: &str,
        version: &str,
    ) -> Result<Option<HandlerRecord>, NodeError> {
        Ok(self
            .meta
            .item(Table::Handlers, &record_key(tenant, name, version))?
            .and_then(|v| serde_json::from_slice(&v).ok()))
    }

    /// Every deployed version of `tenant`, oldest first per name.
    pub fn list(&self, tenant: &TenantId) -> Result<Vec<HandlerRecord>, NodeError> {
        let prefix = format!("{tenant}/");
        let mut out: Vec<HandlerRecord> = self
            .meta
            .items(Table::Handlers)?
            .into_iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .filter_map(|(_, v)| serde_json::from_slice(&v).ok())
            .collect();
        out.sort_by(|a, b| (&a.name, a.deployed_ms).cmp(&(&b.name, b.deployed_ms)));
        Ok(out)
    }

    /// `name@version`, or the most recently deployed version of `name`.
    pub fn resolve(
        &self,
        tenant: &TenantId,
        name: &str,
        version: Option<&str>,
    ) -> Result<HandlerRecord, NodeError> {
        let found = match version {
            Some(v) => self.record(tenant, name, v)?,
            None => self
                .list(tenant)?
                .into_iter()
                .filter(|r| r.name == name)
                .max_by_key(|r| r.deployed_ms),
        };
        found.ok_or_else(|| {
            NodeError::Invalid(match version {
                Some(v) => format!("handler {name}@{v} is not deployed"),
                None => format!("handler {name} is not deployed"),
            })
        })
    }

    /// The component bytes of a record, checked against its hash.
    pub fn read(&self, record: &HandlerRecord) -> Result<Vec<u8>, NodeError> {
        let path = self.dir.join(format!("{}.wasm", record.sha256));
        let bytes = std::fs::read(&path)
            .map_err(|e| NodeError::Storage(format!("{}: {e}", path.display())))?;
        if sha256_hex(&bytes) != record.sha256 {
            return Err(NodeError::Storage(format!(
                "{} does not match its hash; redeploy {}@{}",
                path.display(),
                record.name,
                record.version
            )));
        }
        Ok(bytes)
    }

    /// Forgets a version. Its file stays while another version has the
    /// same content, and is removed otherwise.
    pub async fn delete(
        &self,
        tenant: &TenantId,
        name: &str,
        version: &str,
    ) -> Result<(), NodeError> {
        let record = self
            .record(tenant, name, version)?
            .ok_or_else(|| NodeError::NotFound(format!("handler {name}@{version}")))?;
        self.meta
            .apply(vec![MetaWrite::DeleteItem {
                table: Table::Handlers,
                key: record_key(tenant, name, version),
            }])
            .await?;
        let still_used = self
            .meta
            .items(Table::Handlers)?
            .into_iter()
            .filter_map(|(_, v)| serde_json::from_slice::<HandlerRecord>(&v).ok())
            .any(|r| r.sha256 == record.sha256);
        if !still_used {
            let _ = std::fs::remove_file(self.dir.join(format!("{}.wasm", record.sha256)));
        }
        Ok(())
    }
}

/// Writes `bytes` to `path` so that it is either absent or whole after a
/// crash: temp file, fsync, rename, fsync of the directory.
fn write_synced(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    std::fs::create_dir_all(dir)?;
    if path.exists() {
        return Ok(());
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}
