//! The `/v1/` handlers, `/healthz` and `/metrics`: thin layers over the log, the store and
//! the index. Every record the API shows is read through the log, authenticated against the
//! signed checkpoint.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tftrail_core::layout::blob_path;
use tftrail_core::record::{Actor, BlobRef, Record};
use tftrail_index::{Filter, Index};
use tftrail_store::NewObject;

use crate::auth::Need;
use crate::error::ApiError;
use crate::state::{Admin, AppState, Identified, Reader, Writer, MAX_REMEMBERED_UPLOADS};

/// The current time as records carry it: UTC, RFC 3339, milliseconds.
pub fn now_utc() -> String {
    let f = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    time::OffsetDateTime::now_utc()
        .format(&f)
        .expect("a UTC time formats")
}

/// The current time, Unix nanoseconds.
pub(crate) fn now_ns() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64
}

/// Reads a request body of at most `limit` bytes, answering 413 beyond.
pub(crate) async fn read_body(body: Body, limit: usize, what: &str) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::new();
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::bad_request(format!("cannot read the {what}: {e}")))?;
        if out.len() + chunk.len() > limit {
            return Err(ApiError::too_large(format!(
                "the {what} is larger than the server's limit of {limit} bytes"
            )));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// `GET /healthz`.
pub async fn healthz(State(st): State<Arc<AppState>>) -> Response {
    match st.blocking(|st| Ok(st.log.head()?)).await {
        Ok(h) => Json(json!({"status": "ok", "size": h.checkpoint.size})).into_response(),
        Err(e) => crate::error::json_error(StatusCode::SERVICE_UNAVAILABLE, &e.message),
    }
}

/// `GET /metrics`.
pub async fn metrics(State(st): State<Arc<AppState>>, _: Reader) -> Result<Response, ApiError> {
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        st.metrics.render(),
    )
        .into_response())
}

/// `GET /v1/key`.
pub async fn key(State(st): State<Arc<AppState>>, _: Reader) -> Result<Response, ApiError> {
    let k = st.log.key();
    Ok(Json(json!({"key": k.as_str(), "origin": k.name()})).into_response())
}

/// `GET /v1/whoami`: the caller as the server authenticated it, and what its role allows
/// (clients check before they start work they could not record).
pub async fn whoami(Identified(p): Identified) -> Result<Response, ApiError> {
    Ok(Json(json!({
        "role": p.role.as_str(),
        "label": p.label,
        "authenticated": p.authenticated,
        "may": {
            "read": p.role.allows(Need::Read),
            "write": p.role.allows(Need::Write),
            "export": p.role.allows(Need::Export),
            "admin": p.role.allows(Need::Admin),
        },
    }))
    .into_response())
}

/// `GET /v1/tokens` (admin): the credentials in effect, never their secrets.
pub async fn tokens(State(st): State<Arc<AppState>>, _: Admin) -> Result<Response, ApiError> {
    Ok(Json(json!({ "credentials": st.auth.describe() })).into_response())
}

/// `GET /v1/checkpoint`.
pub async fn checkpoint(State(st): State<Arc<AppState>>, _: Reader) -> Result<Response, ApiError> {
    let h = st.blocking(|st| Ok(st.log.head()?)).await?;
    let mut out = json!({
        "size": h.checkpoint.size,
        "root": tftrail_core::merkle::hash_b64(&h.checkpoint.root),
        "note": String::from_utf8_lossy(&h.note),
    });
    let Some(w) = &st.witnesses else {
        return Ok(Json(out).into_response());
    };
    let (met, q) = crate::witnesses::quorum_json(w.policy(), &h.note);
    out["witnesses"] = q;
    Ok((
        [(
            crate::witnesses::QUORUM_HEADER,
            crate::witnesses::quorum_word(met),
        )],
        Json(out),
    )
        .into_response())
}

