//! Test helpers shared by the epoll backend's unit tests.

use tokio::net::{TcpListener, TcpStream};

use crate::backend::Backend;

/// A backend for a test to count bytes on or to configure; nothing listens at its address.
pub(super) fn backend() -> Backend {
    Backend::new(0, "test", "127.0.0.1:1".parse().unwrap())
}

/// A connected pair of loopback sockets.
pub(super) async fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let near = TcpStream::connect(listener.local_addr().unwrap());
    let (near, far) = tokio::join!(near, listener.accept());
    (near.unwrap(), far.unwrap().0)
}
