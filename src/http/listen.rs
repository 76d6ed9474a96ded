//! The accept loop: every connection served by hyper with `TCP_NODELAY` and a read buffer
//! held at 8 KiB, until told to stop accepting; then open connections close gracefully.

use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// hyper's floor for an HTTP/1 read buffer, and so the largest request head accepted. With
/// hyper's default ceiling the buffer of a connection that served one request doubled to 16
/// KiB, the largest part of an idle subscriber's memory (docs/benchmarks.md).
const READ_BUFFER: usize = 8192;

/// Serves `router` on `listener` until `stop`, then waits for open connections to finish
/// (long-lived SSE responses end when the drain lets their subscribers go).
pub async fn serve_connections(listener: TcpListener, router: Router, stop: CancellationToken) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().max_buf_size(READ_BUFFER);
    let graceful = GracefulShutdown::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stop.cancelled() => break,
        };
        let tcp = match accepted {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                accept_failed(e).await;
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
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(tcp), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// A peer that gave up before we accepted is its own business; anything else (out of file
/// descriptors, say) is logged and retried after a pause, since connections will close.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "cannot accept connections; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
