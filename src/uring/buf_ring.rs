//! A provided-buffer ring (`IORING_REGISTER_PBUF_RING`): a pool of equal buffers the kernel picks
//! from for multishot receives, so idle connections hold no buffer at all.
//!
//! Owns the buffer memory and the ring of descriptors; never hands the kernel a buffer that user
//! space still reads or sends from.

use std::{
    alloc::{alloc_zeroed, dealloc, Layout},
    io,
    sync::atomic::{AtomicU16, Ordering},
};

use io_uring::types::BufRingEntry;

use super::ring::Ring;

/// A registered buffer ring with `count` buffers of `size` bytes each.
pub struct BufRing {
    group: u16,
    count: u16,
    size: usize,
    ring: *mut BufRingEntry,
    ring_layout: Layout,
    memory: *mut u8,
    memory_len: usize,
    tail: u16,
}

impl BufRing {
    /// Allocates and registers `count` (a power of two) buffers of `size` bytes as group `group`.
    pub fn register(ring: &Ring, group: u16, count: u16, size: usize) -> io::Result<BufRing> {
        assert!(
            count.is_power_of_two(),
            "buffer ring size must be a power of two"
        );
        let ring_layout =
            Layout::from_size_align(std::mem::size_of::<BufRingEntry>() * count as usize, 4096)
                .map_err(io::Error::other)?;
        let memory_len = size * count as usize;
        // SAFETY: the layout has non-zero size (count >= 1).
        let entries = unsafe { alloc_zeroed(ring_layout) };
        if entries.is_null() {
            return Err(io::Error::from(io::ErrorKind::OutOfMemory));
        }
        // The buffers come straight from mmap, not the allocator: zeroed, page-aligned pages the
        // kernel provides when first written. An allocator's zeroed allocation at this alignment
        // writes every byte, which made each worker hold all 16 MiB of buffers from its start.
        // SAFETY: an anonymous private mapping touches no existing memory; the result is checked.
        let memory = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                memory_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if memory == libc::MAP_FAILED {
            let error = io::Error::last_os_error();
            // SAFETY: allocated just above with this layout and not shared with anyone yet.
            unsafe { dealloc(entries, ring_layout) };
            return Err(error);
        }
        let memory = memory.cast::<u8>();
        let mut this = BufRing {
            group,
            count,
            size,
            ring: entries.cast(),
            ring_layout,
            memory,
            memory_len,
            tail: 0,
        };
        // SAFETY: `entries` is page-aligned, zeroed and lives until `Drop`, which unregisters
        // nothing itself but runs only after the owning ring (and so the registration) is gone:
        // the worker drops its `Ring` before its `BufRing`.
        unsafe {
            ring.submitter()
                .register_buf_ring_with_flags(entries as u64, count, group, 0)?;
        }
        for bid in 0..count {
            this.stage(bid);
        }
        this.publish();
        Ok(this)
    }

    /// The buffer group id to name in submissions.
    pub fn group(&self) -> u16 {
        self.group
    }

    /// A pointer to the first byte of buffer `bid`.
    pub fn ptr(&self, bid: u16) -> *const u8 {
        debug_assert!(bid < self.count);
        // SAFETY: bid < count, so the offset stays inside the allocation.
        unsafe { self.memory.add(bid as usize * self.size) }
    }

    /// Gives buffer `bid` back to the kernel. The caller must no longer read or send from it.
    pub fn recycle(&mut self, bid: u16) {
        self.stage(bid);
        self.publish();
    }

    fn stage(&mut self, bid: u16) {
        let mask = self.count - 1;
        // SAFETY: the index is masked into the ring; the entry is plain data the kernel reads
        // only after `publish` moves the tail past it.
        let entry = unsafe { &mut *self.ring.add((self.tail & mask) as usize) };
        entry.set_addr(self.ptr(bid) as u64);
        entry.set_len(self.size as u32);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    fn publish(&self) {
        // SAFETY: the tail field lives inside the first ring entry, which is valid; the kernel
        // reads it concurrently, hence the atomic release store.
        unsafe {
            let tail = BufRingEntry::tail(self.ring) as *const AtomicU16;
            (*tail).store(self.tail, Ordering::Release);
        }
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: allocated and mapped in `register` with exactly this layout and length; the
        // ring that could use the memory has been dropped (see `register`).
        unsafe {
            dealloc(self.ring.cast(), self.ring_layout);
            libc::munmap(self.memory.cast(), self.memory_len);
        }
    }
}
