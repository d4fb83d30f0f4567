//! The HTTP layer: `POST /add-checkpoint` (C2SP tlog-witness), `GET /healthz`, and the
//! listener (HTTP/1.1 keep-alive, header-read timeout, graceful shutdown on SIGTERM/SIGINT).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tower::ServiceExt as _;

use crate::witness::{Refusal, Witness};
use crate::WitnessError;

/// Largest request body: 63 proof lines and a checkpoint with many signatures fit easily.
pub const MAX_BODY: usize = 64 * 1024;

/// Content type of a 409's size body.
pub const TLOG_SIZE: &str = "text/x.tlog.size";

/// The router; binds nothing.
pub fn app(w: Arc<Witness>) -> Router {
    Router::new()
        .route("/add-checkpoint", post(add_checkpoint))
        .route("/healthz", get(|| async { "ok\n" }))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(w)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn text(status: StatusCode, msg: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{msg}\n"),
    )
        .into_response()
}

async fn add_checkpoint(State(w): State<Arc<Witness>>, body: Bytes) -> Response {
    let w2 = w.clone();
    // The decision holds a per-origin lock across an fsync: off the async workers.
    let res = tokio::task::spawn_blocking(move || w2.add_checkpoint(&body, now())).await;
    let res = match res {
        Ok(r) => r,
        Err(e) => Err(Refusal::Internal(format!("the request's task failed: {e}"))),
    };
    match res {
        Ok(c) => {
            tracing::info!(origin = %c.origin, old = c.old, size = c.size, "cosigned");
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                c.body,
            )
                .into_response()
        }
        Err(r) => {
            let status = match &r {
                Refusal::BadRequest(_) => StatusCode::BAD_REQUEST,
                Refusal::Forbidden(_) => StatusCode::FORBIDDEN,
                Refusal::UnknownOrigin(_) => StatusCode::NOT_FOUND,
                Refusal::StaleOld { .. } | Refusal::SameSizeOtherRoot { .. } => {
                    StatusCode::CONFLICT
                }
                Refusal::BadProof { .. } => StatusCode::UNPROCESSABLE_ENTITY,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            match &r {
                Refusal::Internal(detail) => {
                    tracing::error!(%detail, "add-checkpoint failed; nothing was cosigned");
                    text(status, "internal error; nothing was cosigned".into())
                }
                Refusal::StaleOld { recorded, old } => {
                    tracing::info!(old, recorded, "stale old size");
                    (
                        StatusCode::CONFLICT,
                        [(header::CONTENT_TYPE, TLOG_SIZE)],
                        format!("{recorded}\n"),
                    )
                        .into_response()
                }
                r => {
                    tracing::warn!(status = status.as_u16(), reason = %r, "refused");
                    text(status, r.to_string())
                }
            }
        }
    }
}

/// Sets up tracing to stderr once (level from TFTRAIL_LOG: error, warn, info, debug; default
/// info). Later calls do nothing.
pub fn init_tracing() {
    let level = match std::env::var("TFTRAIL_LOG").as_deref() {
        Ok("error") => tracing::Level::ERROR,
        Ok("warn") => tracing::Level::WARN,
        Ok("debug") => tracing::Level::DEBUG,
        Ok("trace") => tracing::Level::TRACE,
        _ => tracing::Level::INFO,
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .with_target(false)
        .with_ansi(false)
        .try_init();
}

/// Serves until SIGTERM or SIGINT. Prints `listening on http://ADDR` on stderr once it accepts
/// connections.
pub fn run(w: Witness, listen: &str) -> Result<(), WitnessError> {
    init_tracing();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("tftrail-witness")
        .build()
        .map_err(|e| WitnessError::Config(format!("cannot start the runtime: {e}")))?;
    rt.block_on(serve(Arc::new(w), listen))
}

async fn serve(w: Arc<Witness>, listen: &str) -> Result<(), WitnessError> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| WitnessError::Config(format!("cannot listen on {listen}: {e}")))?;
    let addr: SocketAddr = listener
        .local_addr()
        .map_err(|e| WitnessError::Config(e.to_string()))?;
    tracing::info!(
        %addr,
        witness = %w.key().verifier_key(),
        "witness serving"
    );
    eprintln!("listening on http://{addr}");
    let router = app(w);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        let (tcp, _peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        let router = router.clone();
        let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
            let router = router.clone();
            async move { router.oneshot(req.map(Body::new)).await }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(10))
            .keep_alive(true)
            .serve_connection(TokioIo::new(tcp), svc);
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _ = watcher.watch(conn).await;
        });
    }
    tracing::info!("shutting down; finishing requests in flight");
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(10), graceful.shutdown()).await;
    Ok(())
}

async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}
