//! Storage doubles for tests: an in-memory disk that can crash, and a wrapper
//! that injects faults.
//!
//! They are public because the broker's tests need the same power: proving
//! that a producer is acknowledged only for what survives a crash requires a
//! disk that forgets exactly what a real one may forget. Modeled on
//! TigerBeetle's `src/testing/storage.zig` and redb's `FuzzerBackend`.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::storage::{Storage, StorageFile};

/// What a simulated crash leaves after the last synced byte of each file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TornTail {
    /// Only synced bytes survive.
    None,
    /// Up to this many of the unsynced bytes that followed the synced ones
    /// survive, as if the kernel had written back part of the page cache.
    KeepPrefix(usize),
    /// This many garbage bytes follow the synced ones, as if a sector had been
    /// half-written.
    Garbage(usize),
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic in another test thread must not hide this test's result.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Debug, Default)]
struct MemFileState {
    /// What a reader sees now (page cache).
    data: Vec<u8>,
    /// What survives a crash: the data as of the last `sync_data`.
    synced: Vec<u8>,
}

#[derive(Debug, Default)]
struct MemState {
    /// Directory entries as the running process sees them.
    live: BTreeMap<PathBuf, Arc<Mutex<MemFileState>>>,
    /// Directory entries that survive a crash: updated per directory by `sync_dir`.
    durable: BTreeMap<PathBuf, Arc<Mutex<MemFileState>>>,
    /// Seed of the garbage written by `TornTail::Garbage`, advanced per crash.
    garbage_seed: u64,
}

/// An in-memory disk. Each file keeps the bytes a reader sees and the bytes
/// that were synced; a file's creation or removal survives a crash only once
/// its directory was synced, as on a real file system without a journal
/// ordering guarantee.
#[derive(Debug, Default)]
pub struct MemStorage {
    state: Mutex<MemState>,
}

impl MemStorage {
    pub fn new() -> Arc<Self> {
        Arc::new(MemStorage::default())
    }

    /// Simulates a power loss: every file reverts to its synced bytes (plus the
    /// torn tail), files not yet durable in their directory vanish, removed
    /// files whose removal was not synced come back. Handles opened before the
    /// crash keep pointing at the old, discarded state, so drop them.
    pub fn crash(&self, torn: TornTail) {
        let mut st = lock(&self.state);
        st.garbage_seed = st.garbage_seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut seed = st.garbage_seed;
        let mut survivors = BTreeMap::new();
        for (path, file) in &st.durable {
            let f = lock(file);
            let mut bytes = f.synced.clone();
            match torn {
                TornTail::None => {}
                TornTail::KeepPrefix(n) => {
                    // Only data that extends the synced bytes can be a torn
                    // tail; a rewrite of synced bytes is not modeled.
                    if f.data.len() > f.synced.len() && f.data.starts_with(&f.synced) {
                        let extra = &f.data[f.synced.len()..];
                        bytes.extend_from_slice(&extra[..n.min(extra.len())]);
                    }
                }
                TornTail::Garbage(n) => {
                    if f.data.len() > f.synced.len() {
                        for _ in 0..n {
                            // xorshift64*: cheap, deterministic garbage.
                            seed ^= seed >> 12;
                            seed ^= seed << 25;
                            seed ^= seed >> 27;
                            bytes.push((seed.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8);
                        }
                    }
                }
            }
            let fresh = MemFileState {
                data: bytes.clone(),
                synced: bytes,
            };
            survivors.insert(path.clone(), Arc::new(Mutex::new(fresh)));
        }
        st.live = survivors.clone();
        st.durable = survivors;
    }

    /// The bytes a reader would see in `path` now, for assertions.
    pub fn file_bytes(&self, path: &Path) -> Option<Vec<u8>> {
        let st = lock(&self.state);
        st.live.get(path).map(|f| lock(f).data.clone())
    }
}

impl Storage for MemStorage {
    fn create_dir_all(&self, _dir: &Path) -> io::Result<()> {
        // Directories are implicit: a file's parent is its directory.
        Ok(())
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let st = lock(&self.state);
        Ok(st
            .live
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
            .collect())
    }

