//! jiancha's allocator — mimalloc — and the one setting of it that its processes change.
//!
//! [`Mimalloc`] is the global allocator of `jiancha` (src/main.rs) and of the benchmarks that
//! measure it. It differs from the `mimalloc` crate's `MiMalloc` in one thing: an allocation
//! whose alignment every mimalloc block already has (a machine word or less: strings, vectors
//! of integers, boxed structs — nearly all of the engine's) is asked for with `mi_malloc`, not
//! `mi_malloc_aligned`. mimalloc 3's aligned entry takes its fast path only while the size
//! class's free list has a block; when the list runs dry (every few hundred allocations of a
//! size) it over-allocates — a 48-byte request with 8-byte alignment becomes a 55-byte one,
//! a block of the 64-byte class — instead of refilling the list, and as that never makes a
//! 48-byte page, every 48-byte block took 64 bytes. Asked plainly, the engine runs 5 % fewer
//! instructions an event (callgrind; docs/BENCHMARKS.md, "eighth session").

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::{c_int, c_long, c_void};

use libmimalloc_sys::{
    mi_free, mi_malloc, mi_malloc_aligned, mi_realloc, mi_realloc_aligned, mi_zalloc,
    mi_zalloc_aligned,
};

/// The alignment every block of `mi_malloc` has: block sizes are whole machine words and the
/// first block of a page is aligned to 16 bytes (`MI_PAGE_MIN_START_BLOCK_ALIGN`).
const WORD: usize = std::mem::size_of::<usize>();

/// mimalloc as the global allocator, asked without an alignment when it needs none (above).
pub struct Mimalloc;

/// The block for `layout` from `plain(size)` when a word's alignment is enough, else from
/// `aligned(size, align)`.
#[allow(unsafe_code)]
#[inline]
unsafe fn pick(
    layout: Layout,
    plain: unsafe extern "C" fn(usize) -> *mut c_void,
    aligned: unsafe extern "C" fn(usize, usize) -> *mut c_void,
) -> *mut u8 {
    // SAFETY: the caller's contract (`GlobalAlloc::alloc`); see the impl below.
    unsafe {
        if layout.align() <= WORD {
            plain(layout.size()).cast()
        } else {
            aligned(layout.size(), layout.align()).cast()
        }
    }
}

