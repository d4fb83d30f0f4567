//! The listener: plain HTTP or TLS, connection and request limits, slow-client timeouts, JSON
//! errors for everything, and graceful shutdown on SIGTERM/SIGINT (requests in flight finish;
//! every queued append is made before the process ends).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Request, Response, StatusCode};
use axum::routing::{any, get};
use axum::Router;
use http_body_util::BodyExt;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::json;
use tftrail_core::checkpoint::SigningKey;
use tftrail_core::record::{Actor, Record};
use tftrail_log::Log;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::auth::Authenticator;
use crate::config::ServerConfig;
use crate::denied::DeniedLog;
use crate::error::{json_error, ApiError, ServerError};
use crate::metrics::Metrics;
use crate::sequencer::Sequencer;
use crate::state::AppState;
use crate::{api, files, tfstate};

/// Runs the server until SIGTERM or SIGINT. Prints `listening on http(s)://ADDR` on stderr
/// once it accepts connections.
pub fn run(config: ServerConfig) -> Result<(), ServerError> {
    config.check()?;
    let key_path = config.key.clone().expect("checked");
    let key_text = std::fs::read_to_string(&key_path).map_err(|e| {
        ServerError::Config(format!(
            "cannot read the signing key {}: {e}",
            key_path.display()
        ))
    })?;
    let key = SigningKey::parse(key_text.trim())
        .map_err(|e| ServerError::Config(format!("signing key {}: {e}", key_path.display())))?;
    let location = config.store.clone().expect("checked");
    let store = tftrail_store::open(&location)?;
    let log = Arc::new(Log::open(store, key.verifier())?);
    // The checkpoint must be this key's before the server answers anything.
    let head = log.head()?;
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(c), Some(k)) => Some(tls_acceptor(c, k)?),
        _ => None,
    };
    let index = config.index.clone().unwrap_or_else(|| {
        tftrail_index::cache_home()
            .join("tftrail/server-index")
            .join(tftrail_index::file_name(log.key().as_str(), &location))
    });
    if let Some(dir) = index.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| ServerError::Config(format!("cannot create {}: {e}", dir.display())))?;
    }
    let auth = Authenticator::from_config(&config)?;
    let state_location = config.state_store();
    let tfstate = crate::tfstate::StateBackend::new(
        open_state_store(&state_location, &location)?,
        config.limits.run_window(),
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("tftrail-serve")
        .build()
        .map_err(|e| ServerError::Io(format!("cannot start the runtime: {e}")))?;
    let metrics = Arc::new(Metrics::new());
    let witnesses = match &config.witness_policy {
        Some(p) => Some(Arc::new(load_witnesses(p, &config, log.key())?)),
        None => None,
    };
    let on_publish = witnesses
        .clone()
        .map(|w| Box::new(move |note: Arc<Vec<u8>>| w.submit(note)) as crate::sequencer::OnPublish);
    let (seq, seq_thread) = Sequencer::start(
        log.clone(),
        key,
        config.limits.max_batch_records,
        Duration::from_micros(config.limits.gather_micros),
        metrics.clone(),
        on_publish,
    );
    let server_actor = Actor {
        user: "tftrail-server".into(),
        host: host_name(),
        ci: None,
        authenticated: Some(json!({"by": "server"})),
    };
    let window = config.limits.denied_window();
    let state = Arc::new(AppState {
        log,
        seq: seq.clone(),
        auth,
        uploads: Semaphore::new(config.limits.max_concurrent_uploads),
        config,
        metrics,
        denied: DeniedLog::new(seq.clone(), server_actor.clone(), window),
        index: Mutex::new(index),
        uploaded: Mutex::new(HashMap::new()),
        server_actor,
        tfstate,
        witnesses,
    });
    let result = rt.block_on(serve(state.clone(), tls, head.checkpoint.size));
    // Everything queued (refusals counted, token changes) is appended before the end.
    state.denied.flush(true);
    record_token_events(&state);
    seq.stop();
    let _ = seq_thread.join();
    rt.shutdown_timeout(Duration::from_secs(5));
    result
}

