//! The Rust SDK's per-call arena (`sdk/rust/src/arena.rs`, the allocator of
//! every Rust guest), run natively on an instance of its own: it must never
//! hand out memory that is still live, must keep every block's bytes
//! through reallocation, and must actually reuse its memory call after call
//! (else it is dead weight), with `init`'s state and large blocks kept out.

#[path = "../../../../sdk/rust/src/arena.rs"]
#[allow(dead_code)]
mod arena;

use arena::CallArena;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::alloc::{GlobalAlloc, Layout};

/// A live block and the byte it was filled with.
struct Block {
    p: *mut u8,
    layout: Layout,
    fill: u8,
}

impl Block {
    fn new(a: &CallArena, size: usize, align: usize, fill: u8) -> Block {
        let layout = Layout::from_size_align(size, align).unwrap();
        let p = unsafe { a.alloc(layout) };
        assert!(!p.is_null());
        assert_eq!(p as usize % align, 0, "misaligned block");
        unsafe { std::ptr::write_bytes(p, fill, size) };
        Block { p, layout, fill }
    }

    fn intact(&self) -> bool {
        let bytes = unsafe { std::slice::from_raw_parts(self.p, self.layout.size()) };
        bytes.iter().all(|&b| b == self.fill)
    }

    fn free(self, a: &CallArena) {
        unsafe { a.dealloc(self.p, self.layout) }
    }
}

fn assert_disjoint(blocks: &[Block]) {
    let mut spans: Vec<(usize, usize)> = blocks
        .iter()
        .map(|b| (b.p as usize, b.p as usize + b.layout.size()))
        .collect();
    spans.sort();
    for w in spans.windows(2) {
        assert!(w[0].1 <= w[1].0, "live blocks overlap: {w:?}");
    }
}

/// Random allocations, reallocations (growing and shrinking, the newest
/// block and others) and frees, in "calls" that free what they made and
/// with some blocks kept across calls, as a cache would: no two live blocks
/// ever overlap and every block keeps its bytes.
#[test]
fn no_live_block_is_ever_handed_out_again() {
    for seed in 0..40u64 {
        let a = CallArena::new();
        let mut rng = StdRng::seed_from_u64(seed);
        let mut kept: Vec<Block> = Vec::new();
        let mut fill = 0u8;
        for _call in 0..60 {
            let mut live: Vec<Block> = Vec::new();
            for _ in 0..rng.random_range(1..80) {
                fill = fill.wrapping_add(1);
                match rng.random_range(0..10) {
                    0..=4 => {
                        let size = if rng.random_bool(0.05) {
                            rng.random_range(1..40_000)
                        } else {
                            rng.random_range(1..600)
                        };
                        let align = if rng.random_bool(0.02) {
                            1 << rng.random_range(6..15)
                        } else {
                            1 << rng.random_range(0..6)
                        };
                        live.push(Block::new(&a, size, align, fill));
                    }
                    5 | 6 if !live.is_empty() => {
                        // Newest block half the time, so in-place growth runs.
                        let i = if rng.random_bool(0.5) {
                            live.len() - 1
                        } else {
                            rng.random_range(0..live.len())
                        };
                        let b = &mut live[i];
                        assert!(b.intact(), "seed {seed}: block changed before realloc");
                        // Now and then past a chunk: the block moves out.
                        let new_size = if rng.random_bool(0.03) {
                            rng.random_range(16_000..40_000)
                        } else {
                            rng.random_range(1..3000)
                        };
                        let q = unsafe { a.realloc(b.p, b.layout, new_size) };
                        assert!(!q.is_null());
                        let keep = b.layout.size().min(new_size);
                        let bytes = unsafe { std::slice::from_raw_parts(q, keep) };
                        assert!(
                            bytes.iter().all(|&x| x == b.fill),
                            "seed {seed}: realloc lost bytes"
                        );
                        b.p = q;
                        b.layout = Layout::from_size_align(new_size, b.layout.align()).unwrap();
                        unsafe { std::ptr::write_bytes(q, b.fill, new_size) };
                    }
                    7 if !live.is_empty() => {
                        let b = live.swap_remove(rng.random_range(0..live.len()));
                        assert!(b.intact(), "seed {seed}: block changed before free");
                        b.free(&a);
                    }
                    8 if !live.is_empty() && rng.random_bool(0.2) => {
                        kept.push(live.swap_remove(rng.random_range(0..live.len())));
                    }
                    _ => {}
                }
                let all: Vec<&Block> = live.iter().chain(&kept).collect();
                assert!(
                    all.iter().all(|b| b.intact()),
                    "seed {seed}: a live block changed"
                );
            }
            let mut both: Vec<Block> = live.into_iter().collect();
            both.append(&mut kept);
            assert_disjoint(&both);
            let (l, k): (Vec<Block>, Vec<Block>) =
                both.into_iter().partition(|_| rng.random_bool(0.9));
            kept = k;
            for b in l {
                assert!(b.intact());
                b.free(&a);
            }
            if kept.len() > 20 {
                kept.drain(..10).for_each(|b| b.free(&a));
            }
        }
        kept.into_iter().for_each(|b| b.free(&a));
    }
}

