//! What one client may hold of the admission listener: time-outs for every phase of a
//! connection, caps on open connections — overall and per client address — (at a cap, the
//! connection idle the longest is closed to make room; when none is idle, the new one is refused),
//! and a process-wide budget of request body bytes held. A slow or malicious client can then neither pin memory nor starve the API
//! server's reviews. Knows nothing of admission rules; the server wires it in.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Limits of the admission listener. The defaults suit the API server, which sends a review
/// in one go and keeps a few connections open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListenerLimits {
    /// The TLS handshake must finish within this.
    pub handshake_timeout: Duration,
    /// After the handshake, the first request's headers must arrive within this (also bounds an
    /// HTTP/2 preface that never opens a stream).
    pub first_request_timeout: Duration,
    /// Every later request's headers must arrive within this once they start (HTTP/1.1).
    pub header_read_timeout: Duration,
    /// A request body must be read completely within this.
    pub body_read_timeout: Duration,
    /// A connection with no request in flight for this long is closed.
    pub idle_timeout: Duration,
    /// HTTP/2 pings this often on a connection, to find dead peers...
    pub http2_keep_alive_interval: Duration,
    /// ...which must answer within this.
    pub http2_keep_alive_timeout: Duration,
    /// Concurrent HTTP/2 streams per connection.
    pub http2_max_concurrent_streams: u32,
    /// Open connections at most.
    pub max_connections: usize,
    /// Open connections from one client address at most, so that one client cannot take every
    /// slot from the API server.
    pub max_connections_per_peer: usize,
    /// Request body bytes held at once by all requests together (counted as they arrive).
    pub body_budget_bytes: usize,
}

impl Default for ListenerLimits {
    fn default() -> Self {
        Self {
            handshake_timeout: Duration::from_secs(5),
            first_request_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(5),
            body_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(90),
            http2_keep_alive_interval: Duration::from_secs(30),
            http2_keep_alive_timeout: Duration::from_secs(10),
            http2_max_concurrent_streams: 32,
            max_connections: 256,
            max_connections_per_peer: 64,
            body_budget_bytes: 32 * 1024 * 1024,
        }
    }
}

/// The body-byte budget shared by all requests.
#[derive(Clone)]
pub struct BodyBudget {
    bytes: Arc<tokio::sync::Semaphore>,
    total: usize,
}

impl BodyBudget {
    pub fn new(total: usize) -> Self {
        Self {
            bytes: Arc::new(tokio::sync::Semaphore::new(total)),
            total,
        }
    }

    /// Bytes not reserved now.
    pub fn available(&self) -> usize {
        self.bytes.available_permits()
    }

    /// Reserves `bytes` now, or `None` when the budget is spent (the caller answers 503).
    pub fn reserve(&self, bytes: usize) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let bytes = u32::try_from(bytes.min(self.total)).ok()?;
        self.bytes.clone().try_acquire_many_owned(bytes).ok()
    }
}

/// One open connection, as the registry and its stream see it.
struct Connection {
    peer: IpAddr,
    opened: Instant,
    /// Requests being served.
    in_flight: AtomicUsize,
    /// When the last request ended (or the connection opened), in ms since `opened`.
    idle_since_ms: AtomicU64,
    /// Set to make the connection close at its next read.
    evicted: AtomicBool,
    /// The reader to wake when the connection is evicted or goes idle.
    waker: Mutex<Option<Waker>>,
}

impl Connection {
    fn idle_since(&self) -> Instant {
        self.opened + Duration::from_millis(self.idle_since_ms.load(Ordering::Acquire))
    }

    fn wake(&self) {
        if let Some(waker) = self.waker.lock().unwrap_or_else(|p| p.into_inner()).take() {
            waker.wake();
        }
    }

    fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
    }

    fn request_ended(&self) {
        let since = self.opened.elapsed().as_millis() as u64;
        self.idle_since_ms.store(since, Ordering::Release);
        if self.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            // Idle now: let the reader arm its idle timer.
            self.wake();
        }
    }
}

/// Every open connection of one listener.
#[derive(Clone, Default)]
pub struct Connections {
    inner: Arc<Mutex<Registry>>,
}

