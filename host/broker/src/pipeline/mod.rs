//! Pipelines: consumer groups that run each message of a stream through a
//! chain of WebAssembly handlers and publish what comes out. This module is
//! the registry (deploy, reload, delete, status) and the node operations
//! the HTTP API and the config file call; [`runner`] is the loop that does
//! the work, one thread per pipeline; [`handlers`] keeps the deployed Wasm.
//!
//! Handlers are loaded (compiled, linked, `init` run) before a pipeline is
//! stored or swapped, so a bad component or config is refused with the
//! reason and the running version keeps running.

pub mod handlers;
pub mod runner;
pub mod spec;
pub mod stats;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::RngCore;
use serde_json::{Value, json};
use sluice_core::{GroupName, TenantId, TopicFilter};

use crate::meta::{MetaWrite, Table};
use crate::metrics::{family, label};
use crate::node::{Node, NodeError};
use crate::options::StreamSpec;
use handlers::{HandlerRecord, HandlerStore};
use runner::{Control, Deployment, Runner, Step};
use spec::{PipelineDoc, PipelineSpec};
use stats::{PipelineStats, RunState, StepStats};

/// Pipelines per node (each has a thread and live handler instances).
pub const PIPELINES_MAX: usize = 256;
/// Runner threads per node, all pipelines together (each holds its own
/// handler instances).
pub const RUNNERS_TOTAL_MAX: usize = 512;
/// How long a reload waits for the runners to reach a batch boundary.
const RELOAD_WAIT_MS: u64 = 30_000;

/// A metric family: name, help and how to read it off `T`.
type Counter<T> = (&'static str, &'static str, fn(&T) -> u64);

/// A handler version declared in the config file, deployed at start-up.
#[derive(Debug, Clone)]
pub struct HandlerDeploy {
    pub tenant: TenantId,
    pub name: String,
    pub version: String,
    pub wasm: Vec<u8>,
}

/// The node's pipelines and what they need: the Wasm runtime (created on
/// first use: its pool reserves address space), deployed handlers and the
/// tenants' pseudonymisation secrets.
pub struct Pipelines {
    pub handlers: HandlerStore,
    runtime_config: sluice_wasm::RuntimeConfig,
    runtime: Mutex<Option<sluice_wasm::Runtime>>,
    running: Mutex<BTreeMap<(TenantId, String), Entry>>,
    /// Serialises deploys, reloads and deletes; messages never take it.
    admin: tokio::sync::Mutex<()>,
    secrets: Mutex<HashMap<TenantId, Arc<[u8]>>>,
    vaults: Mutex<HashMap<TenantId, Arc<crate::vault::Vault>>>,
}

struct Entry {
    spec: Arc<PipelineSpec>,
    stats: Arc<PipelineStats>,
    /// One per runner; none when the pipeline failed to start (its stats
    /// say why).
    runners: Vec<RunnerHandle>,
}

/// A runner thread and how to reach it.
struct RunnerHandle {
    control: SyncSender<Control>,
    thread: std::thread::JoinHandle<()>,
}

/// Stops runners and waits for each to finish. Blocking: the stop waits
/// for room in a runner's control queue rather than be dropped (a runner
/// that is gone refuses it at once).
fn stop_runners(runners: Vec<RunnerHandle>) {
    for r in &runners {
        let _ = r.control.send(Control::Stop);
    }
    for r in runners {
        let _ = r.thread.join();
    }
}

fn key_of(tenant: &TenantId, name: &str) -> String {
    format!("{tenant}/{name}")
}

/// The consumer group a pipeline reads its source as.
pub fn group_of(name: &str) -> GroupName {
    GroupName::new(&format!("pipeline-{name}")).expect("pipeline names are short enough")
}