/// Call after call, a handler's per-call blocks come from the arena and
/// from the same memory again; what `init` builds and blocks larger than a
/// chunk come from the general allocator.
#[test]
fn each_call_reuses_the_memory_of_the_last() {
    let a = CallArena::new();
    let state = a.persistent(|| Block::new(&a, 100, 8, 0xAA));
    assert!(!a.holds(state.p), "init's state came from the arena");
    let first = Block::new(&a, 300, 8, 1);
    let first_at = first.p;
    assert!(a.holds(first_at));
    first.free(&a);
    for call in 0..10_000u32 {
        // A call: the lowered message, a few working blocks, the output.
        let blocks: Vec<Block> = (0..6)
            .map(|i| Block::new(&a, 200 + 50 * i, 8, call as u8))
            .collect();
        assert!(blocks.iter().all(|b| a.holds(b.p)));
        assert_eq!(blocks[0].p, first_at, "call {call} did not start over");
        blocks.into_iter().rev().for_each(|b| b.free(&a));
    }
    let large = Block::new(&a, 1 << 20, 16, 2);
    assert!(!a.holds(large.p), "a 1 MiB block came from the arena");
    large.free(&a);
    assert!(state.intact());
    state.free(&a);
}

/// A block kept past its call (a cache) stops its chunk from starting
/// over, but not the arena: the next calls move to other chunks, and the
/// kept block's bytes stay as they were.
#[test]
fn a_kept_block_pins_only_its_chunk() {
    let a = CallArena::new();
    let kept = Block::new(&a, 64, 8, 0x5A);
    assert!(a.holds(kept.p));
    for call in 0..10_000u32 {
        let blocks: Vec<Block> = (0..4)
            .map(|_| Block::new(&a, 6000, 8, call as u8))
            .collect();
        assert!(
            blocks.iter().all(|b| a.holds(b.p)),
            "call {call} left the arena"
        );
        blocks.into_iter().for_each(|b| b.free(&a));
    }
    assert!(kept.intact(), "the kept block was overwritten");
    kept.free(&a);
}

/// The newest block grows and shrinks where it is, and a freed newest
/// block's room is cut again at once while older blocks are live; while
/// `init` runs, a block it grows moves to the general allocator.
#[test]
fn the_newest_block_is_grown_and_reclaimed_in_place() {
    let a = CallArena::new();
    let older = Block::new(&a, 100, 8, 1);
    let mut newest = Block::new(&a, 100, 8, 2);
    for new_size in [3000, 50, 9000] {
        let q = unsafe { a.realloc(newest.p, newest.layout, new_size) };
        assert_eq!(q, newest.p, "the newest block moved to grow to {new_size}");
        newest.layout = Layout::from_size_align(new_size, 8).unwrap();
        unsafe { std::ptr::write_bytes(q, 2, new_size) };
    }
    let at = newest.p;
    newest.free(&a);
    let again = Block::new(&a, 200, 8, 3);
    assert_eq!(again.p, at, "the freed newest block's room was not reused");
    let q = a.persistent(|| unsafe { a.realloc(again.p, again.layout, 400) });
    assert!(!a.holds(q), "a block grown during init stayed in the arena");
    let grown = Block {
        p: q,
        layout: Layout::from_size_align(400, 8).unwrap(),
        fill: 3,
    };
    let kept = unsafe { std::slice::from_raw_parts(q, 200) };
    assert!(kept.iter().all(|&b| b == 3), "the move lost bytes");
    assert!(older.intact());
    grown.free(&a);
    older.free(&a);
}

/// With a kept block in every chunk, allocation falls back to the general
/// allocator; once they are freed, the arena is used again.
#[test]
fn with_every_chunk_held_allocation_falls_back_then_recovers() {
    let a = CallArena::new();
    let mut kept = Vec::new();
    let mut fell_back = false;
    for _ in 0..1000 {
        // A small kept block, then filler that fills its chunk.
        let k = Block::new(&a, 32, 8, 7);
        let in_arena = a.holds(k.p);
        kept.push(k);
        if !in_arena {
            fell_back = true;
            break;
        }
        let filler: Vec<Block> = (0..4).map(|_| Block::new(&a, 4000, 8, 8)).collect();
        filler.into_iter().for_each(|b| b.free(&a));
    }
    assert!(
        fell_back,
        "kept blocks in every chunk never made it fall back"
    );
    assert!(kept.len() > 8, "fell back after {} kept blocks", kept.len());
    assert!(kept.iter().all(Block::intact));
    kept.into_iter().for_each(|b| b.free(&a));
    let b = Block::new(&a, 64, 8, 9);
    assert!(
        a.holds(b.p),
        "the arena was not used again once its chunks were free"
    );
    b.free(&a);
}
