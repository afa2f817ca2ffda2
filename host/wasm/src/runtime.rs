//! The node-wide part of the runtime: one wasmtime `Engine` (pooling
//! allocator, epoch interruption, fuel), the compile cache, the linker with
//! the host imports, and the epoch ticker thread. Compiling is the slow step
//! (hundreds of ms per component), so a component is compiled once per
//! content hash and kept both in memory and on disk.

use crate::bindings::HandlerPre;
use crate::config::{Limits, RuntimeConfig};
use crate::error::{LoadError, RuntimeError};
use crate::handler::LoadedHandler;
use crate::host::{HandlerIdent, StoreData};
use crate::vault::TenantKeys;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// Compiled components kept in memory. A `LoadedHandler` holds its own
/// reference, so evicting only costs a disk-cache read on the next load of
/// that version; the cap keeps redeploy after redeploy from growing memory.
const COMPILED_IN_MEMORY_MAX: usize = 256;

/// The shared Wasm runtime of a node. Cheap to clone; the epoch ticker
/// stops when the last clone is dropped.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    linker: Linker<StoreData>,
    config: RuntimeConfig,
    /// Compiled components by content hash, so loading a new version of a
    /// pipeline that reuses a handler costs nothing.
    compiled: Mutex<HashMap<String, Component>>,
    ticker_stop: Arc<AtomicBool>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

/// Where `load` found the compiled code; tests and metrics use it to see
/// the cache working.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompileSource {
    /// Compiled from the Wasm bytes in this call.
    Compiled,
    /// Deserialised from the on-disk cache.
    DiskCache,
    /// Already compiled earlier in this process.
    MemoryCache,
}

impl Runtime {
    /// Builds the engine and the linker and starts the epoch ticker.
    pub fn new(config: RuntimeConfig) -> Result<Runtime, RuntimeError> {
        let engine = Engine::new(&engine_config(&config))
            .map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        if let Some(dir) = &config.cache_dir {
            std::fs::create_dir_all(dir).map_err(|source| RuntimeError::CacheDir {
                path: dir.clone(),
                source,
            })?;
        }
        let mut linker = Linker::new(&engine);
        // The contract's imports, through the narrow `GuestHost` view.
        crate::bindings::Handler::add_to_linker::<StoreData, HasSelf<crate::host::GuestHost>>(
            &mut linker,
            |d| &mut d.host,
        )
        .map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;
        // WASI p2, only because wasm32-wasip2 toolchains import it; every
        // store gets a deny-all context (`host::deny_all_wasi`).
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;

        let ticker_stop = Arc::new(AtomicBool::new(false));
        spawn_ticker(engine.clone(), config.epoch_tick_ms, ticker_stop.clone())
            .map_err(RuntimeError::Ticker)?;
        Ok(Runtime {
            inner: Arc::new(Inner {
                engine,
                linker,
                config,
                compiled: Mutex::default(),
                ticker_stop,
            }),
        })
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    /// Compiles (or finds in the cache) `wasm` — a component binary —,
    /// links it against the host imports once, starts a first instance and
    /// runs its `init(config)` so a bad component or config fails here, at
    /// deploy time, rather than on the first message. `keys` are the
    /// tenant's pseudonymisation secret (an `Arc<[u8]>` converts) and
    /// optionally its token vault: they stay in the host.
    pub fn load(
        &self,
        name: &str,
        version: &str,
        wasm: &[u8],
        limits: Limits,
        config: &str,
        keys: impl Into<TenantKeys>,
    ) -> Result<LoadedHandler, LoadError> {
        limits
            .validate(&self.inner.config)
            .map_err(LoadError::Limits)?;
        let (pre, source) = self.link(wasm)?;
        let ident = Arc::new(HandlerIdent {
            name: name.to_owned(),
            version: version.to_owned(),
        });
        LoadedHandler::start(
            pre,
            ident,
            limits,
            config.to_owned(),
            keys.into(),
            self.inner.config.clone(),
            source,
        )
    }

    /// Compiles `wasm` and links it against the host imports without
    /// starting an instance: what a deploy checks before it stores a
    /// handler, so a component that does not fit the world is refused then.
    pub fn check(&self, wasm: &[u8]) -> Result<CompileSource, LoadError> {
        self.link(wasm).map(|(_, source)| source)
    }

    fn link(&self, wasm: &[u8]) -> Result<(HandlerPre<StoreData>, CompileSource), LoadError> {
        let (component, source) = self.compile(wasm)?;
        let pre = self
            .inner
            .linker
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Link(format!("{e:#}")))?;
        let pre = HandlerPre::new(pre).map_err(|e| LoadError::Link(format!("{e:#}")))?;
        Ok((pre, source))
    }

    /// Compiles `wasm` into the caches without loading it, e.g. when a
    /// pipeline is deployed, so the first `load` is fast.
    pub fn precompile(&self, wasm: &[u8]) -> Result<CompileSource, LoadError> {
        self.compile(wasm).map(|(_, source)| source)
    }