impl Pipelines {
    pub fn new(
        data_dir: &std::path::Path,
        meta: crate::meta::Meta,
        mut runtime_config: sluice_wasm::RuntimeConfig,
    ) -> Self {
        if runtime_config.cache_dir.is_none() {
            runtime_config.cache_dir = Some(data_dir.join("wasm-cache"));
        }
        Self {
            handlers: HandlerStore::new(data_dir, meta),
            runtime_config,
            runtime: Mutex::new(None),
            running: Mutex::new(BTreeMap::new()),
            admin: tokio::sync::Mutex::new(()),
            secrets: Mutex::new(HashMap::new()),
            vaults: Mutex::new(HashMap::new()),
        }
    }

    fn runtime(&self) -> Result<sluice_wasm::Runtime, NodeError> {
        let mut rt = self.runtime.lock().expect("runtime lock");
        if let Some(r) = &*rt {
            return Ok(r.clone());
        }
        let r = sluice_wasm::Runtime::new(self.runtime_config.clone())
            .map_err(|e| NodeError::Storage(format!("cannot start the Wasm runtime: {e}")))?;
        *rt = Some(r.clone());
        Ok(r)
    }

    /// Whether a pipeline reads from or dead-letters into `stream`.
    pub fn uses_stream(&self, tenant: &TenantId, stream: &str) -> Option<String> {
        self.running
            .lock()
            .expect("pipelines lock")
            .iter()
            .find(|((t, _), e)| {
                t == tenant
                    && (e.spec.source.as_str() == stream || e.spec.dead_letter.as_str() == stream)
            })
            .map(|((_, n), _)| n.clone())
    }

    /// Whether a pipeline runs `name@version`.
    fn uses_handler(&self, tenant: &TenantId, name: &str, version: &str) -> Option<String> {
        self.running
            .lock()
            .expect("pipelines lock")
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .find(|(_, e)| {
                e.stats
                    .steps()
                    .iter()
                    .any(|s| s.handler == name && s.version == version)
            })
            .map(|((_, n), _)| n.clone())
    }

    /// Stops every runner and waits for it. Blocking.
    pub fn stop_all(&self) {
        let all: Vec<RunnerHandle> =
            std::mem::take(&mut *self.running.lock().expect("pipelines lock"))
                .into_values()
                .flat_map(|e| e.runners)
                .collect();
        stop_runners(all);
    }
}

impl Node {
    /// Checks that `wasm` is a component of the `sluice:handler` world and
    /// stores it as `name@version`. Returns the record and whether it is new.
    pub async fn deploy_handler(
        &self,
        tenant: &TenantId,
        name: &str,
        version: &str,
        wasm: Vec<u8>,
    ) -> Result<(HandlerRecord, bool), NodeError> {
        HandlerStore::validate_ident(name, version)?;
        if let Some(existing) = self.pipelines.handlers.record(tenant, name, version)?
            && existing.sha256 == handlers::sha256_hex(&wasm)
        {
            return Ok((existing, false));
        }
        let rt = self.pipelines.runtime()?;
        let wasm = tokio::task::spawn_blocking(move || rt.check(&wasm).map(|_| wasm))
            .await
            .map_err(|e| NodeError::Storage(e.to_string()))?
            .map_err(|e| NodeError::Invalid(format!("handler {name}@{version}: {e}")))?;
        // Component files are shared by content hash, across tenants too:
        // a delete must not remove the file this deploy is about to point at.
        let _admin = self.pipelines.admin.lock().await;
        self.pipelines
            .handlers
            .put(tenant, name, version, &wasm)
            .await
    }

    /// Forgets a handler version that no pipeline runs.
    pub async fn delete_handler(
        &self,
        tenant: &TenantId,
        name: &str,
        version: &str,
    ) -> Result<(), NodeError> {
        let _admin = self.pipelines.admin.lock().await;
        if let Some(p) = self.pipelines.uses_handler(tenant, name, version) {
            return Err(NodeError::Conflict(format!(
                "handler {name}@{version} is running in pipeline {p:?}"
            )));
        }
        self.pipelines.handlers.delete(tenant, name, version).await
    }