/// Reads `--witness-policy`: its `log` lines, when there are any, must include this log's key.
fn load_witnesses(
    path: &Path,
    config: &ServerConfig,
    key: &tftrail_core::checkpoint::VerifierKey,
) -> Result<crate::witnesses::Witnesses, ServerError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ServerError::Config(format!(
            "cannot read the witness policy {}: {e}",
            path.display()
        ))
    })?;
    let policy = tftrail_core::policy::Policy::parse(&text)
        .map_err(|e| ServerError::Config(format!("{}: {e}", path.display())))?;
    if !policy.logs().is_empty()
        && !policy
            .logs()
            .iter()
            .any(|l| l.verifier.as_str() == key.as_str())
    {
        return Err(ServerError::Config(format!(
            "the witness policy {} lists log keys, but not this log's key {}",
            path.display(),
            key.as_str()
        )));
    }
    if policy.witnesses().iter().all(|w| w.url.is_none()) && !policy.requires_nothing() {
        eprintln!(
            "warning: no witness of {} has a URL: nothing will be submitted and no checkpoint will have the quorum",
            path.display()
        );
    }
    crate::witnesses::Witnesses::new(
        policy,
        config.limits.witness_timeout(),
        config.limits.quorum_wait(),
    )
}

/// Opens (creating a directory if needed) the state store, which must not be the log's store
/// nor lie inside or around it: `/log/` serves the log's objects to readers, and state holds
/// secrets.
fn open_state_store(state: &str, log: &str) -> Result<Box<dyn tftrail_store::Store>, ServerError> {
    use tftrail_store::Location;
    let overlap = || {
        ServerError::Config(format!(
            "the state store {state} overlaps the log's store {log}; state holds secrets and the log is readable: give --state-store a place of its own"
        ))
    };
    let (sl, ll) = (Location::parse(state)?, Location::parse(log)?);
    if sl == ll {
        return Err(overlap());
    }
    if let (Location::Local(a), Location::Local(b)) = (&sl, &ll) {
        let (a, b) = (resolved(a), resolved(b));
        if a.starts_with(&b) || b.starts_with(&a) {
            return Err(overlap());
        }
    }
    Ok(tftrail_store::create(state)?)
}

/// `p` made absolute with its longest existing ancestor's symlinks resolved (the rest need
/// not exist yet).
fn resolved(p: &Path) -> std::path::PathBuf {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let mut base = abs.clone();
    let mut rest = Vec::new();
    loop {
        if let Ok(c) = base.canonicalize() {
            return rest.iter().rev().fold(c, |acc, part| acc.join(part));
        }
        match (base.file_name().map(|f| f.to_os_string()), base.parent()) {
            (Some(f), Some(parent)) => {
                rest.push(f);
                base = parent.to_path_buf();
            }
            _ => return abs,
        }
    }
}

fn host_name() -> String {
    let u = rustix::system::uname();
    let n = u.nodename().to_string_lossy().into_owned();
    if n.is_empty() {
        "unknown".into()
    } else {
        n
    }
}

/// Records the token file's changes since the last call (admin actions).
fn record_token_events(st: &AppState) {
    for e in st.auth.take_reload_errors() {
        eprintln!("tftrail serve: the tokens file was not reloaded (the last good one stays in effect): {e}");
    }
    let events = st.auth.take_events();
    if events.is_empty() {
        return;
    }
    let time = api::now_utc();
    let entries: Vec<Vec<u8>> = events
        .iter()
        .filter_map(|e| {
            let kind = format!("server.token.{}", e.kind());
            let payload = json!({ "token": e.info() });
            Record::new(&kind, &time, st.server_actor.clone(), payload, vec![])
                .and_then(|r| r.to_entry())
                .map_err(|err| eprintln!("tftrail serve: cannot record a token change: {err}"))
                .ok()
        })
        .collect();
    if !entries.is_empty() {
        st.seq.append_detached(entries);
    }
}

fn tls_acceptor(cert: &Path, key: &Path) -> Result<tokio_rustls::TlsAcceptor, ServerError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    use tokio_rustls::rustls;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect())
        .map_err(|e| ServerError::Config(format!("TLS certificate {}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(ServerError::Config(format!(
            "TLS certificate {} holds no certificate",
            cert.display()
        )));
    }
    let pk = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| ServerError::Config(format!("TLS key {}: {e}", key.display())))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, pk))
        .map_err(|e| ServerError::Config(format!("TLS: {e}")))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))
}

