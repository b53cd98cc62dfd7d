//! A per-worker pool of pipes, the in-kernel buffers of the splice strategies.
//!
//! A direction borrows a pipe only while bytes sit in it and returns it once drained, so idle
//! connections hold no pipe (10,000 idle connections cost no pipe memory) and steady traffic
//! creates no pipe after warm-up. Never shared between threads.

use std::io;

use crate::uring::sys::Pipe;

/// Idle pipes kept for reuse; beyond this they are closed.
const MAX_IDLE: usize = 1024;

/// Pipes ready for reuse.
pub struct PipePool {
    idle: Vec<Pipe>,
    capacity: usize,
}

impl PipePool {
    /// A pool of pipes of `capacity` bytes each.
    pub fn new(capacity: usize) -> Self {
        Self {
            idle: Vec::with_capacity(64),
            capacity,
        }
    }

    /// The byte capacity requested for each pipe.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// An empty pipe, reused when one is idle.
    pub fn take(&mut self) -> io::Result<Pipe> {
        match self.idle.pop() {
            Some(pipe) => Ok(pipe),
            None => Pipe::new(self.capacity),
        }
    }

    /// Returns an empty pipe. A pipe that may still hold bytes must be dropped instead.
    pub fn give(&mut self, pipe: Pipe) {
        if self.idle.len() < MAX_IDLE {
            self.idle.push(pipe);
        }
    }

    /// Takes a direction's pipe back: reused when empty (`queued` is 0), closed when it may
    /// still hold bytes (its destination failed), so no byte leaks into another connection.
    pub fn reclaim(&mut self, pipe: &mut Option<Pipe>, queued: &mut usize) {
        if let Some(pipe) = pipe.take() {
            if *queued == 0 {
                self.give(pipe);
            }
        }
        *queued = 0;
    }

    /// Number of idle pipes.
    #[cfg(test)]
    pub fn idle(&self) -> usize {
        self.idle.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipes_are_reused() {
        let mut pool = PipePool::new(64 * 1024);
        let p = pool.take().unwrap();
        pool.give(p);
        assert_eq!(pool.idle(), 1);
        let _p = pool.take().unwrap();
        assert_eq!(pool.idle(), 0);
    }
}