#[derive(Default)]
struct Registry {
    next_id: u64,
    open: HashMap<u64, Arc<Connection>>,
    refused: u64,
    evicted: u64,
}

/// Counts for metrics and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnectionCounts {
    pub open: usize,
    pub refused: u64,
    pub evicted: u64,
}

impl Connections {
    pub fn counts(&self) -> ConnectionCounts {
        let registry = self.lock();
        ConnectionCounts {
            open: registry.open.len(),
            refused: registry.refused,
            evicted: registry.evicted,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Admits a new connection from `peer`: below the caps at once; at a cap by closing the
    /// connection idle the longest (the peer's own at its per-peer cap); `None` when every
    /// connection that could make room is busy.
    fn admit(&self, peer: IpAddr, limits: &ListenerLimits) -> Option<(u64, Arc<Connection>)> {
        let mut registry = self.lock();
        let from_peer = registry.open.values().filter(|c| c.peer == peer).count();
        let full = if from_peer >= limits.max_connections_per_peer {
            Some(Some(peer))
        } else if registry.open.len() >= limits.max_connections {
            Some(None)
        } else {
            None
        };
        if let Some(only_peer) = full {
            let victim = registry
                .open
                .iter()
                .filter(|(_, c)| only_peer.is_none_or(|p| c.peer == p))
                .filter(|(_, c)| c.in_flight.load(Ordering::Acquire) == 0)
                .min_by_key(|(_, c)| c.idle_since())
                .map(|(id, _)| *id);
            match victim.and_then(|id| registry.open.remove(&id)) {
                Some(connection) => {
                    connection.evicted.store(true, Ordering::Release);
                    connection.wake();
                    registry.evicted += 1;
                }
                None => {
                    registry.refused += 1;
                    return None;
                }
            }
        }
        let id = registry.next_id;
        registry.next_id += 1;
        let connection = Arc::new(Connection {
            peer,
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(0),
            evicted: AtomicBool::new(false),
            waker: Mutex::new(None),
        });
        registry.open.insert(id, connection.clone());
        Some((id, connection))
    }

    fn close(&self, id: u64) {
        self.lock().open.remove(&id);
    }
}

/// An axum-server acceptor for TCP streams, behind TLS: sets `TCP_NODELAY` (reviews are small;
/// Nagle plus delayed ACKs would add 40 ms stalls) and applies the connection caps and the idle
/// time-out.
#[derive(Clone)]
pub struct GuardAcceptor {
    connections: Connections,
    limits: ListenerLimits,
}

impl GuardAcceptor {
    pub fn new(connections: Connections, limits: ListenerLimits) -> Self {
        Self {
            connections,
            limits,
        }
    }
}

impl<S: Send + 'static> axum_server::accept::Accept<TcpStream, S> for GuardAcceptor {
    type Stream = Guarded<TcpStream>;
    type Service = GuardedService<S>;
    type Future = std::future::Ready<io::Result<(Self::Stream, Self::Service)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        std::future::ready(self.guard(stream, service))
    }
}

impl GuardAcceptor {
    fn guard<S>(
        &self,
        stream: TcpStream,
        service: S,
    ) -> io::Result<(Guarded<TcpStream>, GuardedService<S>)> {
        stream.set_nodelay(true)?;
        let peer = stream.peer_addr()?.ip();
        let Some((id, connection)) = self.connections.admit(peer, &self.limits) else {
            return Err(io::Error::other(format!(
                "connection from {peer} refused: every admission connection that could make room is busy"
            )));
        };
        let guard = CloseOnDrop {
            connections: self.connections.clone(),
            id,
        };
        Ok((
            Guarded {
                inner: stream,
                connection: connection.clone(),
                idle_timeout: self.limits.idle_timeout,
                idle_timer: Box::pin(tokio::time::sleep(self.limits.idle_timeout)),
                _guard: guard,
            },
            GuardedService {
                inner: service,
                connection,
            },
        ))
    }
}

/// Removes the connection from the registry when its stream is dropped.
struct CloseOnDrop {
    connections: Connections,
    id: u64,
}

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.connections.close(self.id);
    }
}