/// The routes (docs/API.md).
fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(api::healthz))
        .route("/metrics", get(api::metrics))
        .route("/v1/key", get(api::key))
        .route("/v1/checkpoint", get(api::checkpoint))
        .route("/v1/records", get(api::list_records).post(api::append))
        .route("/v1/records/{n}", get(api::show_record))
        .route("/v1/records/{n}/proof", get(api::prove))
        .route("/v1/blobs/{sha}", get(api::get_blob).put(api::put_blob))
        .route("/v1/blame", get(api::blame))
        .route("/v1/history", get(api::history))
        .route("/v1/objects", get(files::list))
        .route("/v1/tokens", get(api::tokens))
        .route("/v1/whoami", get(api::whoami))
        .route("/log/{*path}", get(files::get))
        .route("/state/{*name}", any(tfstate::state))
        .route("/v1/state", get(tfstate::v1_states))
        .route("/v1/state/{*rest}", get(tfstate::v1_state))
        .fallback(|| async { ApiError::not_found("no such endpoint (see docs/API.md)") })
        .with_state(state)
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

async fn serve(
    state: Arc<AppState>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    size: u64,
) -> Result<(), ServerError> {
    let listen = state.config.listen().to_string();
    let listener = TcpListener::bind(&listen)
        .await
        .map_err(|e| ServerError::Io(format!("cannot listen on {listen}: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| ServerError::Io(e.to_string()))?;
    if let Some(w) = &state.witnesses {
        w.spawn(state.log.clone(), state.metrics.clone());
    }
    // The start is recorded before anything is served: a log the server cannot append to
    // stops it here.
    record_started(&state, &addr.to_string(), tls.is_some()).await?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    eprintln!(
        "listening on {scheme}://{addr} (log {}, size {size})",
        state.log.store().location()
    );

    // Background: token file changes and coalesced refusals, recorded.
    let bg = {
        let st = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let st2 = st.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    st2.auth.refresh();
                    record_token_events(&st2);
                    st2.denied.flush(false);
                })
                .await;
            }
        })
    };

    let router = router(state.clone());
    let limits = state.config.limits.clone();
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let inflight = Arc::new(Semaphore::new(limits.max_inflight_requests));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little, keep serving.
                    eprintln!("tftrail serve: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        let permit = connections.clone().try_acquire_owned();
        let tls = tls.clone();
        let header_timeout = limits.header_timeout();
        match permit {
            Ok(permit) => {
                let svc = service(router.clone(), state.clone(), inflight.clone(), peer);
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let _permit = permit;
                    match tls {
                        None => serve_conn(tcp, svc, header_timeout, watcher).await,
                        Some(acc) => {
                            if let Ok(Ok(s)) =
                                tokio::time::timeout(header_timeout, acc.accept(tcp)).await
                            {
                                serve_conn(s, svc, header_timeout, watcher).await;
                            }
                        }
                    }
                });
            }
            Err(_) => {
                tokio::spawn(async move {
                    let msg = "too many connections to the tftrail server; retry later";
                    match tls {
                        None => refuse(tcp, msg).await,
                        Some(acc) => {
                            if let Ok(Ok(s)) =
                                tokio::time::timeout(header_timeout, acc.accept(tcp)).await
                            {
                                refuse(s, msg).await;
                            }
                        }
                    }
                });
            }
        }
    }
    eprintln!("tftrail serve: shutting down; finishing requests in flight");
    drop(listener);
    let grace = limits.request_timeout() + Duration::from_secs(5);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        eprintln!("tftrail serve: some connections did not finish within {grace:?}");
    }
    bg.abort();
    Ok(())
}

