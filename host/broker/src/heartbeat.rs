//! When this node was last known to be up: a timestamp rewritten every
//! second in the data directory, read at start-up before anything else
//! runs. The de-duplication windows are rebuilt as they stood at that
//! moment (or at the stream's last append, if later), so the time a node
//! was down does not count against them, while the time it was up and
//! idle does.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// How often the timestamp is rewritten: the error, in time a window is
/// believed up, after a crash.
const HEARTBEAT_MS: u64 = 1_000;
const FILE: &str = "alive-ms";

/// When the node that last used `data_dir` was last known to be up, if a
/// previous run left a readable timestamp.
pub fn last_alive_ms(data_dir: &Path) -> Option<i64> {
    std::fs::read_to_string(data_dir.join(FILE))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Rewrites the timestamp every [`HEARTBEAT_MS`] until the returned token
/// is dropped (the node with it).
pub fn spawn(data_dir: &Path) -> std::io::Result<Arc<()>> {
    let token = Arc::new(());
    let alive: Weak<()> = Arc::downgrade(&token);
    let (path, tmp): (PathBuf, PathBuf) = (data_dir.join(FILE), data_dir.join("alive-ms.tmp"));
    write(&path, &tmp)?;
    std::thread::Builder::new()
        .name("sluice-heartbeat".into())
        .spawn(move || {
            while alive.strong_count() > 0 {
                std::thread::sleep(Duration::from_millis(HEARTBEAT_MS));
                if let Err(e) = write(&path, &tmp) {
                    tracing::warn!(error = %e, "cannot record that the node is up");
                }
            }
        })?;
    Ok(token)
}

/// Write and rename, so a crash leaves the old timestamp or the new one.
fn write(path: &Path, tmp: &Path) -> std::io::Result<()> {
    std::fs::write(tmp, crate::stream::now_ms().to_string())?;
    std::fs::rename(tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timestamp_is_written_at_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(last_alive_ms(dir.path()), None);
        let before = crate::stream::now_ms();
        let token = spawn(dir.path()).unwrap();
        let at = last_alive_ms(dir.path()).expect("written at start");
        assert!(at >= before && at <= crate::stream::now_ms());
        drop(token);
        std::fs::write(dir.path().join(FILE), "garbage").unwrap();
        assert_eq!(last_alive_ms(dir.path()), None, "unreadable is unknown");
    }
}
