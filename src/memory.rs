//! Gives freed heap memory back to the operating system.
//!
//! The watcher's memory use has two shapes: a small steady state (the index and the SDK's
//! per-series state) and short bursts (a list page being parsed, an export being encoded).
//! glibc's allocator keeps what a burst freed in its per-thread arenas, so without help the
//! resident size settles at the high-water mark of the bursts rather than at the steady
//! state: at 10,000 SeiNodes of 20 KB it was 43 instead of 56 MiB. After each
//! burst we ask glibc to return free pages (`malloc_trim(0)`, which also releases free
//! pages inside the arenas, not only at the top of the heap). It walks the free lists of a
//! heap of a few dozen MiB: 1-8 ms measured at 10,000 SeiNodes, once per export.
//!
//! On other C libraries (musl, macOS) this is a no-op: they return memory differently.

/// Returns free heap pages to the OS where the allocator supports it.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn malloc_trim(pad: usize) -> std::os::raw::c_int;
        }
        // SAFETY: malloc_trim has no preconditions; it only touches allocator state under
        // the allocator's own locks.
        unsafe {
            malloc_trim(0);
        }
    }
}
