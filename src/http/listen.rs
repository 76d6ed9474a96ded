//! The accept loop: every connection served by hyper with `TCP_NODELAY`, a read buffer held at
//! 8 KiB and a deadline for its request heads, until told to stop accepting; then open
//! connections close gracefully, and any left when the server is dropped are aborted.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// hyper's floor for an HTTP/1 read buffer, and so the largest request head accepted. With
/// hyper's default ceiling the buffer of a connection that served one request doubled to 16
/// KiB, the largest part of an idle subscriber's memory (docs/benchmarks.md).
const READ_BUFFER: usize = 8192;

/// How long a client has to send a whole request head, and a new connection its first byte:
/// a socket that never finishes one would otherwise hold a file descriptor forever (an idle
/// keep-alive connection closes after it too). Streaming responses are not affected: hyper
/// reads no head while it writes a body.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `router` on `listener` until `stop`, then waits for open connections to finish
/// (long-lived SSE responses end when the drain lets their subscribers go). Dropping the
/// future aborts the connections still open.
pub async fn serve_connections(
    listener: TcpListener,
    router: Router,
    stop: CancellationToken,
    head_timeout: Duration,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .max_buf_size(READ_BUFFER)
        .timer(TokioTimer::new())
        .header_read_timeout(head_timeout);
    // The same cap on heads for clients speaking HTTP/2 without TLS (prior knowledge).
    builder.http2().max_header_list_size(READ_BUFFER as u32);
    // Shared, not cloned per connection: each connection's task holds only a pointer to it.
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            Some(_) = connections.join_next() => continue,
            () = stop.cancelled() => break,
        };
        let tcp = match accepted {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                accept_failed(e, &stop).await;
                continue;
            }
        };
        // Frames go out as they are written: with Nagle's algorithm a small frame can wait
        // for the client's delayed ACK of the one before (up to 40 ms on Linux).
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        // A `Router` clone shares its routes (an `Arc`), it does not rebuild them.
        let service = TowerToHyperService::new(router.clone());
        let (builder, watcher) = (Arc::clone(&builder), graceful.watcher());
        connections.spawn(async move {
            // The HTTP/1-or-2 sniff before hyper's own head deadline has none of its own.
            if !first_byte(&tcp, head_timeout).await {
                return;
            }
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(tcp), service);
            if let Err(e) = watcher.watch(connection).await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let closed = graceful.shutdown();
    tokio::pin!(closed);
    loop {
        tokio::select! {
            () = &mut closed => break,
            // Keep reaping, so the set does not hold every finished connection meanwhile.
            Some(_) = connections.join_next() => {}
        }
    }
    connections.shutdown().await;
}

/// Whether the client sent something (or closed) in time.
async fn first_byte(tcp: &TcpStream, within: Duration) -> bool {
    let mut byte = [0u8; 1];
    matches!(
        tokio::time::timeout(within, tcp.peek(&mut byte)).await,
        Ok(Ok(_))
    )
}

/// A peer that gave up before we accepted is its own business; anything else (out of file
/// descriptors, say) is logged and retried after a pause, since connections will close.
async fn accept_failed(e: std::io::Error, stop: &CancellationToken) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "cannot accept connections; retrying in 1 s");
    tokio::select! {
        () = tokio::time::sleep(Duration::from_secs(1)) => {}
        () = stop.cancelled() => {}
    }
}
