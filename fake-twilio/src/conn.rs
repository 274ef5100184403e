//! Connections that a handler (or shutdown) can break on purpose.
//!
//! Every accepted TCP stream is wrapped in a [`KillableIo`] whose [`KillSwitch`] reaches
//! the handlers through axum's `ConnectInfo<Conn>`. Once killed, every read or write of
//! the stream fails, hyper drops the connection, and the socket closes with a reset
//! (`SO_LINGER` 0): the client sees a transport error, never an HTTP answer.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::state::lock;

/// Breaks one connection when killed.
#[derive(Debug, Default)]
pub(crate) struct KillSwitch {
    killed: AtomicBool,
    /// Wakers of the last pending read and write, woken by [`KillSwitch::kill`].
    wakers: Mutex<[Option<Waker>; 2]>,
}

impl KillSwitch {
    /// Breaks the connection: its next read or write fails.
    pub fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
        let wakers = std::mem::take(&mut *lock(&self.wakers));
        for waker in wakers.into_iter().flatten() {
            waker.wake();
        }
    }

    fn is_killed(&self) -> bool {
        self.killed.load(Ordering::SeqCst)
    }

    /// True when killed; otherwise remembers the waker of this direction.
    fn check(&self, cx: &Context<'_>, slot: usize) -> bool {
        if self.is_killed() {
            return true;
        }
        lock(&self.wakers)[slot] = Some(cx.waker().clone());
        self.is_killed()
    }
}

/// The live connections, so that shutdown can break them all.
pub(crate) type ConnRegistry = Mutex<Vec<Weak<KillSwitch>>>;

/// Kills every live connection.
pub(crate) fn kill_all(registry: &ConnRegistry) {
    for switch in lock(registry).drain(..).filter_map(|w| w.upgrade()) {
        switch.kill();
    }
}

/// A TCP stream with a kill switch.
pub(crate) struct KillableIo {
    inner: TcpStream,
    switch: Arc<KillSwitch>,
}

impl KillableIo {
    fn broken(&self) -> io::Error {
        // A reset rather than an orderly close when the socket is dropped.
        let _ = self.inner.set_zero_linger();
        io::Error::new(io::ErrorKind::ConnectionReset, "connection broken on purpose")
    }
}

const READ: usize = 0;
const WRITE: usize = 1;

impl AsyncRead for KillableIo {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.switch.check(cx, READ) {
            return Poll::Ready(Err(this.broken()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableIo {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.switch.check(cx, WRITE) {
            return Poll::Ready(Err(this.broken()));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.switch.check(cx, WRITE) {
            return Poll::Ready(Err(this.broken()));
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.switch.check(cx, WRITE) {
            return Poll::Ready(Err(this.broken()));
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// A TCP listener whose streams are [`KillableIo`]s, registered for shutdown.
pub(crate) struct KillListener {
    inner: TcpListener,
    registry: Arc<ConnRegistry>,
}

impl KillListener {
    pub fn new(inner: TcpListener, registry: Arc<ConnRegistry>) -> Self {
        Self { inner, registry }
    }
}

impl Listener for KillListener {
    type Io = KillableIo;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    let switch = Arc::new(KillSwitch::default());
                    let mut live = lock(&self.registry);
                    live.retain(|w| w.strong_count() > 0);
                    live.push(Arc::downgrade(&switch));
                    drop(live);
                    return (KillableIo { inner: stream, switch }, addr);
                }
                Err(error) => {
                    // Out of file descriptors and the like: wait, as axum's listener does.
                    tracing::debug!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// The connection a request came on, for `ConnectInfo<Conn>`.
#[derive(Debug, Clone)]
pub(crate) struct Conn(pub Arc<KillSwitch>);

impl Connected<IncomingStream<'_, KillListener>> for Conn {
    fn connect_info(stream: IncomingStream<'_, KillListener>) -> Self {
        Conn(stream.io().switch.clone())
    }
}