    fn open_file(&self, path: &Path, create: bool) -> io::Result<Box<dyn StorageFile>> {
        let mut st = lock(&self.state);
        let file = match st.live.get(path) {
            Some(f) => f.clone(),
            None if create => {
                let f = Arc::new(Mutex::new(MemFileState::default()));
                st.live.insert(path.to_owned(), f.clone());
                f
            }
            None => {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{} not found", path.display()),
                ));
            }
        };
        Ok(Box::new(MemFile(file)))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut st = lock(&self.state);
        match st.live.remove(path) {
            Some(_) => Ok(()),
            None => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} not found", path.display()),
            )),
        }
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut st = lock(&self.state);
        st.durable.retain(|p, _| p.parent() != Some(dir));
        let entries: Vec<_> = st
            .live
            .iter()
            .filter(|(p, _)| p.parent() == Some(dir))
            .map(|(p, f)| (p.clone(), f.clone()))
            .collect();
        st.durable.extend(entries);
        Ok(())
    }
}

#[derive(Debug)]
struct MemFile(Arc<Mutex<MemFileState>>);

impl StorageFile for MemFile {
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        let f = lock(&self.0);
        let Ok(pos) = usize::try_from(pos) else {
            return Ok(0);
        };
        if pos >= f.data.len() {
            return Ok(0);
        }
        let n = buf.len().min(f.data.len() - pos);
        buf[..n].copy_from_slice(&f.data[pos..pos + n]);
        Ok(n)
    }

    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()> {
        let mut f = lock(&self.0);
        let pos = usize::try_from(pos).map_err(|_| io::Error::other("position too large"))?;
        let end = pos + buf.len();
        if f.data.len() < end {
            f.data.resize(end, 0);
        }
        f.data[pos..end].copy_from_slice(buf);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut f = lock(&self.0);
        f.synced = f.data.clone();
        Ok(())
    }

    fn len(&self) -> io::Result<u64> {
        Ok(lock(&self.0).data.len() as u64)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let len = usize::try_from(len).map_err(|_| io::Error::other("length too large"))?;
        lock(&self.0).data.resize(len, 0);
        Ok(())
    }
}

/// Faults armed on a [`FaultyStorage`]; shared with the files it opened.
#[derive(Debug, Default)]
struct Faults {
    fail_next_sync: bool,
    /// Bytes that may still be written before writes fail with ENOSPC.
    enospc_after_bytes: Option<u64>,
    /// The next write stores only this many bytes, then fails with EIO.
    tear_next_write: Option<usize>,
    fail_next_set_len: bool,
    syncs: u64,
}

/// Wraps any [`Storage`] and fails on command: EIO on fsync, ENOSPC after a
/// byte budget, a torn write, a failed truncate, or a flipped byte on "disk".
#[derive(Debug)]
pub struct FaultyStorage {
    inner: Arc<dyn Storage>,
    faults: Arc<Mutex<Faults>>,
}

fn eio() -> io::Error {
    io::Error::from_raw_os_error(5)
}
fn enospc() -> io::Error {
    io::Error::from_raw_os_error(28)
}

impl FaultyStorage {
    pub fn new(inner: Arc<dyn Storage>) -> Arc<Self> {
        Arc::new(FaultyStorage {
            inner,
            faults: Arc::default(),
        })
    }

    /// The next `sync_data` or `sync_dir` fails with EIO.
    pub fn fail_next_sync(&self) {
        lock(&self.faults).fail_next_sync = true;
    }

    /// After `after_bytes` more bytes, writes fail with ENOSPC (the write that
    /// crosses the budget stores its first part, as a real short write would).
    pub fn fail_writes_with_enospc(&self, after_bytes: u64) {
        lock(&self.faults).enospc_after_bytes = Some(after_bytes);
    }

    /// The next write stores only its first `keep_bytes` bytes, then fails with EIO.
    pub fn tear_next_write(&self, keep_bytes: usize) {
        lock(&self.faults).tear_next_write = Some(keep_bytes);
    }

    /// The next `set_len` (truncate) fails with EIO.
    pub fn fail_next_set_len(&self) {
        lock(&self.faults).fail_next_set_len = true;
    }

    /// Disarms every fault ("space returns").
    pub fn clear_faults(&self) {
        let mut f = lock(&self.faults);
        let syncs = f.syncs;
        *f = Faults {
            syncs,
            ..Faults::default()
        };
    }

