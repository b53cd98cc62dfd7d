//! Thin, safe wrappers over the raw system calls the workers and control plane need beyond
//! what `std` and `socket2` offer (eventfd, pipes, non-blocking splice, CPU pinning, the socket
//! options `source` and `defer_accept` need).

use std::{
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
};

/// A new non-blocking, close-on-exec eventfd.
pub fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: eventfd(2) has no memory preconditions; a non-negative result is a fresh
    // descriptor that nobody else owns.
    let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is fresh and owned by us alone.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Makes an eventfd readable. Never blocks: the fd is non-blocking, and a full counter is
/// already readable.
pub fn eventfd_signal(fd: &OwnedFd) {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a live local into an open descriptor.
    unsafe {
        libc::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8);
    }
}

/// Reads and resets an eventfd; `true` if it was readable (the shutdown's tests).
#[cfg(test)]
pub fn eventfd_take(fd: &OwnedFd) -> bool {
    let mut value: u64 = 0;
    // SAFETY: reads 8 bytes into a live local from an open descriptor.
    let n = unsafe { libc::read(fd.as_raw_fd(), (&mut value as *mut u64).cast(), 8) };
    n == 8
}

/// A pipe used as the in-kernel buffer of one relay direction.
#[derive(Debug)]
pub struct Pipe {
    /// Read end.
    pub rd: OwnedFd,
    /// Write end.
    pub wr: OwnedFd,
}

impl Pipe {
    /// A new non-blocking pipe resized to `capacity` bytes (rounded up by the kernel to pages).
    pub fn new(capacity: usize) -> io::Result<Pipe> {
        let mut fds = [0 as RawFd; 2];
        // SAFETY: pipe2 writes two descriptors into the live array.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both descriptors are fresh and owned by us alone.
        let pipe = unsafe {
            Pipe {
                rd: OwnedFd::from_raw_fd(fds[0]),
                wr: OwnedFd::from_raw_fd(fds[1]),
            }
        };
        // A smaller pipe saves kernel memory per idle connection; failure keeps the default.
        // SAFETY: fcntl on an open descriptor with an integer argument.
        unsafe {
            libc::fcntl(
                pipe.wr.as_raw_fd(),
                libc::F_SETPIPE_SZ,
                capacity as libc::c_int,
            );
        }
        Ok(pipe)
    }

    /// The read end's descriptor (for `splice(2)` and `IORING_OP_SPLICE`).
    pub fn read_fd(&self) -> RawFd {
        self.rd.as_raw_fd()
    }

    /// The write end's descriptor.
    pub fn write_fd(&self) -> RawFd {
        self.wr.as_raw_fd()
    }
}

