//! Heap accounting: a global allocator that counts the bytes held, and what glibc's own
//! allocator keeps free.

use std::alloc::{GlobalAlloc, Layout, System as SystemAlloc};
use std::sync::atomic::{AtomicIsize, Ordering};

/// Counts the heap bytes allocated and not yet freed. A bench installs it with
/// `#[global_allocator] static GLOBAL: Counting = Counting;` (a global allocator can only be
/// declared by the binary).
#[derive(Debug)]
pub struct Counting;

/// Bytes allocated through [`Counting`] and not yet freed.
static ALLOCATED: AtomicIsize = AtomicIsize::new(0);

// The methods are `#[inline]` so that the allocator shim in the binary can inline them
// across the crate boundary: counting adds no call to any allocation.
// SAFETY: forwards every call to the system allocator, only counting the bytes.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size() as isize, Ordering::Relaxed);
        SystemAlloc.alloc(layout)
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        ALLOCATED.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        SystemAlloc.dealloc(ptr, layout)
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size() as isize, Ordering::Relaxed);
        SystemAlloc.alloc_zeroed(layout)
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATED.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        SystemAlloc.realloc(ptr, layout, new_size)
    }
}

/// Heap bytes allocated and not yet freed, by the whole process (with [`Counting`]).
#[inline]
pub fn heap() -> isize {
    ALLOCATED.load(Ordering::Relaxed)
}

/// What glibc's allocator holds free (`mallinfo2().fordblks`), then the RSS after it has
/// been asked to give every free page back (`malloc_trim(0)`); `None` off glibc.
#[cfg(target_env = "gnu")]
#[allow(unsafe_code)]
pub fn glibc_free_then_trim() -> Option<(u64, u64)> {
    // SAFETY: both only read and adjust the allocator's own state.
    let free = unsafe { libc::mallinfo2() }.fordblks as u64;
    unsafe { libc::malloc_trim(0) };
    Some((free, crate::procfs::rss()))
}

/// What glibc's allocator holds free; `None` off glibc.
#[cfg(not(target_env = "gnu"))]
pub fn glibc_free_then_trim() -> Option<(u64, u64)> {
    None
}
