//! The seam between the log and the disk.
//!
//! The log needs only a handful of operations (positional read and write,
//! fdatasync, truncate, list, remove, directory fsync), so the seam is that
//! small: [`FsStorage`] maps it onto real files, and the types in
//! [`crate::testing`] simulate crashes and inject faults behind the same
//! traits. It is also where another backend would plug in.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// A directory of files, as the log sees it.
pub trait Storage: Send + Sync + std::fmt::Debug {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// File names (not paths) in `dir`.
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>>;
    fn open_file(&self, path: &Path, create: bool) -> io::Result<Box<dyn StorageFile>>;
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Makes creations and removals of entries in `dir` durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// One open file. Positional I/O only, so that concurrent readers never race
/// on a shared cursor.
#[expect(
    clippy::len_without_is_empty,
    reason = "a file's length is an I/O query, not a collection size; the trait shape is the broker contract"
)]
pub trait StorageFile: Send + Sync + std::fmt::Debug {
    /// Reads up to `buf.len()` bytes at `pos`; fewer only at end of file.
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize>;
    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()>;
    /// fdatasync: the file's data (and its size) are durable when this returns Ok.
    fn sync_data(&self) -> io::Result<()>;
    fn len(&self) -> io::Result<u64>;
    fn set_len(&self, len: u64) -> io::Result<()>;
}

/// Reads exactly `buf.len()` bytes at `pos`, failing with `UnexpectedEof` if
/// the file is shorter. `read_at` may legally return short counts, so every
/// caller that needs the whole range goes through this loop.
pub(crate) fn read_exact_at(
    file: &dyn StorageFile,
    mut buf: &mut [u8],
    mut pos: u64,
) -> io::Result<()> {
    while !buf.is_empty() {
        match file.read_at(buf, pos) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "short read")),
            Ok(n) => {
                buf = &mut buf[n..];
                pos += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Real files through `std::fs`.
#[derive(Debug, Default, Clone, Copy)]
pub struct FsStorage;

impl FsStorage {
    pub fn new() -> std::sync::Arc<FsStorage> {
        std::sync::Arc::new(FsStorage)
    }
}

impl Storage for FsStorage {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            // Names that are not UTF-8 cannot be ours; skip them rather than fail.
            if let Ok(name) = entry.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }

    fn open_file(&self, path: &Path, create: bool) -> io::Result<Box<dyn StorageFile>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .open(path)?;
        Ok(Box::new(FsFile(file)))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        // On Linux a directory is fsynced through a read-only handle on it.
        File::open(dir)?.sync_all()
    }
}

#[derive(Debug)]
struct FsFile(File);

impl StorageFile for FsFile {
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        self.0.read_at(buf, pos)
    }
    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()> {
        self.0.write_all_at(buf, pos)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fs_storage_basics() {
        let dir = tempfile::tempdir().unwrap();
        let s = FsStorage;
        let p = dir.path().join("a.log");
        let f = s.open_file(&p, true).unwrap();
        f.write_all_at(b"hello world", 0).unwrap();
        f.sync_data().unwrap();
        let mut buf = [0u8; 5];
        read_exact_at(&*f, &mut buf, 6).unwrap();
        assert_eq!(&buf, b"world");
        assert!(read_exact_at(&*f, &mut buf, 8).is_err());
        f.set_len(5).unwrap();
        assert_eq!(f.len().unwrap(), 5);
        s.sync_dir(dir.path()).unwrap();
        assert_eq!(s.list_dir(dir.path()).unwrap(), vec!["a.log".to_string()]);
        s.remove_file(&p).unwrap();
        assert!(s.list_dir(dir.path()).unwrap().is_empty());
        assert!(s.open_file(&p, false).is_err());
    }
}