/// What the client says of itself: stored as such (self-asserted).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SelfActor {
    #[serde(default)]
    user: String,
    #[serde(default)]
    host: String,
    #[serde(default)]
    ci: Option<Value>,
    /// Set by the server only: a request holding it is refused.
    #[serde(default)]
    authenticated: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewRecord {
    kind: String,
    payload: Value,
    #[serde(default)]
    blobs: Vec<BlobRef>,
    #[serde(default)]
    actor: Option<SelfActor>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AppendRequest {
    records: Vec<NewRecord>,
    #[serde(default)]
    proofs: bool,
}

/// The kinds only the state backend writes (`tfstate/`): the server derives state versions
/// and locks from them, so a client appending one could forge a version or hold a lock.
/// `terraform.state.intent` and `.outcome` (`tftrail run -- terraform state …`) are a run's.
fn is_state_backend_kind(kind: &str) -> bool {
    matches!(
        kind.strip_prefix("terraform.state."),
        Some("write" | "delete" | "lock" | "unlock" | "force_unlock" | "refused")
    )
}

/// `POST /v1/records`.
pub async fn append(
    State(st): State<Arc<AppState>>,
    Writer(who): Writer,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = read_body(body, st.config.limits.max_body_bytes, "request body").await?;
    let req: AppendRequest = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("the request is not a valid append: {e}")))?;
    let max = st.config.limits.max_records_per_request;
    if req.records.is_empty() {
        return Err(ApiError::bad_request("no records to append"));
    }
    if req.records.len() > max {
        return Err(ApiError::too_large(format!(
            "{} records in one request; the server's limit is {max}",
            req.records.len()
        )));
    }
    let time = now_utc();
    let mut entries = Vec::with_capacity(req.records.len());
    let mut blobs: Vec<(usize, BlobRef)> = Vec::new();
    let mut runs = Vec::new();
    for (i, r) in req.records.into_iter().enumerate() {
        let n = i + 1;
        let a = r.actor.unwrap_or_default();
        if is_state_backend_kind(&r.kind) {
            return Err(ApiError::bad_request(format!(
                "record {n}: kind {} is written only by the server's state backend (/state/); a client cannot append it",
                r.kind
            )));
        }
        if a.authenticated.is_some() {
            return Err(ApiError::bad_request(format!(
                "record {n}: actor.authenticated is set by the server from the credential; a request cannot set it"
            )));
        }
        blobs.extend(r.blobs.iter().map(|b| (n, b.clone())));
        let actor = Actor {
            user: a.user,
            host: a.host,
            ci: a.ci,
            authenticated: Some(who.authenticated.clone()),
        };
        let said = crate::tfstate::who_of(&actor);
        if let Some(ev) = crate::tfstate::run_event(&r.kind, &r.payload, said) {
            runs.push((i as u64, ev));
        }
        let entry = Record::new(&r.kind, &time, actor, r.payload, r.blobs)
            .and_then(|r| r.to_entry())
            .map_err(|e| ApiError::bad_request(format!("record {n}: {e}")))?;
        entries.push(entry);
    }
    if !blobs.is_empty() {
        st.blocking(move |st| check_blobs(st, &blobs)).await?;
    }
    let landed = st
        .seq
        .append(entries)
        .await
        .map_err(ApiError::unavailable)?;
    // Runs of `tftrail run` open on a state of this server link its writes (tfstate).
    let now = now_ns();
    for (i, ev) in runs {
        st.tfstate.note_run(ev, landed.first + i, now);
    }
    let proofs = req.proofs;
    // With witnesses, the answer waits (bounded) for a checkpoint that covers the records
    // and has the quorum, and carries it; else the commit's own checkpoint.
    let cosigned = match &st.witnesses {
        Some(w) if !w.wait.is_zero() => w.wait_for(landed.size).await,
        _ => None,
    };
    // The commit's checkpoint covers the records; receipts need the tree read again.
    let (note, size, receipts) = if proofs {
        let (first, count) = (landed.first, landed.count);
        let cosigned = cosigned.clone();
        st.blocking(move |st| {
            let mut head = st.log.head()?;
            // Receipts carry the cosigned checkpoint when there is one.
            if let Some(g) = cosigned {
                head.checkpoint = st
                    .log
                    .key()
                    .open_checkpoint(&g.note)
                    .map_err(|e| ApiError::internal(e.to_string()))?;
                head.note = g.note.clone();
            }
            let mut receipts = Vec::new();
            for i in first..first + count {
                let r = st.log.prove(&head, i)?;
                receipts.push(String::from_utf8_lossy(&r.encode()).into_owned());
            }
            Ok((head.note, head.checkpoint.size, receipts))
        })
        .await?
    } else if let Some(g) = &cosigned {
        (g.note.clone(), g.size, Vec::new())
    } else {
        (landed.checkpoint.to_vec(), landed.size, Vec::new())
    };
    let mut out = json!({
        "first": landed.first,
        "count": landed.count,
        // The size of the checkpoint returned, which covers the records (maybe more).
        "size": size,
        "checkpoint": String::from_utf8_lossy(&note),
    });
    if proofs {
        out["proofs"] = json!(receipts);
    }
    let Some(w) = &st.witnesses else {
        return Ok(Json(out).into_response());
    };
    // Not "final" without the quorum: the field and the header say so.
    let (met, q) = crate::witnesses::quorum_json(w.policy(), &note);
    out["witnesses"] = q;
    Ok((
        [(
            crate::witnesses::QUORUM_HEADER,
            crate::witnesses::quorum_word(met),
        )],
        Json(out),
    )
        .into_response())
}

