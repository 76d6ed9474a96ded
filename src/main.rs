//! The `tokenrelay` binary: parse flags, load config, start logging, bind, serve.

use std::future::IntoFuture;

use clap::Parser;
use tokenrelay::app::{AppState, serve};
use tokenrelay::cli::{Cli, Command};
use tokenrelay::config::ProcessEnv;

// glibc's malloc took a quarter of the CPU at 1,000 streams, much of it waiting on its arena
// locks; jemalloc cut that (mimalloc too, but at +9 KiB per idle connection). See
// docs/benchmarks.md, "Allocator".
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Bench(args)) = &cli.command {
        return tokenrelay::bench::main(args).await;
    }
    let (config, secrets) = match cli.config(&ProcessEnv) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("tokenrelay: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    if cli.command == Some(Command::CheckConfig) {
        println!("configuration is valid:\n{:#?}", config.redacted());
        return std::process::ExitCode::SUCCESS;
    }
    cli.init_tracing();
    let (listen, metrics_listen) = (config.listen, config.metrics_listen);
    let state = match AppState::new(config, secrets) {
        Ok(state) => state,
        Err(e) => {
            eprintln!("tokenrelay: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(listen).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("tokenrelay: cannot listen on {listen}: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    if let Some(ops) = metrics_listen {
        match tokio::net::TcpListener::bind(ops).await {
            // Ends with the process, after the main server has drained, so readiness and
            // metrics stay visible during the drain.
            Ok(ops_listener) => {
                let ops_addr = ops_listener.local_addr().unwrap_or(ops);
                let router = tokenrelay::http::ops_router(state.clone());
                tokio::spawn(axum::serve(ops_listener, router.into_make_service()).into_future());
                println!("tokenrelay metrics and health on http://{ops_addr}");
            }
            Err(e) => {
                eprintln!("tokenrelay: cannot listen on {ops}: {e}");
                return std::process::ExitCode::from(1);
            }
        }
    }
    let addr = listener.local_addr().unwrap_or(listen);
    println!("tokenrelay listening on http://{addr}");
    let (hint, auth) = if state.keys.enabled() {
        (
            "with one of your client keys in $KEY",
            " -H \"authorization: Bearer $KEY\"",
        )
    } else {
        ("mock model, no key needed", "")
    };
    println!("try it ({hint}):");
    println!(
        "  curl -N http://{addr}/v1/chat/completions -H 'content-type: application/json'{auth} \\\n    -d '{{\"model\":\"mock/default\",\"stream\":true,\"messages\":[{{\"role\":\"user\",\"content\":\"Hello\"}}]}}'"
    );
    // Bound to all interfaces: this machine's own address is the one a browser here can use.
    let page = if addr.ip().is_unspecified() {
        std::net::SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    };
    println!("or open the playground: http://{page}/");
    match serve(listener, state, shutdown_signal()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tokenrelay: server error: {e}");
            std::process::ExitCode::from(1)
        }
    }
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