/// Non-blocking `splice(2)` of up to `len` bytes from `from` to `to`.
pub fn splice(from: RawFd, to: RawFd, len: usize) -> io::Result<usize> {
    // SAFETY: null offsets are valid for pipes and sockets; descriptors are borrowed for the call.
    let n = unsafe {
        libc::splice(
            from,
            std::ptr::null_mut(),
            to,
            std::ptr::null_mut(),
            len,
            libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// `shutdown(fd, SHUT_WR)`: sends FIN after the queued bytes. Errors (peer gone) are ignored by
/// callers because the connection is torn down by the next read or write anyway.
pub fn shutdown_write(fd: RawFd) -> io::Result<()> {
    // SAFETY: shutdown on a borrowed descriptor has no memory preconditions.
    if unsafe { libc::shutdown(fd, libc::SHUT_WR) } < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Bytes in a socket's send queue that its peer has not acknowledged yet (`SIOCOUTQ`); `None`
/// if the kernel would not say.
pub fn unacked_bytes(fd: RawFd) -> Option<usize> {
    let mut queued: libc::c_int = 0;
    // SAFETY: SIOCOUTQ writes one int through the pointer, which points at a live local.
    let rc = unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut queued as *mut libc::c_int) };
    (rc == 0).then_some(queued.max(0) as usize)
}

/// Bytes received on a socket that nobody has read yet (`FIONREAD`); `None` if the kernel
/// would not say.
pub fn unread_bytes(fd: RawFd) -> Option<usize> {
    let mut pending: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through the pointer, which points at a live local.
    let rc = unsafe { libc::ioctl(fd, libc::FIONREAD, &mut pending as *mut libc::c_int) };
    (rc == 0).then_some(pending.max(0) as usize)
}

/// Pins the calling thread to one CPU core; logs and carries on when the kernel refuses.
pub fn pin_to_core(core: usize) {
    // SAFETY: cpu_set_t is plain data; zeroed is the empty set, CPU_SET writes within it.
    let result = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(core, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if result != 0 {
        tracing::warn!(core, error = %io::Error::last_os_error(), "cannot pin worker to core");
    }
}

/// A new non-blocking, close-on-exec TCP socket for `addr`'s family, with Nagle off (a proxy
/// forwards what it has at once; delaying small writes would add latency the client never
/// asked for).
pub fn tcp_socket(addr: &std::net::SocketAddr) -> io::Result<RawFd> {
    let family = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: socket(2) has no memory preconditions; the result is a fresh descriptor.
    let fd = unsafe {
        libc::socket(
            family,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    set_nodelay(fd);
    Ok(fd)
}

/// Binds a backend socket to `source` (port 0) with `IP_BIND_ADDRESS_NO_PORT` set first: the
/// bind fixes only the address, and the connect then picks the port against the whole 4-tuple,
/// so every source address gives the whole ephemeral range to each backend. (A plain bind to port
/// 0 would reserve one port for every destination at once: one range over all backends.) Two
/// system calls; the option works on IPv6 sockets too.
pub fn bind_source(fd: RawFd, source: &socket2::SockAddr) -> io::Result<()> {
    let one: libc::c_int = 1;
    // SAFETY: passes a pointer to a live local of the size given.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the SockAddr holds a valid address of the length it reports, borrowed for the call.
    if unsafe { libc::bind(fd, source.as_ptr().cast(), source.len()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets `TCP_DEFER_ACCEPT` on a listener: a connection is only queued for accept once its
/// client has sent data, or after about `seconds` (the kernel rounds up to its SYN-ACK
/// retransmissions: 1, 3, 7, 15, 31, 63 s).
pub fn set_defer_accept(fd: RawFd, seconds: u32) -> io::Result<()> {
    let value = libc::c_int::try_from(seconds).unwrap_or(libc::c_int::MAX);
    // SAFETY: passes a pointer to a live local of the size given.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A listener's `TCP_DEFER_ACCEPT` as the kernel reports it (rounded; 0 when off): the
/// listener's tests.
#[cfg(test)]
pub fn defer_accept(fd: RawFd) -> io::Result<libc::c_int> {
    let mut value: libc::c_int = -1;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into a live local and updates `len`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(value)
}

/// Sets `TCP_NODELAY`; failure only costs latency, so it is ignored.
pub fn set_nodelay(fd: RawFd) {
    let one: libc::c_int = 1;
    // SAFETY: passes a pointer to a live local of the size given.
    unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// Sets `SO_LINGER` to zero seconds, so closing the socket sends a reset instead of a FIN. Failure
/// only means the peer sees a FIN, so it is ignored.
pub fn set_linger_zero(fd: RawFd) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: passes a pointer to a live local of the size given.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

/// Closes a raw descriptor (nothing for a negative one).
///
/// # Safety
/// The caller owns `fd` (it came from an accept or a socket call of its own and was never
/// handed to anything that closes it), no operation in flight uses it, and it is never used
/// again: the number may be reused by the next descriptor the process opens.
pub unsafe fn close(fd: RawFd) {
    if fd >= 0 {
        // SAFETY: forwarded from the caller.
        unsafe {
            libc::close(fd);
        }
    }
}

/// Raises the soft open-files limit to the hard limit: a proxy needs two descriptors per
/// connection plus pipes, far beyond the usual soft default of 1024.
pub fn raise_nofile_limit() -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: get/setrlimit read and write a live local.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return Err(io::Error::last_os_error());
        }
        if lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok(lim.rlim_cur)
}

/// The local address of a socket (`getsockname`): for an accepted one, the address its client
/// connected to. `None` if the kernel says no.
pub fn local_addr(fd: RawFd) -> Option<std::net::SocketAddr> {
    // SAFETY: socket2 hands us storage large enough for any address and its length;
    // getsockname writes at most that many bytes and updates the length.
    let (_, addr) = unsafe {
        socket2::SockAddr::try_init(|storage, len| {
            if libc::getsockname(fd, storage.cast(), len) == 0 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        })
    }
    .ok()?;
    addr.as_socket()
}

/// The peer address of a connected socket (`getpeername`), `None` if the kernel says no.
pub fn peer_addr(fd: RawFd) -> Option<std::net::SocketAddr> {
    // SAFETY: socket2 hands us storage large enough for any address and its length;
    // getpeername writes at most that many bytes and updates the length.
    let (_, addr) = unsafe {
        socket2::SockAddr::try_init(|storage, len| {
            if libc::getpeername(fd, storage.cast(), len) == 0 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        })
    }
    .ok()?;
    addr.as_socket()
}
