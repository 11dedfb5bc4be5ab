//! What every fuzz target shares: an allocator that refuses any single
//! allocation above [`MAX_ALLOC`], so that a small input making a decoder
//! ask for a huge buffer is a crash (the process aborts with "memory
//! allocation of N bytes failed" and libFuzzer saves the input). Without
//! it such a request could pass unnoticed: untouched memory does not show
//! in the RSS libFuzzer watches, and `-malloc_limit_mb` needs a
//! sanitizer's allocator hooks.

use std::alloc::{GlobalAlloc, Layout, System};

/// The largest single allocation allowed: a few maximum-size frames
/// (`MAX_FRAME` is 1 MiB); no decoder needs more.
pub const MAX_ALLOC: usize = 16 << 20;

/// The system allocator, refusing allocations above [`MAX_ALLOC`].
#[derive(Debug)]
pub struct Limited;

// SAFETY: every call is forwarded unchanged to `System`, or refused with a
// null pointer, which `GlobalAlloc` allows for any request.
unsafe impl GlobalAlloc for Limited {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > MAX_ALLOC {
            return std::ptr::null_mut();
        }
        // SAFETY: the caller's contract for `layout` is System's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() > MAX_ALLOC {
            return std::ptr::null_mut();
        }
        // SAFETY: as in `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > MAX_ALLOC {
            return std::ptr::null_mut();
        }
        // SAFETY: `ptr` came from this allocator, which is System's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, which is System's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_only_above_the_limit() {
        let at = Layout::from_size_align(MAX_ALLOC, 1).expect("layout");
        let over = Layout::from_size_align(MAX_ALLOC + 1, 1).expect("layout");
        // SAFETY: non-zero sizes; the one block allocated is freed.
        unsafe {
            assert!(Limited.alloc(over).is_null());
            assert!(Limited.alloc_zeroed(over).is_null());
            let p = Limited.alloc(at);
            assert!(!p.is_null());
            assert!(Limited.realloc(p, at, MAX_ALLOC + 1).is_null());
            Limited.dealloc(p, at);
        }
    }
}