/// A connection's stream: reads end (EOF) when the connection is evicted or has been idle for the
/// idle time-out, which makes the HTTP server close it.
pub struct Guarded<S> {
    inner: S,
    connection: Arc<Connection>,
    idle_timeout: Duration,
    idle_timer: Pin<Box<tokio::time::Sleep>>,
    _guard: CloseOnDrop,
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.connection.evicted.load(Ordering::Acquire) {
            return Poll::Ready(Ok(()));
        }
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if polled.is_ready() {
            return polled;
        }
        *this
            .connection
            .waker
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(cx.waker().clone());
        if this.connection.in_flight.load(Ordering::Acquire) == 0 {
            let deadline = this.connection.idle_since() + this.idle_timeout;
            this.idle_timer.as_mut().reset(deadline.into());
            if this.idle_timer.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Ok(()));
            }
        }
        Poll::Pending
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// A connection's service: counts the requests in flight, so that a connection is idle only
/// when it serves none.
#[derive(Clone)]
pub struct GuardedService<S> {
    inner: S,
    connection: Arc<Connection>,
}

impl<S, R> tower_service::Service<R> for GuardedService<S>
where
    S: tower_service::Service<R>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        self.connection.request_started();
        let ended = RequestEnded(self.connection.clone());
        let future = self.inner.call(request);
        Box::pin(async move {
            let response = future.await;
            drop(ended);
            response
        })
    }
}

/// Marks the request ended when dropped (also when the client goes away mid-request).
struct RequestEnded(Arc<Connection>);

impl Drop for RequestEnded {
    fn drop(&mut self) {
        self.0.request_ended();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_the_cap_the_longest_idle_connection_makes_room() {
        let limits = ListenerLimits {
            max_connections: 2,
            ..ListenerLimits::default()
        };
        let peer: IpAddr = [127, 0, 0, 1].into();
        let connections = Connections::default();
        let (_, first) = connections.admit(peer, &limits).unwrap();
        let (_, second) = connections.admit(peer, &limits).unwrap();
        second.request_started();
        let (_, _third) = connections.admit(peer, &limits).unwrap();
        assert!(first.evicted.load(Ordering::Acquire), "the idle one goes");
        assert!(!second.evicted.load(Ordering::Acquire), "a busy one stays");
        // Now both open ones are busy or newer; make both busy: the next is refused.
        let counts = connections.counts();
        assert_eq!((counts.open, counts.evicted), (2, 1));
        _third.request_started();
        assert!(connections.admit(peer, &limits).is_none());
        assert_eq!(connections.counts().refused, 1);
        second.request_ended();
        assert!(
            connections.admit(peer, &limits).is_some(),
            "idle again, so it can go"
        );
    }

    #[test]
    fn one_peer_cannot_take_every_slot() {
        let limits = ListenerLimits {
            max_connections: 4,
            max_connections_per_peer: 2,
            ..ListenerLimits::default()
        };
        let (crowd, api_server): (IpAddr, IpAddr) = ([10, 0, 0, 9].into(), [10, 0, 0, 1].into());
        let connections = Connections::default();
        let busy: Vec<_> = (0..2)
            .map(|_| connections.admit(crowd, &limits).unwrap().1)
            .collect();
        busy.iter().for_each(|c| c.request_started());
        assert!(
            connections.admit(crowd, &limits).is_none(),
            "the crowd is at its cap"
        );
        let (_, idle_api) = connections.admit(api_server, &limits).unwrap();
        assert!(connections.admit(api_server, &limits).is_some());
        // The API server at its own cap replaces its own idle connection, not the crowd's.
        assert!(connections.admit(api_server, &limits).is_some());
        assert!(idle_api.evicted.load(Ordering::Acquire));
        assert!(busy.iter().all(|c| !c.evicted.load(Ordering::Acquire)));
    }

    #[test]
    fn the_body_budget_is_shared() {
        let budget = BodyBudget::new(10);
        let a = budget.reserve(6).unwrap();
        assert!(budget.reserve(6).is_none());
        drop(a);
        assert!(budget.reserve(6).is_some());
        assert!(
            budget.reserve(100).is_some(),
            "a reservation is capped at the total"
        );
    }
}