    /// How many `sync_data` calls succeeded, to check that the log fsyncs when
    /// (and only when) it should.
    pub fn sync_count(&self) -> u64 {
        lock(&self.faults).syncs
    }

    /// Flips every bit of the byte at `pos` in `path` and makes the flip
    /// durable: bit rot on the medium, invisible to the writer.
    pub fn corrupt_byte(&self, path: &Path, pos: u64) -> io::Result<()> {
        let file = self.inner.open_file(path, false)?;
        let mut b = [0u8; 1];
        crate::storage::read_exact_at(&*file, &mut b, pos)?;
        file.write_all_at(&[!b[0]], pos)?;
        file.sync_data()
    }
}

impl Storage for FaultyStorage {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.inner.create_dir_all(dir)
    }
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list_dir(dir)
    }
    fn open_file(&self, path: &Path, create: bool) -> io::Result<Box<dyn StorageFile>> {
        let inner = self.inner.open_file(path, create)?;
        Ok(Box::new(FaultyFile {
            inner,
            faults: self.faults.clone(),
        }))
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.inner.remove_file(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        if std::mem::take(&mut lock(&self.faults).fail_next_sync) {
            return Err(eio());
        }
        self.inner.sync_dir(dir)
    }
}

#[derive(Debug)]
struct FaultyFile {
    inner: Box<dyn StorageFile>,
    faults: Arc<Mutex<Faults>>,
}

impl StorageFile for FaultyFile {
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        self.inner.read_at(buf, pos)
    }

    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()> {
        let mut f = lock(&self.faults);
        if let Some(keep) = f.tear_next_write.take() {
            drop(f);
            self.inner.write_all_at(&buf[..keep.min(buf.len())], pos)?;
            return Err(eio());
        }
        if let Some(budget) = f.enospc_after_bytes {
            let len = buf.len() as u64;
            if len > budget {
                f.enospc_after_bytes = Some(0);
                drop(f);
                self.inner.write_all_at(&buf[..budget as usize], pos)?;
                return Err(enospc());
            }
            f.enospc_after_bytes = Some(budget - len);
        }
        drop(f);
        self.inner.write_all_at(buf, pos)
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut f = lock(&self.faults);
        if std::mem::take(&mut f.fail_next_sync) {
            return Err(eio());
        }
        f.syncs += 1;
        drop(f);
        self.inner.sync_data()
    }

    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        if std::mem::take(&mut lock(&self.faults).fail_next_set_len) {
            return Err(eio());
        }
        self.inner.set_len(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_storage_crash_keeps_only_synced_and_durable() {
        let s = MemStorage::new();
        let dir = Path::new("/p");
        let a = dir.join("a");
        let f = s.open_file(&a, true).unwrap();
        f.write_all_at(b"synced", 0).unwrap();
        f.sync_data().unwrap();
        f.write_all_at(b"+lost", 6).unwrap();
        // Not yet durable in the directory: the crash loses the file entirely.
        s.crash(TornTail::None);
        assert!(s.list_dir(dir).unwrap().is_empty());

        let f = s.open_file(&a, true).unwrap();
        f.write_all_at(b"synced", 0).unwrap();
        f.sync_data().unwrap();
        s.sync_dir(dir).unwrap();
        f.write_all_at(b"+tail", 6).unwrap();
        s.crash(TornTail::KeepPrefix(2));
        assert_eq!(s.file_bytes(&a).unwrap(), b"synced+t");
        let f = s.open_file(&a, false).unwrap();
        f.write_all_at(b"xyz", 8).unwrap();
        s.crash(TornTail::Garbage(3));
        assert_eq!(s.file_bytes(&a).unwrap().len(), 11);
    }

    #[test]
    fn faulty_storage_enospc_is_a_short_write() {
        let mem = MemStorage::new();
        let s = FaultyStorage::new(mem.clone());
        let p = Path::new("/p/f");
        let f = s.open_file(p, true).unwrap();
        s.fail_writes_with_enospc(4);
        let e = f.write_all_at(b"abcdef", 0).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::StorageFull);
        assert_eq!(mem.file_bytes(p).unwrap(), b"abcd");
        s.clear_faults();
        f.write_all_at(b"ef", 4).unwrap();
        s.fail_next_sync();
        assert!(f.sync_data().is_err());
        assert!(f.sync_data().is_ok());
    }
}