    /// The tenant's pseudonymisation secret, made (32 random bytes) and
    /// stored on first use. It never leaves the host.
    async fn tenant_secret(&self, tenant: &TenantId) -> Result<Arc<[u8]>, NodeError> {
        if let Some(s) = self
            .pipelines
            .secrets
            .lock()
            .expect("secrets lock")
            .get(tenant)
        {
            return Ok(s.clone());
        }
        let secret: Arc<[u8]> = match self.meta.item(Table::Secrets, tenant.as_str())? {
            Some(s) => s.into(),
            None => {
                let mut s = vec![0u8; 32];
                rand::rng().fill_bytes(&mut s);
                self.meta
                    .apply(vec![MetaWrite::PutItem {
                        table: Table::Secrets,
                        key: tenant.to_string(),
                        value: s.clone(),
                    }])
                    .await?;
                s.into()
            }
        };
        self.pipelines
            .secrets
            .lock()
            .expect("secrets lock")
            .insert(tenant.clone(), secret.clone());
        Ok(secret)
    }

    /// The tenant's token vault, opened on first use.
    pub fn vault(&self, tenant: &TenantId) -> Result<Arc<crate::vault::Vault>, NodeError> {
        let mut vaults = self.pipelines.vaults.lock().expect("vaults lock");
        if let Some(v) = vaults.get(tenant) {
            return Ok(v.clone());
        }
        let v = Arc::new(crate::vault::Vault::open(
            self.meta.clone(),
            tenant.clone(),
            self.options.limits.vault_tokens_max,
        )?);
        vaults.insert(tenant.clone(), v.clone());
        Ok(v)
    }

    /// Loads every step's handler (compile or cache, link, first instance,
    /// `init`) once per runner: each runner has instances of its own, and
    /// they share each step's counters.
    async fn load_deployments(
        &self,
        tenant: &TenantId,
        spec: Arc<PipelineSpec>,
    ) -> Result<Vec<Deployment>, NodeError> {
        let mut wasm = Vec::with_capacity(spec.steps.len());
        for (i, s) in spec.steps.iter().enumerate() {
            let record = self
                .pipelines
                .handlers
                .resolve(tenant, &s.handler, s.version.as_deref())
                .map_err(|e| NodeError::Invalid(format!("step {}: {e}", i + 1)))?;
            let bytes = self.pipelines.handlers.read(&record)?;
            wasm.push((record, bytes));
        }
        let keys = sluice_wasm::TenantKeys::with_vault(
            self.tenant_secret(tenant).await?,
            self.vault(tenant)?,
        );
        let rt = self.pipelines.runtime()?;
        let s = spec.clone();
        let per_runner =
            tokio::task::spawn_blocking(move || -> Result<Vec<Vec<Step>>, NodeError> {
                let stats: Vec<Arc<StepStats>> = wasm
                    .iter()
                    .map(|(r, _)| Arc::new(StepStats::new(&r.name, &r.version)))
                    .collect();
                let mut per_runner = Vec::with_capacity(s.runners);
                for _ in 0..s.runners {
                    let mut steps = Vec::with_capacity(wasm.len());
                    for (i, ((record, bytes), step)) in wasm.iter().zip(&s.steps).enumerate() {
                        let handler = rt
                            .load(
                                &record.name,
                                &record.version,
                                bytes,
                                step.limits.clone(),
                                &step.config,
                                keys.clone(),
                            )
                            .map_err(|e| {
                                NodeError::Invalid(format!(
                                    "step {} ({}@{}): {e}",
                                    i + 1,
                                    record.name,
                                    record.version
                                ))
                            })?;
                        steps.push(Step {
                            handler,
                            stats: stats[i].clone(),
                        });
                    }
                    per_runner.push(steps);
                }
                Ok(per_runner)
            })
            .await
            .map_err(|e| NodeError::Storage(e.to_string()))??;
        Ok(per_runner
            .into_iter()
            .map(|steps| Deployment {
                spec: spec.clone(),
                steps,
            })
            .collect())
    }

