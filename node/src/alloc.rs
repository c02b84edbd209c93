//! The one setting of mimalloc — the allocator of `jiancha` (src/main.rs) — that its
//! processes change.

use std::ffi::{c_int, c_long};

// The C library whose options these are.
use mimalloc as _;

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

    /// The index is mimalloc's purge delay: it holds that option's default until set, then
    /// what was set (an index that moved in an upgrade would most likely hold another
    /// default, and this fails).
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
