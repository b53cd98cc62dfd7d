//! Test helpers shared by the epoll backend's unit tests.

use tokio::net::{TcpListener, TcpStream};

/// A connected pair of loopback sockets.
pub(super) async fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let near = TcpStream::connect(listener.local_addr().unwrap());
    let (near, far) = tokio::join!(near, listener.accept());
    (near.unwrap(), far.unwrap().0)
}