    /// The pipeline's dead-letter stream, created when missing. It captures
    /// only `$dlq/{pipeline}`, a topic no client may publish to; the runner
    /// appends to it directly.
    async fn dead_letter_stream(
        self: &Arc<Self>,
        tenant: &TenantId,
        spec: &PipelineSpec,
    ) -> Result<Arc<crate::stream::Stream>, NodeError> {
        if let Ok(s) = self.stream(tenant, spec.dead_letter.as_str()) {
            return Ok(s);
        }
        let filter = TopicFilter::new(&format!("$dlq/{}", spec.name))
            .map_err(|e| NodeError::Invalid(e.to_string()))?;
        let dl = StreamSpec::new(spec.dead_letter.clone(), vec![filter]);
        self.put_stream(tenant, dl).await?;
        self.stream(tenant, spec.dead_letter.as_str())
    }

    /// Creates a pipeline, or reloads it with a new definition: the new
    /// handlers are loaded first, then swapped in between two batches, so no
    /// message is lost or handled by both. Returns whether it was created.
    pub async fn put_pipeline(
        self: &Arc<Self>,
        tenant: &TenantId,
        spec: PipelineSpec,
    ) -> Result<bool, NodeError> {
        let _admin = self.pipelines.admin.lock().await;
        self.put_pipeline_locked(tenant, spec, true).await
    }

