//! The raw system calls of a binary upgrade: a descriptor made inheritable for the successor
//! (and back), a listener adopted by number in the successor, the readiness pipe, and the
//! anonymous in-memory file that carries the runtime API's overrides across.
//!
//! Owns only these wrappers, each `unsafe` block with its reason; when and why they are called
//! is `server::upgrade`'s.

use std::{
    io,
    net::TcpListener,
    os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
};

/// Sets or clears `FD_CLOEXEC` on `fd`: a descriptor without it is inherited, at the same
/// number, by a program the process starts.
pub fn set_inheritable(fd: RawFd, inheritable: bool) -> io::Result<()> {
    // SAFETY: F_GETFD/F_SETFD take and return plain integers; `fd` is open (the caller holds
    // it), and a wrong number only yields EBADF.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    let flags = if inheritable {
        flags & !libc::FD_CLOEXEC
    } else {
        flags | libc::FD_CLOEXEC
    };
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, flags) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Takes over descriptor `fd`, handed down by the process that started this one, as a
/// listening TCP socket. Refuses anything else (a stale number, a file, a connected socket).
pub fn adopt_listener(fd: RawFd) -> io::Result<TcpListener> {
    let raw = BorrowedRaw(fd);
    let socket = socket2::SockRef::from(&raw);
    if !socket.is_listener()? || socket.r#type()? != socket2::Type::STREAM {
        return Err(io::Error::other(format!(
            "descriptor {fd} is not a listening TCP socket"
        )));
    }
    // SAFETY: the parent handed this descriptor to us alone (it cleared FD_CLOEXEC only for
    // the successor, and nothing in this process has used the number before adoption); we
    // checked it is a listening socket, and from here on the TcpListener is its only owner.
    let listener = unsafe { TcpListener::from_raw_fd(fd) };
    set_inheritable(fd, false)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Takes over descriptor `fd`, handed down by the parent, as the write end of the readiness
/// pipe.
pub fn adopt_pipe(fd: RawFd) -> io::Result<std::fs::File> {
    // SAFETY: fstat writes into a live, zeroed local; a bad number only yields EBADF.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::fstat(fd, &mut stat) } < 0 {
        return Err(io::Error::last_os_error());
    }
    if stat.st_mode & libc::S_IFMT != libc::S_IFIFO {
        return Err(io::Error::other(format!("descriptor {fd} is not a pipe")));
    }
    // SAFETY: the parent handed this pipe end to us alone; it is checked to be a pipe, and
    // the File is its only owner from here on.
    let file = unsafe { std::fs::File::from_raw_fd(fd) };
    set_inheritable(fd, false)?;
    Ok(file)
}

/// A new pipe, both ends close-on-exec: `(read, write)`.
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the array it is given, of that size.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both are fresh descriptors owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// A new anonymous in-memory file (`memfd_create`), close-on-exec: what a successor is handed
/// state in, of any size (an environment variable is capped at 128 KiB, a pipe would block
/// past its buffer before the reader runs).
pub fn memfd(name: &std::ffi::CStr) -> io::Result<std::fs::File> {
    // SAFETY: memfd_create reads the NUL-terminated name it is given and returns a fresh
    // descriptor or -1.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor owned by nobody else.
    Ok(unsafe { std::fs::File::from_raw_fd(fd) })
}

/// Takes over descriptor `fd`, handed down by the parent, as a regular (or in-memory) file.
pub fn adopt_file(fd: RawFd) -> io::Result<std::fs::File> {
    // SAFETY: fstat writes into a live, zeroed local; a bad number only yields EBADF.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::fstat(fd, &mut stat) } < 0 {
        return Err(io::Error::last_os_error());
    }
    if stat.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(io::Error::other(format!("descriptor {fd} is not a file")));
    }
    // SAFETY: the parent handed this file to us alone; it is checked to be a regular file,
    // and the File is its only owner from here on.
    let file = unsafe { std::fs::File::from_raw_fd(fd) };
    set_inheritable(fd, false)?;
    Ok(file)
}

/// Whether `fd` becomes readable (data, EOF or an error) within `timeout`.
pub fn readable_within(fd: RawFd, timeout: std::time::Duration) -> io::Result<bool> {
    let mut pollfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let millis = timeout.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: poll reads and writes the one pollfd it is given.
    match unsafe { libc::poll(&mut pollfd, 1, millis) } {
        n if n < 0 => {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(e)
            }
        }
        0 => Ok(false),
        _ => Ok(true),
    }
}

/// A raw descriptor seen through `AsFd` for the duration of one check, without owning it.
struct BorrowedRaw(RawFd);

impl std::os::fd::AsFd for BorrowedRaw {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        // SAFETY: only used while `adopt_listener` runs, before anything could close the
        // number; a stale number makes the socket calls fail with EBADF, nothing worse.
        unsafe { std::os::fd::BorrowedFd::borrow_raw(self.0) }
    }
}

impl AsRawFd for BorrowedRaw {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_listening_sockets_are_adopted() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let fd = std::os::fd::IntoRawFd::into_raw_fd(listener);
        let adopted = adopt_listener(fd).unwrap();
        assert_eq!(adopted.local_addr().unwrap(), addr);
        let (read, write) = pipe().unwrap();
        assert!(
            adopt_listener(read.as_raw_fd()).is_err(),
            "a pipe is no listener"
        );
        let write = adopt_pipe(std::os::fd::IntoRawFd::into_raw_fd(write)).unwrap();
        drop((read, write));
    }

    #[test]
    fn an_in_memory_file_is_adopted_with_its_contents_and_a_pipe_is_not() {
        use std::io::{Read, Seek, Write};
        let mut file = memfd(c"test").unwrap();
        file.write_all(b"state").unwrap();
        file.rewind().unwrap();
        let mut adopted = adopt_file(std::os::fd::IntoRawFd::into_raw_fd(file)).unwrap();
        let mut text = String::new();
        adopted.read_to_string(&mut text).unwrap();
        assert_eq!(text, "state");
        let (read, _write) = pipe().unwrap();
        assert!(adopt_file(read.as_raw_fd()).is_err(), "a pipe is no file");
    }

    #[test]
    fn inheritance_flips_cloexec() {
        let (read, _write) = pipe().unwrap();
        set_inheritable(read.as_raw_fd(), true).unwrap();
        // SAFETY: F_GETFD on an open descriptor.
        let flags = unsafe { libc::fcntl(read.as_raw_fd(), libc::F_GETFD) };
        assert_eq!(flags & libc::FD_CLOEXEC, 0);
        set_inheritable(read.as_raw_fd(), false).unwrap();
        // SAFETY: as above.
        let flags = unsafe { libc::fcntl(read.as_raw_fd(), libc::F_GETFD) };
        assert_ne!(flags & libc::FD_CLOEXEC, 0);
    }
}