    /// Compiles `wasm` or fetches it from the memory or disk cache.
    fn compile(&self, wasm: &[u8]) -> Result<(Component, CompileSource), LoadError> {
        let key = self.cache_key(wasm);
        if let Some(c) = lock(&self.inner.compiled).get(&key) {
            return Ok((c.clone(), CompileSource::MemoryCache));
        }
        let path = self.cache_path(&key);
        if let Some(path) = &path
            && let Ok(bytes) = std::fs::read(path)
        {
            // Read, not mmapped (`deserialize_file`): a cache file truncated
            // under a running node would otherwise SIGBUS it.
            // SAFETY: the cache directory belongs to the node and entries
            // are written whole by `store_cached` (temp file, then rename);
            // the key includes the engine's compatibility hash, and wasmtime
            // checks the header and refuses an incompatible artefact.
            match unsafe { Component::deserialize(&self.inner.engine, &bytes) } {
                Ok(c) => {
                    self.remember(key, &c);
                    return Ok((c, CompileSource::DiskCache));
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), "ignoring unusable compile cache entry: {e:#}")
                }
            }
        }
        let c = Component::from_binary(&self.inner.engine, wasm)
            .map_err(|e| LoadError::Compile(format!("{e:#}")))?;
        if let Some(path) = &path {
            // A cache that cannot be written only costs a recompile later.
            if let Err(e) = store_cached(&c, path) {
                tracing::warn!(path = %path.display(), "cannot write compile cache entry: {e}");
            }
        }
        self.remember(key, &c);
        Ok((c, CompileSource::Compiled))
    }

    fn remember(&self, key: String, c: &Component) {
        let mut compiled = lock(&self.inner.compiled);
        if compiled.len() >= COMPILED_IN_MEMORY_MAX {
            // Any entry will do: see COMPILED_IN_MEMORY_MAX.
            let victim = compiled.keys().next().cloned();
            if let Some(victim) = victim {
                compiled.remove(&victim);
            }
        }
        compiled.insert(key, c.clone());
    }

    /// SHA-256 of the Wasm bytes plus a hash of everything in the engine
    /// that makes compiled code incompatible (wasmtime version, settings).
    fn cache_key(&self, wasm: &[u8]) -> String {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.inner
            .engine
            .precompile_compatibility_hash()
            .hash(&mut h);
        let digest = Sha256::digest(wasm);
        let mut key = String::with_capacity(64 + 17);
        for b in digest {
            key.push_str(&format!("{b:02x}"));
        }
        key.push_str(&format!("-{:016x}", h.finish()));
        key
    }

    fn cache_path(&self, key: &str) -> Option<PathBuf> {
        self.inner
            .config
            .cache_dir
            .as_ref()
            .map(|d| d.join(format!("{key}.cwasm")))
    }

    /// The path a component's compiled code is cached at, if a disk cache
    /// is configured.
    pub fn cache_file_for(&self, wasm: &[u8]) -> Option<PathBuf> {
        self.cache_path(&self.cache_key(wasm))
    }
}

fn engine_config(rc: &RuntimeConfig) -> Config {
    let mut c = Config::new();
    c.wasm_component_model(true);
    // No component-model-async: it adds 0.4-0.9 us to every call (issue 4).
    c.concurrency_support(false);
    c.epoch_interruption(true);
    c.consume_fuel(rc.fuel_enabled);
    // Guest backtraces go into `trap: …` dead-letter reasons; 32 frames
    // are plenty to find the culprit and cheap to collect.
    c.wasm_backtrace_max_frames(std::num::NonZeroUsize::new(32));

    let n = rc.instances_max;
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(n)
        // Today's toolchains emit components of 2-10 core modules (the
        // guest plus shims); JS and Python engines the most.
        .total_core_instances(n.saturating_mul(16))
        .total_memories(n.saturating_mul(4))
        .total_tables(n.saturating_mul(16))
        .max_memory_size(rc.memory_bytes_max_ceiling as usize)
        // Keeping the first 64 KiB of each memory resident makes pooled
        // re-instantiation measurably cheaper (issue 4).
        .linear_memory_keep_resident(64 << 10)
        .table_keep_resident(64 << 10);
    c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    c
}

fn store_cached(c: &Component, path: &std::path::Path) -> std::io::Result<()> {
    let bytes = c
        .serialize()
        .map_err(|e| std::io::Error::other(format!("{e:#}")))?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// Advances the engine's epoch every `tick_ms` until `stop`; a store's
/// deadline is a number of ticks, so this thread is what ends a runaway
/// guest even when fuel is off.
fn spawn_ticker(engine: Engine, tick_ms: u64, stop: Arc<AtomicBool>) -> std::io::Result<()> {
    let tick = Duration::from_millis(tick_ms.max(1));
    std::thread::Builder::new()
        .name("sluice-wasm-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(tick);
                engine.increment_epoch();
            }
        })?;
    Ok(())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave the map inconsistent
    // (single insert/get), so poisoning is ignored.
    m.lock().unwrap_or_else(|p| p.into_inner())
}