#[allow(unsafe_code)]
// SAFETY: every call hands mimalloc a request it serves with the layout's alignment: plain
// calls only for alignments of a word or less (see `WORD`), aligned calls otherwise; blocks of
// both are freed and resized by mimalloc, which knows each block's own size.
unsafe impl GlobalAlloc for Mimalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: see the impl.
        unsafe { pick(layout, mi_malloc, mi_malloc_aligned) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: see the impl.
        unsafe { pick(layout, mi_zalloc, mi_zalloc_aligned) }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: see the impl.
        unsafe { mi_free(ptr.cast::<c_void>()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: see the impl.
        unsafe {
            if layout.align() <= WORD {
                mi_realloc(ptr.cast(), new_size).cast()
            } else {
                mi_realloc_aligned(ptr.cast(), new_size, layout.align()).cast()
            }
        }
    }
}

/// `mi_option_purge_delay` in mimalloc 3's `mi_option_e` (`mimalloc.h` of the
/// `libmimalloc-sys` version in Cargo.lock, whose Rust constants still follow mimalloc 2): how
/// long a freed page stays mapped before it is given back to the system, in milliseconds; -1
/// never. Re-read the header when that crate is upgraded.
const PURGE_DELAY: c_int = 15;
/// Its default (`options.c`; the header's comment still says 10).
const PURGE_DELAY_DEFAULT: c_long = 1000;

extern "C" {
    fn mi_option_get(option: c_int) -> c_long;
    fn mi_option_set(option: c_int, value: c_long);
    fn mi_process_info(
        elapsed_msecs: *mut usize,
        user_msecs: *mut usize,
        system_msecs: *mut usize,
        current_rss: *mut usize,
        peak_rss: *mut usize,
        current_commit: *mut usize,
        peak_commit: *mut usize,
        page_faults: *mut usize,
    );
}

/// Bytes of memory mimalloc holds committed now: what its blocks of every size class take,
/// partly filled pages included. Unlike the resident set, it does not move with how many
/// transparent huge pages the kernel happened to hand out (benchmarks, docs/BENCHMARKS.md).
pub fn committed_bytes() -> usize {
    let mut v = [0usize; 8];
    let [elapsed, user, system, rss, peak_rss, commit, peak_commit, faults] = &mut v;
    #[allow(unsafe_code)]
    // SAFETY: mimalloc writes one `size_t` through each pointer, all valid and distinct.
    unsafe {
        mi_process_info(
            elapsed,
            user,
            system,
            rss,
            peak_rss,
            commit,
            peak_commit,
            faults,
        )
    };
    v[5]
}

/// Keep memory that is freed mapped until the process ends. Alerts are made on the engine's
/// thread and freed on another (replay's printer, cluster mode's writer), so their pages empty
/// all the time, and with the default delay mimalloc gave them back and the engine's thread
/// took them again as fresh pages: about 100,000 page faults, each zeroing a 2 MiB huge page,
/// a tenth of the engine thread's time on a 5M-event replay (docs/BENCHMARKS.md). The price is
/// that a process keeps its peak footprint, which is what must be provisioned for it anyway.
/// Leaves the setting alone if it is not the default (`MIMALLOC_PURGE_DELAY` set by the
/// operator wins); says whether it changed it.
pub fn keep_freed_memory() -> bool {
    #[allow(unsafe_code)]
    // SAFETY: mimalloc's option calls take and return plain integers, may be called from any
    // thread at any time, and the option index is checked against the header above.
    unsafe {
        if mi_option_get(PURGE_DELAY) != PURGE_DELAY_DEFAULT {
            return false;
        }
        mi_option_set(PURGE_DELAY, -1);
        mi_option_get(PURGE_DELAY) == -1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    extern "C" {
        fn mi_usable_size(p: *const c_void) -> usize;
    }

    /// Every layout gets a block with its alignment, zeroed when asked, whose contents survive
    /// growing and shrinking (alignment up to 4 KiB, sizes 1 B to 64 KiB).
    #[test]
    fn blocks_have_the_layouts_alignment_and_keep_their_contents() {
        let a = Mimalloc;
        for align in (0..13).map(|s| 1usize << s) {
            for size in [1, 3, 7, 8, 15, 16, 24, 40, 100, 1000, 1024, 4097, 65_536] {
                let layout = Layout::from_size_align(size, align).expect("layout");
                #[allow(unsafe_code)]
                // SAFETY: non-zero sizes; each block is freed once with its own layout.
                unsafe {
                    let z = a.alloc_zeroed(layout);
                    assert_eq!(z as usize % align, 0, "zeroed {size} B aligned {align}");
                    assert!(std::slice::from_raw_parts(z, size).iter().all(|b| *b == 0));
                    a.dealloc(z, layout);
                    let p = a.alloc(layout);
                    assert_eq!(p as usize % align, 0, "{size} B aligned {align}");
                    for i in 0..size {
                        *p.add(i) = i as u8;
                    }
                    let grown = a.realloc(p, layout, size * 3);
                    assert_eq!(grown as usize % align, 0, "grown {size} B aligned {align}");
                    let bigger = Layout::from_size_align(size * 3, align).expect("layout");
                    let shrunk = a.realloc(grown, bigger, size.div_ceil(2));
                    assert_eq!(
                        shrunk as usize % align,
                        0,
                        "shrunk {size} B aligned {align}"
                    );
                    for i in 0..size.div_ceil(2) {
                        assert_eq!(
                            *shrunk.add(i),
                            i as u8,
                            "byte {i} of {size} aligned {align}"
                        );
                    }
                    a.dealloc(
                        shrunk,
                        Layout::from_size_align(size.div_ceil(2), align).expect("layout"),
                    );
                }
            }
        }
    }

    /// Small blocks come from their own size class. Through mimalloc's aligned entry (the
    /// `mimalloc` crate's allocator) a 48-byte request with 8-byte alignment is over-allocated
    /// as 55 bytes whenever the 48-byte class has no free block — which, since that path never
    /// makes one, is always: every 48-byte block took 64 bytes, 80 took 96, 96 took 112.
    #[test]
    fn small_blocks_stay_in_their_size_class() {
        let a = Mimalloc;
        for size in [48, 80, 96] {
            let layout = Layout::from_size_align(size, 8).expect("layout");
            #[allow(unsafe_code)]
            // SAFETY: each block is freed once with the layout it was made with.
            unsafe {
                let blocks: Vec<*mut u8> = (0..10_000).map(|_| a.alloc(layout)).collect();
                let usable: Vec<usize> = blocks.iter().map(|p| mi_usable_size(p.cast())).collect();
                for p in blocks {
                    a.dealloc(p, layout);
                }
                let oversized = usable.iter().filter(|u| **u != size).count();
                assert_eq!(oversized, 0, "of 10,000 blocks of {size} bytes");
            }
        }
    }

    #[test]
    fn the_purge_delay_is_the_option_we_set() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return; // the operator's setting; nothing of ours to check
        }
        assert!(
            keep_freed_memory(),
            "option {PURGE_DELAY} was not the purge delay's default"
        );
        #[allow(unsafe_code)]
        // SAFETY: as in `keep_freed_memory`.
        let now = unsafe { mi_option_get(PURGE_DELAY) };
        assert_eq!(now, -1);
        assert!(
            !keep_freed_memory(),
            "a second call leaves the setting alone"
        );
    }
}