    async fn put_pipeline_locked(
        self: &Arc<Self>,
        tenant: &TenantId,
        spec: PipelineSpec,
        persist: bool,
    ) -> Result<bool, NodeError> {
        let source = self.stream(tenant, spec.source.as_str()).map_err(|_| {
            NodeError::Invalid(format!(
                "source stream {:?} does not exist",
                spec.source.as_str()
            ))
        })?;
        let key = (tenant.clone(), spec.name.clone());
        if spec.runners > source.partitions.len() {
            return Err(NodeError::Invalid(format!(
                "`runners` is {} but the source stream {:?} has {} partitions: a runner needs one of its own",
                spec.runners,
                spec.source.as_str(),
                source.partitions.len()
            )));
        }
        let (old_spec, live, all_alive) = {
            let running = self.pipelines.running.lock().expect("pipelines lock");
            if running.len() >= PIPELINES_MAX && !running.contains_key(&key) {
                return Err(NodeError::Invalid(format!(
                    "the node runs {PIPELINES_MAX} pipelines already, its limit"
                )));
            }
            // Runners of the other pipelines: the node's, and the tenant's.
            let (others, own) =
                running
                    .iter()
                    .filter(|(k, _)| **k != key)
                    .fold((0, 0), |(all, own), (k, e)| {
                        let n = e.runners.len();
                        (all + n, own + if k.0 == *tenant { n } else { 0 })
                    });
            if others + spec.runners > RUNNERS_TOTAL_MAX {
                return Err(NodeError::Invalid(format!(
                    "the node runs {others} pipeline runners already; {} more would pass its limit of {RUNNERS_TOTAL_MAX}",
                    spec.runners
                )));
            }
            if let Some(max) = self.quotas.pipeline_runners_max(tenant)
                && own + spec.runners > max
            {
                return Err(NodeError::QuotaExceeded(format!(
                    "tenant {tenant}'s other pipelines use {own} runners; {} more would pass its quota of {max} (`pipeline_runners_max`)",
                    spec.runners
                )));
            }
            match running.get(&key) {
                Some(e) => (
                    Some(e.spec.clone()),
                    e.runners
                        .iter()
                        .map(|r| r.control.clone())
                        .collect::<Vec<_>>(),
                    e.runners.iter().all(|r| !r.thread.is_finished()),
                ),
                None => (None, Vec::new(), true),
            }
        };
        if let Some(old) = &old_spec {
            for (field, changed) in [
                ("source", old.source != spec.source),
                ("dead_letter", old.dead_letter != spec.dead_letter),
            ] {
                if changed {
                    return Err(NodeError::Conflict(format!(
                        "pipeline {:?} exists and its `{field}` cannot change; delete and recreate it",
                        spec.name
                    )));
                }
            }
        }
        let dead_letter = self.dead_letter_stream(tenant, &spec).await?;
        let spec = Arc::new(spec);
        let deployments = self.load_deployments(tenant, spec.clone()).await?;
        if persist {
            let mut doc = spec.doc.clone();
            doc.name = Some(spec.name.clone());
            self.meta
                .apply(vec![MetaWrite::PutItem {
                    table: Table::Pipelines,
                    key: key_of(tenant, &spec.name),
                    value: serde_json::to_vec(&doc).expect("doc serialises"),
                }])
                .await?;
        }
        if !live.is_empty() && live.len() == deployments.len() && all_alive {
            // The same runners, all alive: each swaps between two of its
            // batches. (A runner that is gone, or another count, takes
            // the restart below.)
            let mut applied = Vec::with_capacity(live.len());
            for (control, deployment) in live.iter().zip(deployments) {
                let (done, rx) = tokio::sync::oneshot::channel();
                match control.try_send(Control::Reload(Box::new(deployment), done)) {
                    Ok(()) => applied.push(rx),
                    Err(TrySendError::Full(_)) => {
                        return Err(NodeError::Conflict(
                            "the pipeline is busy with earlier changes; retry".into(),
                        ));
                    }
                    Err(TrySendError::Disconnected(_)) => {
                        return Err(NodeError::Storage("the pipeline's runner stopped".into()));
                    }
                }
            }
            let _ = tokio::time::timeout(
                Duration::from_millis(RELOAD_WAIT_MS),
                futures_util::future::join_all(applied),
            )
            .await;
            let mut running = self.pipelines.running.lock().expect("pipelines lock");
            if let Some(e) = running.get_mut(&key) {
                e.spec = spec;
            }
            return Ok(false);
        }
        let restarting = !live.is_empty();
        // Only the entry's handles may keep the old runners' queues open.
        drop(live);
        let stats = if !restarting {
            Arc::new(PipelineStats::default())
        } else {
            // Another number of runners (or one is gone): the old ones stop
            // between batches, or in a back-off or a wait for a full target
            // (then their batch is not committed, and runs again), and the
            // new ones start from the committed positions. Nothing is lost;
            // what runs again publishes outputs the targets recognise.
            let (old, stats) = {
                let mut running = self.pipelines.running.lock().expect("pipelines lock");
                let e = running.get_mut(&key).expect("a live pipeline has an entry");
                (std::mem::take(&mut e.runners), e.stats.clone())
            };
            tokio::task::spawn_blocking(move || stop_runners(old))
                .await
                .map_err(|e| NodeError::Storage(e.to_string()))?;
            stats.reloads.fetch_add(1, Relaxed);
            // Fresh runners: whatever failed was the old ones'.
            stats.set_state(RunState::Running);
            stats
        };
        stats.set_steps(
            deployments[0]
                .steps
                .iter()
                .map(|s| s.stats.clone())
                .collect(),
        );
        let count = deployments.len();
        let shares: Vec<Vec<u32>> = (0..count)
            .map(|index| {
                (0..source.partitions.len() as u32)
                    .filter(|p| *p as usize % count == index)
                    .collect()
            })
            .collect();
        stats.set_runners(shares.clone());
        let mut runners = Vec::with_capacity(count);
        for ((index, deployment), partitions) in deployments.into_iter().enumerate().zip(shares) {
            let (control, rx) = std::sync::mpsc::sync_channel(4);
            let runner = Runner {
                index,
                partitions,
                node: self.clone(),
                tenant: tenant.clone(),
                group: group_of(&spec.name),
                source: source.clone(),
                dead_letter: dead_letter.clone(),
                vault: self.vault(tenant)?,
                deployment,
                stats: stats.clone(),
                control: rx,
                rt: self.runtime.clone(),
                consecutive_failures: 0,
                in_batch: false,
                pending: None,
            };
            let thread = std::thread::Builder::new()
                .name(format!("sluice-pl-{}-{index}", spec.name))
                .spawn({
                    let stats = stats.clone();
                    let name = spec.name.clone();
                    move || {
                        // A bug in the runner ends this runner, not the node.
                        let run = std::panic::AssertUnwindSafe(|| runner.run());
                        if let Err(panic) = std::panic::catch_unwind(run) {
                            let what = panic
                                .downcast_ref::<&str>()
                                .map(|s| s.to_string())
                                .or_else(|| panic.downcast_ref::<String>().cloned())
                                .unwrap_or_default();
                            tracing::error!(pipeline = %name, "pipeline runner panicked: {what}");
                            stats.set_error(&format!("runner panicked: {what}"));
                            stats.set_state(RunState::Failed);
                        }
                    }
                });
            match thread {
                Ok(thread) => runners.push(RunnerHandle { control, thread }),
                Err(e) => {
                    let _ = tokio::task::spawn_blocking(move || stop_runners(runners)).await;
                    let reason = format!("cannot start the pipeline thread: {e}");
                    stats.set_state(RunState::Failed);
                    stats.set_error(&reason);
                    return Err(NodeError::Storage(reason));
                }
            }
        }
        let created = old_spec.is_none();
        self.pipelines
            .running
            .lock()
            .expect("pipelines lock")
            .insert(
                key,
                Entry {
                    spec,
                    stats,
                    runners,
                },
            );
        Ok(created)
    }