/// Every blob a record names must be stored, with that size (its hash is its name).
fn check_blobs(st: &AppState, blobs: &[(usize, BlobRef)]) -> Result<(), ApiError> {
    for (n, b) in blobs {
        let known = st
            .uploaded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&b.sha256)
            .copied();
        let size = match known {
            Some(s) => s,
            None => match st.log.store().get(&blob_path(&b.sha256))? {
                Some(data) => {
                    if hex::encode(Sha256::digest(&data)) != b.sha256 {
                        return Err(ApiError::internal(format!(
                            "the stored blob {} does not match its SHA-256",
                            b.sha256
                        )));
                    }
                    data.len() as u64
                }
                None => {
                    return Err(ApiError::bad_request(format!(
                    "record {n}: blob {} ({}) is not stored; upload it first (PUT /v1/blobs/{})",
                    b.name, b.sha256, b.sha256
                )))
                }
            },
        };
        if size != b.size {
            return Err(ApiError::bad_request(format!(
                "record {n}: blob {} is {size} bytes, not {}",
                b.sha256, b.size
            )));
        }
    }
    Ok(())
}

fn check_sha256(s: &str) -> Result<(), ApiError> {
    if s.len() == 64 && s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "{s:?} is not a SHA-256 (64 lower-case hex digits)"
        )))
    }
}

/// `PUT /v1/blobs/<sha256>`.
pub async fn put_blob(
    State(st): State<Arc<AppState>>,
    _: Writer,
    headers: HeaderMap,
    Path(sha): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    check_sha256(&sha)?;
    let limit = st.config.limits.max_blob_bytes;
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if len > limit as u64 {
            return Err(ApiError::too_large(format!(
                "the blob is {len} bytes; the server's limit is {limit}"
            )));
        }
    }
    let _permit = st
        .uploads
        .acquire()
        .await
        .map_err(|_| ApiError::unavailable("the server is shutting down"))?;
    let data = read_body(body, limit, "blob").await?;
    let got = hex::encode(Sha256::digest(&data));
    if got != sha {
        return Err(ApiError::bad_request(format!(
            "the blob's SHA-256 is {got}, not {sha} as its path says"
        )));
    }
    let size = data.len() as u64;
    let s = sha.clone();
    st.blocking(move |st| {
        st.log
            .store()
            .create_all(&[NewObject::new(blob_path(&s), data)])?;
        let mut up = st.uploaded.lock().unwrap_or_else(|p| p.into_inner());
        if up.len() >= MAX_REMEMBERED_UPLOADS {
            up.clear();
        }
        up.insert(s, size);
        Ok(())
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"sha256": sha, "size": size})),
    )
        .into_response())
}

/// `GET /v1/blobs/<sha256>`.
pub async fn get_blob(
    State(st): State<Arc<AppState>>,
    _: Reader,
    Path(sha): Path<String>,
) -> Result<Response, ApiError> {
    check_sha256(&sha)?;
    let s = sha.clone();
    let data = st
        .blocking(move |st| {
            if !st.log.store().exists(&blob_path(&s))? {
                return Err(ApiError::not_found(format!("no blob {s}")));
            }
            Ok(st.log.blob(&s)?)
        })
        .await?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], data).into_response())
}

/// Query filters of `GET /v1/records`, as `tftrail log` has them.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RecordQuery {
    kind: Option<String>,
    actor: Option<String>,
    address: Option<String>,
    outcome: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<u64>,
    /// `context.workspace`, exactly.
    workspace: Option<String>,
    /// Keyset paging: records before this index.
    before: Option<u64>,
    /// `yes`: only records whose writer the server authenticated; `no`: only others.
    authenticated: Option<String>,
}

fn time_filter(what: &str, t: Option<&str>) -> Result<Option<i64>, ApiError> {
    t.map(|t| {
        tftrail_index::time_ns(t)
            .ok_or_else(|| ApiError::bad_request(format!("{what}={t:?} is not an RFC 3339 time")))
    })
    .transpose()
}

/// Opens the server's index, up to date with the verified checkpoint, and runs `f`.
pub(crate) fn with_index<T>(
    st: &AppState,
    f: impl FnOnce(&Index, &tftrail_core::checkpoint::Checkpoint) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    let cp = st.log.head()?.checkpoint;
    let path = st.index.lock().unwrap_or_else(|p| p.into_inner());
    let (ix, _) = Index::open(&path, &st.log, &cp).map_err(index_err)?;
    f(&ix, &cp)
}

pub(crate) fn index_err(e: tftrail_index::IndexError) -> ApiError {
    ApiError::internal(e.to_string())
}

