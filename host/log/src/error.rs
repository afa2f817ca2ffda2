//! The one error type of the crate. Variants carry the data an operator needs
//! (path, position, sizes) because a storage error without its file is useless
//! at 3 a.m.; the broker maps them to client-facing refusals.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("storage full (ENOSPC) on {path}")]
    NoSpace { path: PathBuf },
    #[error("partition is poisoned after a failed write or fsync; reopen it")]
    Poisoned,
    #[error("batch of {bytes} bytes exceeds batch_bytes_max {max}")]
    BatchTooLarge { bytes: u64, max: u64 },
    #[error("corrupt batch in segment {segment} at position {position}: {reason}")]
    Corrupt {
        segment: PathBuf,
        position: u64,
        reason: String,
    },
    #[error("empty append")]
    Empty,
}

impl LogError {
    /// Classifies an I/O error: a full disk is a distinct, expected condition
    /// (the broker answers "quota exceeded" and retries later), anything else
    /// is a plain I/O failure.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> LogError {
        let path = path.into();
        if is_no_space(&source) {
            LogError::NoSpace { path }
        } else {
            LogError::Io { path, source }
        }
    }
}

/// ENOSPC and EDQUOT both mean "no room for these bytes"; the log treats them
/// the same way.
pub(crate) fn is_no_space(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}
