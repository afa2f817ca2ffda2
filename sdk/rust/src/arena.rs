//! A per-call arena as the guest's global allocator (feature `call-arena`,
//! on by default). Nearly everything a handler allocates lives for one call:
//! the message the host lowers in, the parsed payload, the outputs the host
//! lifts back out before freeing them. So allocation bumps a pointer and
//! freeing only counts. The arena is a few chunks of a static region; each
//! chunk counts its live blocks and starts over when the last one is freed.
//! What `init` builds (the handler's state) and blocks larger than a chunk
//! come from the general allocator.
//!
//! Sound whatever the handler keeps: a chunk starts over only when none of
//! its blocks is live. A block kept past the call (a cache grown in
//! `handle`, a lazily built regex state) keeps its chunk from starting over
//! and allocation moves to another chunk; when every chunk holds such a
//! block, it falls back to the general allocator, as without the arena.
//! Wasm guests are single-threaded, so the state needs no locks.
//!
//! The region is a zeroed static (`.bss`), part of the instance's initial
//! memory, and a block's chunk is one subtraction away. Measured on
//! redact-json and passthrough (docs/handlers.md): a reused instance's call
//! costs 8-17% less, a fresh instance ~3 µs (~12%) more, for the pages the
//! region adds to those the general allocator's heap already touches.
//! Taking the region from the general allocator instead cost a fresh
//! instance ~8 µs (its memory grows); chunks taken one at a time cost
//! ~1 µs but made finding a block's chunk a search, which a handler whose
//! chunks are pinned by caches (anonymise) paid on every free.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, UnsafeCell};

/// Bytes of one chunk.
const CHUNK_BYTES: usize = 16 << 10;
/// Chunks in the region, 256 KiB in all. At most 32: [`CallArena::used`]
/// is a bit mask.
const CHUNKS: usize = 16;
const ARENA_BYTES: usize = CHUNK_BYTES * CHUNKS;
const ALL_CHUNKS: u32 = if CHUNKS == 32 {
    u32::MAX
} else {
    (1 << CHUNKS) - 1
};

#[repr(C, align(16))]
struct Region(UnsafeCell<[u8; ARENA_BYTES]>);

/// Every field starts at zero, so the allocator's static lies in `.bss`.
pub struct CallArena {
    region: Region,
    /// The chunk blocks are cut from, and the offset of its first free byte
    /// in the region.
    current: Cell<usize>,
    top: Cell<usize>,
    /// Blocks handed out and not yet freed, per chunk.
    live: [Cell<u32>; CHUNKS],
    /// The chunks with a live block, a bit each: what `live` says, kept
    /// so that finding a free chunk, which once every chunk is held every
    /// allocation tries, is one operation.
    used: Cell<u32>,
    /// While set (during `init`), allocation goes to the general allocator:
    /// what `init` builds is kept for the instance's life.
    persistent: Cell<bool>,
}

// Wasm components run on one thread; nothing here is reached concurrently.
unsafe impl Sync for CallArena {}

impl CallArena {
    pub const fn new() -> Self {
        CallArena {
            region: Region(UnsafeCell::new([0; ARENA_BYTES])),
            current: Cell::new(0),
            top: Cell::new(0),
            live: [const { Cell::new(0) }; CHUNKS],
            used: Cell::new(0),
            persistent: Cell::new(false),
        }
    }

    /// Runs `f` with allocation going to the general allocator.
    pub fn persistent<R>(&self, f: impl FnOnce() -> R) -> R {
        let was = self.persistent.replace(true);
        let r = f();
        self.persistent.set(was);
        r
    }

    fn base(&self) -> usize {
        self.region.0.get() as usize
    }

    /// The chunk `p` lies in, if it lies in the region.
    fn chunk_of(&self, p: *mut u8) -> Option<usize> {
        let offset = (p as usize).wrapping_sub(self.base());
        (offset < ARENA_BYTES).then_some(offset / CHUNK_BYTES)
    }

    /// Whether `p` lies in the arena (for the tests, which run this file
    /// natively: host/wasm/tests/all/guest_arena.rs).
    #[cfg(test)]
    pub fn holds(&self, p: *mut u8) -> bool {
        self.chunk_of(p).is_some()
    }

    /// Address of the end of chunk `i`.
    fn chunk_end(&self, i: usize) -> usize {
        self.base() + (i + 1) * CHUNK_BYTES
    }

    /// Cuts a block for `layout` from the current chunk, or None.
    fn cut(&self, layout: Layout) -> Option<*mut u8> {
        let base = self.base();
        let start = (base + self.top.get()).checked_next_multiple_of(layout.align())?;
        let end = start.checked_add(layout.size())?;
        let i = self.current.get();
        if end > self.chunk_end(i) {
            return None;
        }
        self.top.set(end - base);
        let live = self.live[i].get();
        if live == 0 {
            self.used.set(self.used.get() | (1 << i));
        }
        self.live[i].set(live + 1);
        Some(start as *mut u8)
    }

    /// A block of the arena for `layout`, or None when it has no room.
    fn bump(&self, layout: Layout) -> Option<*mut u8> {
        if let Some(p) = self.cut(layout) {
            return Some(p);
        }
        // The current chunk is full: move to one whose blocks are all freed.
        let free = !self.used.get() & ALL_CHUNKS & !(1 << self.current.get());
        if free == 0 {
            return None;
        }
        let next = free.trailing_zeros() as usize;
        self.current.set(next);
        self.top.set(next * CHUNK_BYTES);
        self.cut(layout)
    }
}

impl Default for CallArena {
    fn default() -> Self {
        Self::new()
    }
}

unsafe impl GlobalAlloc for CallArena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !self.persistent.get()
            && layout.size() <= CHUNK_BYTES
            && let Some(p) = self.bump(layout)
        {
            return p;
        }
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        let Some(i) = self.chunk_of(p) else {
            // SAFETY: `p` did not come from the arena, so from `System`.
            return unsafe { System.dealloc(p, layout) };
        };
        let live = self.live[i].get() - 1;
        self.live[i].set(live);
        if live == 0 {
            self.used.set(self.used.get() & !(1 << i));
        }
        if i != self.current.get() {
            return;
        }
        let offset = p as usize - self.base();
        if live == 0 {
            self.top.set(i * CHUNK_BYTES);
        } else if offset + layout.size() == self.top.get() {
            // The newest block: its room is free again.
            self.top.set(offset);
        }
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Some(i) = self.chunk_of(p) else {
            // A block of the general allocator stays there: it may be state
            // kept across calls, which must not pin a chunk.
            // SAFETY: `p` came from `System` with `layout`.
            return unsafe { System.realloc(p, layout, new_size) };
        };
        if !self.persistent.get()
            && i == self.current.get()
            && p as usize + layout.size() == self.base() + self.top.get()
            && let Some(end) = (p as usize).checked_add(new_size)
            && end <= self.chunk_end(i)
        {
            // The newest block grows or shrinks in place (unless `init` is
            // running: what it grows it keeps, so that moves out).
            self.top.set(end - self.base());
            return p;
        }
        // SAFETY: as `GlobalAlloc::realloc` requires of its caller.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: `new_layout` has a non-zero size (callers' contract).
        let q = unsafe { self.alloc(new_layout) };
        if !q.is_null() {
            // SAFETY: both blocks hold at least the smaller size; they are
            // distinct (the old block is still live).
            unsafe {
                std::ptr::copy_nonoverlapping(p, q, layout.size().min(new_size));
                self.dealloc(p, layout);
            }
        }
        q
    }
}