/// 404 unless record `n` is in a tree of `size` records.
pub(crate) fn in_log(n: u64, size: u64) -> Result<(), ApiError> {
    if n < size {
        return Ok(());
    }
    Err(ApiError::not_found(format!(
        "record {n} is not in the log (size {size})"
    )))
}

/// Record `n` (404 when the checkpoint does not cover it), read through the log and
/// authenticated against `cp`; `err` maps read failures.
pub(crate) fn read_one(
    log: &tftrail_log::Log,
    cp: &tftrail_core::checkpoint::Checkpoint,
    n: u64,
    err: fn(tftrail_index::IndexError) -> ApiError,
) -> Result<Record, ApiError> {
    in_log(n, cp.size)?;
    let (_, r) = tftrail_index::read_records(log, cp, &[n])
        .map_err(err)?
        .remove(0);
    Ok(r)
}

fn record_json(i: u64, r: &Record) -> Value {
    json!({"index": i, "record": r})
}

/// `GET /v1/records`: newest first.
pub async fn list_records(
    State(st): State<Arc<AppState>>,
    _: Reader,
    Query(q): Query<RecordQuery>,
) -> Result<Response, ApiError> {
    let authenticated = match q.authenticated.as_deref() {
        None => None,
        Some("yes") => Some(true),
        Some("no") => Some(false),
        Some(x) => {
            return Err(ApiError::bad_request(format!(
                "authenticated={x:?}: use yes or no"
            )))
        }
    };
    let f = Filter {
        authenticated,
        kind: q.kind,
        actor: q.actor,
        outcome: q.outcome,
        since_ns: time_filter("since", q.since.as_deref())?,
        until_ns: time_filter("until", q.until.as_deref())?,
        resource: q.address,
        workspace: q.workspace,
        before: q.before,
        after: None,
        limit: q.limit.unwrap_or(100).min(10_000),
    };
    let out = st
        .blocking(move |st| {
            with_index(st, |ix, cp| {
                let idx = ix.find(&f).map_err(index_err)?;
                let recs = tftrail_index::read_records(&st.log, cp, &idx).map_err(index_err)?;
                Ok(recs
                    .iter()
                    .map(|(i, r)| record_json(*i, r))
                    .collect::<Vec<_>>())
            })
        })
        .await?;
    Ok(Json(json!({ "records": out })).into_response())
}

/// `GET /v1/records/<n>`.
pub async fn show_record(
    State(st): State<Arc<AppState>>,
    _: Reader,
    Path(n): Path<u64>,
) -> Result<Response, ApiError> {
    let out = st
        .blocking(move |st| {
            let cp = st.log.head()?.checkpoint;
            let r = read_one(&st.log, &cp, n, index_err)?;
            Ok(record_json(n, &r))
        })
        .await?;
    Ok(Json(out).into_response())
}

/// `GET /v1/records/<n>/proof`.
pub async fn prove(
    State(st): State<Arc<AppState>>,
    _: Reader,
    Path(n): Path<u64>,
) -> Result<Response, ApiError> {
    let text = st
        .blocking(move |st| {
            let head = st.log.head()?;
            in_log(n, head.checkpoint.size)?;
            Ok(st.log.prove(&head, n)?.encode())
        })
        .await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddressQuery {
    address: String,
}

fn changes(st: &AppState, address: &str) -> Result<Vec<Value>, ApiError> {
    with_index(st, |ix, cp| {
        tftrail_index::describe_history(ix, &st.log, cp, address).map_err(index_err)
    })
}

/// `GET /v1/history?address=A`.
pub async fn history(
    State(st): State<Arc<AppState>>,
    _: Reader,
    Query(q): Query<AddressQuery>,
) -> Result<Response, ApiError> {
    let out = st.blocking(move |st| changes(st, &q.address)).await?;
    Ok(Json(json!({ "changes": out })).into_response())
}

/// `GET /v1/blame?address=A`.
pub async fn blame(
    State(st): State<Arc<AppState>>,
    _: Reader,
    Query(q): Query<AddressQuery>,
) -> Result<Response, ApiError> {
    let out = st.blocking(move |st| changes(st, &q.address)).await?;
    Ok(Json(json!({ "changes": tftrail_index::last_applied(out) })).into_response())
}

#[cfg(test)]
mod tests {
    #[test]
    fn state_backend_kinds_are_the_servers() {
        for k in [
            "write",
            "delete",
            "lock",
            "unlock",
            "force_unlock",
            "refused",
        ] {
            assert!(super::is_state_backend_kind(&format!(
                "terraform.state.{k}"
            )));
        }
        for k in [
            "terraform.state.intent",
            "terraform.state.outcome",
            "terraform.apply.intent",
            "terraform.write",
        ] {
            assert!(!super::is_state_backend_kind(k), "{k}");
        }
    }
}
