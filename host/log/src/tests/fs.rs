//! The same partition over real files in a temporary directory: the seam's
//! real implementation must behave like the in-memory one.

use std::io::Write;
use std::sync::Arc;

use super::*;
use crate::FsStorage;
use crate::segment::{index_file_name, log_file_name};

#[test]
fn real_files_round_trip_roll_recover_and_retain() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("stream").join("3");
    let storage: Arc<dyn Storage> = Arc::new(FsStorage);
    let config = small_config();
    let (mut p, report) = Partition::open(storage.clone(), &dir, config.clone(), 0).unwrap();
    assert_eq!(report.segments, 1);
    for i in 0..200 {
        p.append(&[rec(i, &format!("v{i}"))], i).unwrap();
    }
    assert_eq!(p.sync().unwrap(), 200);
    let segments = p.segment_count();
    assert!(segments > 3);
    let all = read_all(&p);
    drop(p);
    assert!(dir.join(log_file_name(0)).exists());
    assert!(dir.join(index_file_name(0)).exists());

    // A torn tail written behind the log's back is cut on open.
    let active = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".log"))
        .max()
        .unwrap();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join(&active))
        .unwrap();
    f.write_all(&[crate::batch::MAGIC_V1, 1, 2, 3, 4, 5, 6])
        .unwrap();
    drop(f);
    std::fs::remove_file(dir.join(index_file_name(0))).unwrap();

    let (mut p, report) = Partition::open(storage.clone(), &dir, config.clone(), 0).unwrap();
    assert_eq!(report.truncated_bytes, 7);
    assert_eq!(report.segments, segments);
    assert_eq!(read_all(&p), all);
    assert!(dir.join(index_file_name(0)).exists(), "index rebuilt");
    assert_eq!(p.offset_for_timestamp(150).unwrap(), 150);

    let report = p
        .enforce_retention(
            0,
            &crate::Retention {
                max_age_ms: None,
                max_bytes: Some(2048),
            },
        )
        .unwrap();
    assert!(report.segments_deleted > 0);
    assert!(!dir.join(log_file_name(0)).exists());
    assert_eq!(p.append(&[rec(500, "tail")], 500).unwrap(), 200..201);
    p.sync().unwrap();
    let start = p.start_offset();
    drop(p);
    let (p, _) = Partition::open(storage, &dir, config, 0).unwrap();
    assert_eq!(p.start_offset(), start);
    assert_eq!(values(&p.read(200, 201, 10, 1000).unwrap()), ["tail"]);
}
