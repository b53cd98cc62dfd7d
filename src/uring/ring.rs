//! One worker's io_uring: set-up flags, pushing submissions, draining completions.
//!
//! A `Ring` is created on, and only ever used from, its worker thread (`SINGLE_ISSUER` and
//! `DEFER_TASKRUN` require that). It never blocks except in [`Ring::submit_and_wait`].

use std::io;

use io_uring::{cqueue, squeue, IoUring};

/// A completion copied out of the completion queue.
#[derive(Clone, Copy, Debug)]
pub struct Completion {
    /// The submission's `user_data`.
    pub user_data: u64,
    /// The result: a count, or a negated errno.
    pub result: i32,
    /// `IORING_CQE_F_*` flags.
    pub flags: u32,
}

/// A worker's ring.
pub struct Ring {
    ring: IoUring,
}

impl Ring {
    /// A ring with `entries` submission slots and a completion queue four times as large, so
    /// multishot operations rarely overflow it.
    pub fn new(entries: u32) -> io::Result<Ring> {
        let ring = IoUring::builder()
            .setup_cqsize(entries * 4)
            .setup_single_issuer()
            .setup_defer_taskrun()
            .setup_coop_taskrun()
            .build(entries)
            .or_else(|_| {
                // Kernels before 6.1 lack DEFER_TASKRUN; the plain ring is correct, just slower.
                IoUring::builder().setup_cqsize(entries * 4).build(entries)
            })?;
        // Splices run in io-wq kernel threads; bound them so a burst can never fork hundreds of
        // them (bounded, unbounded).
        let mut max = [2, 2];
        let _ = ring.submitter().register_iowq_max_workers(&mut max);
        Ok(Ring { ring })
    }

    /// The submitter, for registrations.
    pub fn submitter(&self) -> io_uring::Submitter<'_> {
        self.ring.submitter()
    }

    /// Queues one submission, flushing the queue to the kernel first if it is full.
    ///
    /// # Safety
    /// Every buffer, address and descriptor `entry` points to must stay valid until its
    /// completion arrives (or, for data the kernel copies at submission, until the next submit).
    pub unsafe fn push(&mut self, entry: &squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: the caller guarantees the entry's pointers outlive the operation.
            if unsafe { self.ring.submission().push(entry) }.is_ok() {
                return Ok(());
            }
            match self.ring.submit() {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    // The completion queue is full: the caller drains it on the next loop turn;
                    // submitting with a full CQ is refused, so wait for room by reaping below.
                    return Err(e);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Queues a linked chain as one unit, so it is never split across two submissions (a split
    /// chain would lose its link and, say, run a connect without its timeout).
    ///
    /// # Safety
    /// As for [`Ring::push`], for every entry.
    pub unsafe fn push_chain(&mut self, entries: &[squeue::Entry]) -> io::Result<()> {
        // SAFETY: forwarded from the caller.
        if unsafe { self.ring.submission().push_multiple(entries) }.is_ok() {
            return Ok(());
        }
        self.ring.submit()?;
        // SAFETY: forwarded from the caller.
        unsafe { self.ring.submission().push_multiple(entries) }
            .map_err(|_| io::Error::from_raw_os_error(libc::EBUSY))
    }

    /// Submits everything queued and waits for at least `want` completions.
    pub fn submit_and_wait(&mut self, want: usize) -> io::Result<()> {
        match self.ring.submit_and_wait(want) {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EINTR | libc::EBUSY | libc::EAGAIN)
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Moves every available completion into `out`.
    pub fn drain(&mut self, out: &mut Vec<Completion>) {
        let cq = self.ring.completion();
        out.extend(cq.map(|cqe: cqueue::Entry| Completion {
            user_data: cqe.user_data(),
            result: cqe.result(),
            flags: cqe.flags(),
        }));
    }
}
