//! Components are compiled once per content hash: a second load in the
//! same process hits memory, a new process (a new `Runtime`) hits the disk
//! cache, and a damaged cache file only costs a recompile.

use sluice_wasm::{CompileSource, Limits, Runtime, RuntimeConfig};
use std::time::Instant;

fn runtime_with_cache(dir: &std::path::Path) -> Runtime {
    Runtime::new(RuntimeConfig {
        cache_dir: Some(dir.to_owned()),
        instances_max: 8,
        ..RuntimeConfig::default()
    })
    .unwrap()
}

#[test]
fn compile_cache_hits_on_second_load() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = crate::guests::guest("redact-json");
    let config = r#"{"fields": ["/a"]}"#;
    let load = |rt: &Runtime| {
        let t = Instant::now();
        let h = rt
            .load(
                "redact-json",
                "1",
                &wasm,
                Limits::default(),
                config,
                crate::secret("s"),
            )
            .unwrap();
        (h.compile_source(), t.elapsed())
    };

    let rt = runtime_with_cache(dir.path());
    let (first, cold) = load(&rt);
    assert_eq!(first, CompileSource::Compiled);
    let file = rt.cache_file_for(&wasm).unwrap();
    assert!(file.is_file(), "compiled code cached at {}", file.display());
    let (second, warm_mem) = load(&rt);
    assert_eq!(second, CompileSource::MemoryCache);

    // A new runtime stands for a restarted node.
    let rt2 = runtime_with_cache(dir.path());
    let (third, warm_disk) = load(&rt2);
    assert_eq!(third, CompileSource::DiskCache);
    eprintln!(
        "load redact-json: compile {cold:?}, disk cache {warm_disk:?}, memory cache {warm_mem:?}"
    );
    assert!(
        warm_disk < cold,
        "disk cache {warm_disk:?} not faster than compile {cold:?}"
    );

    std::fs::write(&file, b"garbage").unwrap();
    let rt3 = runtime_with_cache(dir.path());
    let (fourth, _) = load(&rt3);
    assert_eq!(
        fourth,
        CompileSource::Compiled,
        "a damaged entry is recompiled"
    );
}
