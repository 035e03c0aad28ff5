//! Unit tests of `memory`.

use super::*;

#[test]
fn trims_only_after_conferences_ended() {
    let mut t = Trimmer::default();
    assert!(!t.due(0), "nothing ended yet");
    assert!(t.due(3));
    assert!(!t.due(3), "nothing new ended");
    assert!(t.due(4));
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn freed_memory_leaves_the_resident_set() {
    fn rss_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }
    // 64 MiB in small blocks from another thread (an arena of its own), touched, freed
    // out of order except the last (so the arena's top cannot simply shrink).
    let before = std::thread::spawn(|| {
        let mut blocks: Vec<Vec<u8>> = (0..16_384).map(|_| vec![1u8; 4096]).collect();
        let keep = blocks.pop();
        let before = rss_kib();
        drop(blocks);
        std::mem::forget(keep);
        before
    })
    .join()
    .unwrap();
    let freed_but_kept = rss_kib();
    release();
    let after = rss_kib();
    assert!(
        after + 32_768 < freed_but_kept,
        "RSS with 64 MiB allocated {before} KiB, freed {freed_but_kept} KiB, trimmed {after} KiB"
    );
}
