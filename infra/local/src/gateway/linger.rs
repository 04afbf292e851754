//! Orderly TCP closes for the gateway's sockets: a closed connection sends FIN and reads what
//! the peer still sends until it closes too, instead of resetting it.
//!
//! Closing a socket with unread input makes the kernel answer with a reset (RST), and a client
//! that is still sending when it gets one (browsers, asyncio) drops what it had not read yet —
//! such as the close frame that said why (1009, 1008). Every accepted stream is wrapped in a
//! [`Lingering`] whose drop half-closes it and drains the peer for up to [`LINGER`], as web
//! servers do ("lingering close").

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::serve::Listener;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// How long a closed connection keeps reading what its peer still sends.
pub const LINGER: Duration = Duration::from_secs(2);

/// A [`TcpListener`] whose streams close in order (see the module docs).
pub struct LingeringListener(TcpListener);

impl LingeringListener {
    pub fn new(listener: TcpListener) -> Self {
        Self(listener)
    }
}

impl Listener for LingeringListener {
    type Io = Lingering;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (stream, addr) = Listener::accept(&mut self.0).await;
        (Lingering(Some(stream)), addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// An accepted stream; dropping it half-closes it and drains the peer on a background task.
pub struct Lingering(Option<TcpStream>);

impl Lingering {
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.stream()?.set_nodelay(nodelay)
    }

    fn stream(&self) -> io::Result<&TcpStream> {
        self.0.as_ref().ok_or_else(|| io::ErrorKind::NotConnected.into())
    }

    fn pinned(&mut self) -> io::Result<Pin<&mut TcpStream>> {
        self.0
            .as_mut()
            .map(Pin::new)
            .ok_or_else(|| io::ErrorKind::NotConnected.into())
    }
}

impl Drop for Lingering {
    fn drop(&mut self) {
        let Some(stream) = self.0.take() else {
            return;
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(linger(stream));
        }
    }
}

/// FIN after everything written, then read and discard until the peer closes or [`LINGER`] ends.
async fn linger(mut stream: TcpStream) {
    let _ = stream.shutdown().await;
    let mut buffer = [0u8; 16 * 1024];
    let drain = async { while let Ok(1..) = stream.read(&mut buffer).await {} };
    let _ = tokio::time::timeout(LINGER, drain).await;
}

impl AsyncRead for Lingering {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.pinned() {
            Ok(stream) => stream.poll_read(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl AsyncWrite for Lingering {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.pinned() {
            Ok(stream) => stream.poll_write(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.pinned() {
            Ok(stream) => stream.poll_write_vectored(cx, bufs),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.0.as_ref().is_some_and(TcpStream::is_write_vectored)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.pinned() {
            Ok(stream) => stream.poll_flush(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.pinned() {
            Ok(stream) => stream.poll_shutdown(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}
