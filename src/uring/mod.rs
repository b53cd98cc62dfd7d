//! The io_uring layer: ring set-up, the capability probe, and the few raw system calls the
//! workers need.
//!
//! This module and [`crate::worker`] / [`crate::relay`] hold every `unsafe` block of the crate,
//! each with a `// SAFETY:` comment about descriptor and buffer lifetimes.

pub mod buf_ring;
pub mod handover;
pub mod ring;
pub mod sys;
pub mod token;

use std::io;

use io_uring::{opcode, IoUring, Probe};

/// Opcodes the workers submit; all exist since Linux 5.19 (multishot accept, provided buffer
/// rings) and are fully supported on 6.1+.
const REQUIRED: &[(u8, &str)] = &[
    (opcode::AcceptMulti::CODE, "accept"),
    (opcode::Connect::CODE, "connect"),
    (opcode::PollAdd::CODE, "poll_add"),
    (opcode::Splice::CODE, "splice"),
    (opcode::RecvMulti::CODE, "recv"),
    (opcode::Send::CODE, "send"),
    (opcode::AsyncCancel::CODE, "async_cancel"),
    (opcode::Close::CODE, "close"),
    (opcode::Shutdown::CODE, "shutdown"),
    (opcode::Read::CODE, "read"),
    (opcode::Write::CODE, "write"),
];

/// Checks that io_uring can be set up here and supports every opcode ringlb uses.
pub fn probe() -> io::Result<()> {
    let ring = IoUring::new(8)?;
    let mut probe = Probe::new();
    ring.submitter().register_probe(&mut probe)?;
    let missing: Vec<&str> = REQUIRED
        .iter()
        .filter(|(code, _)| !probe.is_supported(*code))
        .map(|(_, name)| *name)
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("the kernel lacks io_uring opcodes: {}", missing.join(", ")),
        ))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn probe_succeeds_on_the_build_machine() {
        super::probe().expect("io_uring must be usable where the tests run");
    }
}