    /// Stops a pipeline and forgets it and its position. Its dead-letter
    /// stream stays (it holds data).
    pub async fn delete_pipeline(&self, tenant: &TenantId, name: &str) -> Result<(), NodeError> {
        let _admin = self.pipelines.admin.lock().await;
        let entry = self
            .pipelines
            .running
            .lock()
            .expect("pipelines lock")
            .remove(&(tenant.clone(), name.to_owned()))
            .ok_or_else(|| NodeError::NotFound(format!("pipeline {name:?}")))?;
        let runners = entry.runners;
        let _ = tokio::task::spawn_blocking(move || stop_runners(runners)).await;
        self.meta
            .apply(vec![MetaWrite::DeleteItem {
                table: Table::Pipelines,
                key: key_of(tenant, name),
            }])
            .await?;
        if let Ok(s) = self.stream(tenant, entry.spec.source.as_str()) {
            self.delete_group(&s, &group_of(name)).await?;
        }
        Ok(())
    }

    /// Starts the pipelines kept in metadata, then those of the config file.
    /// A stored pipeline that cannot start is kept, marked `failed` with
    /// the reason; one from the config file stops start-up.
    pub(crate) async fn start_pipelines(
        self: &Arc<Self>,
        from_config: &[(TenantId, PipelineSpec)],
        handlers: &[HandlerDeploy],
    ) -> anyhow::Result<()> {
        for h in handlers {
            self.deploy_handler(&h.tenant, &h.name, &h.version, h.wasm.clone())
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "handler {}@{} from the configuration: {e}",
                        h.name,
                        h.version
                    )
                })?;
        }
        let _admin = self.pipelines.admin.lock().await;
        for (key, doc) in self.meta.items(Table::Pipelines)? {
            let Some((tenant, name)) = key.split_once('/') else {
                continue;
            };
            let tenant = TenantId::new(tenant)?;
            if from_config
                .iter()
                .any(|(t, s)| *t == tenant && s.name == name)
            {
                continue;
            }
            let result = serde_json::from_slice::<PipelineDoc>(&doc)
                .map_err(|e| NodeError::Invalid(e.to_string()))
                .and_then(|d| d.into_spec(Some(name)).map_err(|e| NodeError::Invalid(e.0)));
            let started = match result {
                Ok(spec) => self.put_pipeline_locked(&tenant, spec, false).await,
                Err(e) => Err(e),
            };
            if let Err(e) = started {
                tracing::error!(pipeline = name, error = %e, "stored pipeline cannot start");
                self.mark_failed(&tenant, name, &doc, &e.to_string());
            }
        }
        for (tenant, spec) in from_config {
            let name = spec.name.clone();
            self.put_pipeline_locked(tenant, spec.clone(), true)
                .await
                .map_err(|e| {
                    anyhow::anyhow!(
                        "pipeline {name:?} of tenant {tenant} from the configuration: {e}"
                    )
                })?;
        }
        Ok(())
    }

    fn mark_failed(&self, tenant: &TenantId, name: &str, doc: &[u8], reason: &str) {
        let Some(spec) = serde_json::from_slice::<PipelineDoc>(doc)
            .ok()
            .and_then(|d| d.into_spec(Some(name)).ok())
        else {
            return;
        };
        let stats = Arc::new(PipelineStats::default());
        stats.set_state(RunState::Failed);
        stats.set_error(reason);
        self.pipelines
            .running
            .lock()
            .expect("pipelines lock")
            .insert(
                (tenant.clone(), name.to_owned()),
                Entry {
                    spec: Arc::new(spec),
                    stats,
                    runners: Vec::new(),
                },
            );
    }

    /// Names of `tenant`'s pipelines.
    pub fn pipeline_names(&self, tenant: &TenantId) -> Vec<String> {
        self.pipelines
            .running
            .lock()
            .expect("pipelines lock")
            .keys()
            .filter(|(t, _)| t == tenant)
            .map(|(_, n)| n.clone())
            .collect()
    }

    /// Per partition of the pipeline's source: (partition, committed
    /// offset, end offset). Empty when the source stream is gone.
    fn pipeline_positions(
        &self,
        tenant: &TenantId,
        spec: &PipelineSpec,
    ) -> Result<Vec<(usize, u64, u64)>, NodeError> {
        let Ok(source) = self.stream(tenant, spec.source.as_str()) else {
            return Ok(Vec::new());
        };
        let positions = self.group_positions(&source, &group_of(&spec.name))?;
        Ok(source
            .partitions
            .iter()
            .zip(positions)
            .enumerate()
            .map(|(p, (h, committed))| (p, committed, h.visible_end()))
            .collect())
    }

    /// What `GET /v1/pipelines/{name}` shows: the definition, the state,
    /// the position and lag per partition, and the counters.
    pub fn pipeline_status(&self, tenant: &TenantId, name: &str) -> Result<Value, NodeError> {
        let (spec, stats) = {
            let running = self.pipelines.running.lock().expect("pipelines lock");
            let e = running
                .get(&(tenant.clone(), name.to_owned()))
                .ok_or_else(|| NodeError::NotFound(format!("pipeline {name:?}")))?;
            (e.spec.clone(), e.stats.clone())
        };
        let mut doc = spec.doc.clone();
        doc.name = Some(spec.name.clone());
        let mut partitions = Vec::new();
        let mut lag_total = 0u64;
        for (p, committed, end) in self.pipeline_positions(tenant, &spec)? {
            let lag = end.saturating_sub(committed);
            lag_total += lag;
            partitions
                .push(json!({"partition": p, "committed": committed, "end": end, "lag": lag}));
        }
        let mut v = stats.to_json();
        let obj = v.as_object_mut().expect("stats are an object");
        obj.insert("name".into(), json!(spec.name));
        obj.insert("definition".into(), json!(doc));
        obj.insert("group".into(), json!(group_of(name).as_str()));
        obj.insert("dead_letter".into(), json!(spec.dead_letter.as_str()));
        obj.insert("partitions".into(), json!(partitions));
        obj.insert("lag".into(), json!(lag_total));
        Ok(v)
    }

    /// Pipeline and handler-step series for `/metrics`.
    pub fn render_pipeline_metrics(&self, tenant: &TenantId, out: &mut String) {
        let all: Vec<(String, Arc<PipelineSpec>, Arc<PipelineStats>)> = self
            .pipelines
            .running
            .lock()
            .expect("pipelines lock")
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .map(|((_, n), e)| (n.clone(), e.spec.clone(), e.stats.clone()))
            .collect();
        let counters: [Counter<PipelineStats>; 6] = [
            (
                "sluice_pipeline_messages_in_total",
                "Source messages a pipeline handled.",
                |s| s.messages_in.load(Relaxed),
            ),
            (
                "sluice_pipeline_messages_out_total",
                "Messages a pipeline published.",
                |s| s.messages_out.load(Relaxed),
            ),
            (
                "sluice_pipeline_filtered_total",
                "Source messages the handlers filtered out.",
                |s| s.filtered.load(Relaxed),
            ),
            (
                "sluice_pipeline_dead_lettered_total",
                "Messages sent to the dead-letter stream.",
                |s| s.dead_lettered.load(Relaxed),
            ),
            (
                "sluice_pipeline_retries_total",
                "Handler attempts after a failed one.",
                |s| s.retries.load(Relaxed),
            ),
            (
                "sluice_pipeline_breaker_opens_total",
                "Times the circuit breaker opened.",
                |s| s.breaker_opens.load(Relaxed),
            ),
        ];
        for (metric, help, get) in counters {
            family(out, metric, "counter", help);
            for (name, _, stats) in &all {
                let _ = writeln!(
                    out,
                    "{metric}{{pipeline=\"{}\"}} {}",
                    label(name),
                    get(stats)
                );
            }
        }
        family(
            out,
            "sluice_pipeline_lag_messages",
            "gauge",
            "Source messages not yet committed by a pipeline.",
        );
        for (name, spec, _) in &all {
            let lag: u64 = self
                .pipeline_positions(tenant, spec)
                .unwrap_or_default()
                .into_iter()
                .map(|(_, committed, end)| end.saturating_sub(committed))
                .sum();
            let _ = writeln!(
                out,
                "sluice_pipeline_lag_messages{{pipeline=\"{}\"}} {lag}",
                label(name)
            );
        }
        let step_counters: [Counter<StepStats>; 3] = [
            ("sluice_handler_invocations_total", "Handler calls.", |s| {
                s.invocations.load(Relaxed)
            }),
            (
                "sluice_handler_errors_total",
                "Handler calls that failed (trap, budget, handler-error).",
                |s| s.errors.load(Relaxed),
            ),
            (
                "sluice_handler_fuel_consumed_total",
                "Fuel burnt by handler calls.",
                |s| s.fuel_consumed.load(Relaxed),
            ),
        ];
        let step_labels = |name: &str, i: usize, s: &StepStats| {
            format!(
                "pipeline=\"{}\",step=\"{i}\",handler=\"{}\",version=\"{}\"",
                label(name),
                label(&s.handler),
                label(&s.version)
            )
        };
        for (metric, help, get) in step_counters {
            family(out, metric, "counter", help);
            for (name, _, stats) in &all {
                for (i, s) in stats.steps().iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "{metric}{{{}}} {}",
                        step_labels(name, i + 1, s),
                        get(s)
                    );
                }
            }
        }
        family(
            out,
            "sluice_handler_counter_total",
            "counter",
            "A handler's own counters (metrics.counter-add), by name.",
        );
        for (name, _, stats) in &all {
            for (i, s) in stats.steps().iter().enumerate() {
                for (counter, v) in s.counters() {
                    let _ = writeln!(
                        out,
                        "sluice_handler_counter_total{{{},name=\"{}\"}} {v}",
                        step_labels(name, i + 1, s),
                        label(&counter)
                    );
                }
            }
        }
        family(
            out,
            "sluice_handler_call_seconds",
            "histogram",
            "Latency of one handler call.",
        );
        for (name, _, stats) in &all {
            for (i, s) in stats.steps().iter().enumerate() {
                s.latency.render_with(
                    "sluice_handler_call_seconds",
                    &step_labels(name, i + 1, s),
                    out,
                );
            }
        }
    }
}