/// The server's start, with the credentials in effect, recorded in the log.
async fn record_started(st: &AppState, addr: &str, tls: bool) -> Result<(), ServerError> {
    let payload = json!({
        "listen": addr,
        "tls": tls,
        "public_read": st.config.public_read,
        "version": env!("CARGO_PKG_VERSION"),
        "credentials": st.auth.describe(),
        "state_store": st.tfstate.location(),
    });
    match Record::new(
        "server.started",
        &api::now_utc(),
        st.server_actor.clone(),
        payload,
        vec![],
    )
    .and_then(|r| r.to_entry())
    {
        Ok(e) => st
            .seq
            .append(vec![e])
            .await
            .map(|_| ())
            .map_err(|e| ServerError::Io(format!("cannot record the server's start: {e}"))),
        Err(e) => Err(ServerError::Io(format!(
            "cannot record the server's start: {e}"
        ))),
    }
}

/// Writes a 503 and closes: a connection over the limit.
async fn refuse<I: AsyncWrite + Unpin>(mut io: I, msg: &str) {
    let body = json!({ "error": msg }).to_string();
    let head = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\nretry-after: 1\r\n\r\n",
        body.len()
    );
    let _ = io.write_all(head.as_bytes()).await;
    let _ = io.write_all(body.as_bytes()).await;
    let _ = io.shutdown().await;
}

type Svc = Arc<
    dyn Fn(
            Request<hyper::body::Incoming>,
        ) -> futures::future::BoxFuture<'static, Result<Response<Body>, Infallible>>
        + Send
        + Sync,
>;

/// The per-connection service: the peer's address for handlers, the in-flight limit, the
/// request timeout, metrics, and JSON bodies for every error (axum's own rejections are text).
fn service(router: Router, st: Arc<AppState>, inflight: Arc<Semaphore>, peer: SocketAddr) -> Svc {
    Arc::new(move |req: Request<hyper::body::Incoming>| {
        let router = router.clone();
        let st = st.clone();
        let inflight = inflight.clone();
        Box::pin(async move {
            let started = Instant::now();
            let timeout = st.config.limits.request_timeout();
            let resp = match inflight.try_acquire_owned() {
                Err(_) => json_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "too many requests in flight; retry later",
                ),
                Ok(_permit) => {
                    let mut req = req.map(Body::new);
                    req.extensions_mut().insert(ConnectInfo(peer));
                    match tokio::time::timeout(timeout, router.oneshot(req)).await {
                        Ok(Ok(r)) => as_json_error(r).await,
                        Ok(Err(never)) => match never {},
                        Err(_) => json_error(
                            StatusCode::REQUEST_TIMEOUT,
                            &format!("the request took longer than {}s", timeout.as_secs()),
                        ),
                    }
                }
            };
            st.metrics
                .answered(resp.status().as_u16(), started.elapsed());
            Ok(resp)
        })
    })
}

/// Gives an error answer that is not JSON (axum's rejections) a JSON body.
async fn as_json_error(r: Response<Body>) -> Response<Body> {
    let is_json = r
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if r.status().as_u16() < 400 || is_json {
        return r;
    }
    let status = r.status();
    let bytes = match r.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Default::default(),
    };
    let text = String::from_utf8_lossy(&bytes);
    let msg = if text.trim().is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        text.trim().to_string()
    };
    json_error(status, &msg)
}

async fn serve_conn<I>(
    io: I,
    svc: Svc,
    header_timeout: Duration,
    watcher: hyper_util::server::graceful::Watcher,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let hsvc = hyper::service::service_fn(move |req| svc(req));
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), hsvc);
    let _ = watcher.watch(conn).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_store_keeps_out_of_the_log_store() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("log");
        std::fs::create_dir(&log).unwrap();
        let l = log.to_str().unwrap();
        for bad in [
            l.to_string(),
            format!("{l}/"),
            format!("{l}/tile/x"),
            format!("{l}/../log/y"),
            d.path().to_str().unwrap().to_string(),
        ] {
            let e = open_state_store(&bad, l).err().expect(&bad).to_string();
            assert!(e.contains("overlaps the log's store"), "{bad}: {e}");
        }
        // Nothing was created inside the log's store.
        assert!(!log.join("tile").exists() && !log.join("y").exists());
        let good = d.path().join("states");
        assert!(open_state_store(good.to_str().unwrap(), l).is_ok());
        assert!(good.is_dir());
    }
}
