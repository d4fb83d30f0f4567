//! The handlers: `/state/{name}` (GET, POST/PUT, DELETE, LOCK, UNLOCK: Terraform's `http`
//! backend protocol) and the `/v1/state` listings. Each takes the name's mutex, checks the
//! request against the name's view, stores what must be stored, appends its record, and only
//! then changes the view and answers.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tftrail_core::layout::blob_path;
use tftrail_core::record::{Actor, BlobRef, Record};
use tftrail_store::NewObject;
use tftrail_terraform::StateSnapshot;
use tokio::sync::OwnedMutexGuard;

use super::lock::{LockInfo, Unlock};
use super::{check_name, Current, Held, Slot};
use crate::api::{index_err, now_ns, now_utc, read_body, with_index};
use crate::auth::{Need, Principal, Role};
use crate::error::ApiError;
use crate::state::{peer_of, AppState};

/// A record larger than this keeps its state diff in a blob (as the CLI's records do: an
/// entry is rewritten into every partial bundle of its tile).
const INLINE_BUDGET: usize = 4096;

/// The largest LOCK or UNLOCK body.
const MAX_LOCK_BODY: usize = 64 << 10;

/// The query of a state request.
#[derive(Deserialize, Default)]
pub struct StateQuery {
    /// The lock the writer holds (Terraform adds it to writes while it holds one).
    #[serde(rename = "ID")]
    id: Option<String>,
    /// `true`: an admin replaces the state although its lineage or serial conflicts.
    force: Option<String>,
}

impl StateQuery {
    fn forced(&self) -> Result<bool, ApiError> {
        match self.force.as_deref() {
            None | Some("false") | Some("0") => Ok(false),
            Some("true") | Some("1") => Ok(true),
            Some(x) => Err(ApiError::bad_request(format!(
                "force={x:?}: use force=true or leave it out"
            ))),
        }
    }
}

/// Every method on `/state/{name}`.
pub async fn state(
    State(st): State<Arc<AppState>>,
    Path(name): Path<String>,
    Query(q): Query<StateQuery>,
    req: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    match parts.method.as_str() {
        "GET" | "HEAD" => get(&st, &name, &parts).await,
        "POST" | "PUT" => write(&st, &name, &q, &parts, body).await,
        "DELETE" => delete(&st, &name, &q, &parts).await,
        "LOCK" => lock(&st, &name, &parts, body).await,
        "UNLOCK" => unlock(&st, &name, &parts, body).await,
        m => Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{m} is not a state backend method: use GET, POST, DELETE, LOCK or UNLOCK"),
        )),
    }
}

/// Authenticates the caller (always: state holds secrets, so `--public-read` does not apply)
/// and checks its role; a refusal is recorded. Then checks the name.
async fn caller(
    st: &AppState,
    parts: &Parts,
    name: &str,
    allowed: impl Fn(Role) -> bool,
    what: &str,
) -> Result<Principal, ApiError> {
    let (peer, path) = (peer_of(parts), parts.uri.path());
    let p = st
        .identify(&parts.headers, peer, &parts.method, path)
        .await?;
    if !allowed(p.role) {
        return Err(st.forbid(peer, &parts.method, path, &p, what));
    }
    check_name(name).map_err(ApiError::bad_request)?;
    Ok(p)
}

fn writer(r: Role) -> bool {
    r.allows(Need::Write)
}

/// The name's view, loaded from the index on first use (and, once, the runs still open).
async fn loaded(st: &Arc<AppState>, name: &str) -> Result<OwnedMutexGuard<Slot>, ApiError> {
    let be = &st.tfstate;
    be.runs_loaded
        .get_or_try_init(|| async {
            let window = be.run_window.as_nanos() as i64;
            let runs = st
                .blocking(move |st| {
                    with_index(st, |ix, cp| {
                        let since = now_ns().saturating_sub(window);
                        let open = ix.open_runs(since).map_err(index_err)?;
                        let idx: Vec<u64> = open.iter().map(|e| e.index).collect();
                        let recs =
                            tftrail_index::read_records(&st.log, cp, &idx).map_err(index_err)?;
                        Ok(open
                            .into_iter()
                            .zip(recs)
                            .map(|(e, (_, r))| {
                                (e.name, e.index, e.time_ns.unwrap_or(0), who_of(&r.actor))
                            })
                            .collect::<Vec<_>>())
                    })
                })
                .await?;
            for (name, index, time_ns, who) in runs {
                be.note_run(super::RunEvent::Opened(name, who), index, time_ns);
            }
            Ok::<(), ApiError>(())
        })
        .await?;
    let mut g = be.slot(name).lock_owned().await;
    if !g.loaded {
        let n = name.to_string();
        *g = st.blocking(move |st| load(st, &n)).await?;
    }
    Ok(g)
}

/// `user@host` of an actor, when it says both.
pub(crate) fn who_of(a: &Actor) -> Option<String> {
    (!a.user.is_empty() && !a.host.is_empty()).then(|| format!("{}@{}", a.user, a.host))
}

/// A name's current version and lock, from its events in the index (the lock's details from
/// its record, read through the log).
fn load(st: &AppState, name: &str) -> Result<Slot, ApiError> {
    with_index(st, |ix, cp| {
        let mut slot = Slot {
            loaded: true,
            ..Default::default()
        };
        let mut lock_at = None;
        for e in ix.state_events(name).map_err(index_err)? {
            match e.event.as_str() {
                "write" => {
                    if let Some(sha256) = e.sha256 {
                        slot.current = Some(Current {
                            index: e.index,
                            sha256,
                            serial: e.serial.unwrap_or(0),
                            lineage: e.lineage.unwrap_or_default(),
                        });
                    }
                }
                "delete" => slot.current = None,
                "lock" => lock_at = Some(e.index),
                "unlock" | "force_unlock" => lock_at = None,
                _ => {}
            }
        }
        if let Some(i) = lock_at {
            let recs = tftrail_index::read_records(&st.log, cp, &[i]).map_err(index_err)?;
            if let Some((_, r)) = recs.first() {
                if let Some(info) = r.payload.get("lock").and_then(LockInfo::from_record) {
                    slot.lock = Some(Held {
                        info,
                        index: i,
                        run: r
                            .payload
                            .pointer("/run/intent_index")
                            .and_then(Value::as_u64),
                    });
                }
            }
        }
        Ok(slot)
    })
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// `GET /state/{name}`: the current version's bytes, checked against their record.
async fn get(st: &Arc<AppState>, name: &str, parts: &Parts) -> Result<Response, ApiError> {
    caller(st, parts, name, |_| true, "read state").await?;
    let cur = loaded(st, name).await?.current.clone();
    let Some(cur) = cur else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let n = name.to_string();
    let bytes = st
        .blocking(move |st| st.tfstate.get(&n, &cur.sha256, cur.index))
        .await?;
    let md5 = base64::engine::general_purpose::STANDARD.encode(md5_of(&bytes));
    let mut r = json_response(StatusCode::OK, bytes);
    if let Ok(v) = HeaderValue::from_str(&md5) {
        r.headers_mut().insert("content-md5", v);
    }
    Ok(r)
}

fn md5_of(b: &[u8]) -> [u8; 16] {
    use md5::Digest as _;
    md5::Md5::digest(b).into()
}

/// A `Content-MD5` header, when sent, must be the body's.
fn check_md5(h: &HeaderMap, body: &[u8]) -> Result<(), ApiError> {
    let Some(v) = h.get("content-md5") else {
        return Ok(());
    };
    let want = base64::engine::general_purpose::STANDARD
        .decode(v.as_bytes())
        .ok()
        .filter(|w| w.len() == 16)
        .ok_or_else(|| {
            ApiError::bad_request("the Content-MD5 header is not the base64 of a 16-byte MD5")
        })?;
    let got = md5_of(body);
    if want != got {
        let b64 = base64::engine::general_purpose::STANDARD;
        return Err(ApiError::bad_request(format!(
            "the body's MD5 is {}, but Content-MD5 says {}: the state was damaged on the way; nothing was written",
            b64.encode(got),
            b64.encode(&want)
        )));
    }
    Ok(())
}

/// Why a lock stops a write or delete: the status, the holder to name, the reason.
type LockConflict = (StatusCode, Option<LockInfo>, String);

/// What stops a write or delete under the lock state `g`, if anything.
fn lock_check(g: &Slot, name: &str, id: Option<&str>) -> Option<LockConflict> {
    let id = id.filter(|s| !s.is_empty());
    match (&g.lock, id) {
        (Some(h), None) => Some((
            StatusCode::LOCKED,
            Some(h.info.clone()),
            format!(
                "state {name} is locked by {} ({}, lock {}); a write must carry ?ID= of the lock",
                h.info.who, h.info.operation, h.info.id
            ),
        )),
        (Some(h), Some(id)) if id != h.info.id => Some((
            StatusCode::CONFLICT,
            Some(h.info.clone()),
            format!(
                "state {name} is locked by {} with lock {}, not {id}",
                h.info.who, h.info.id
            ),
        )),
        (None, Some(id)) => Some((
            StatusCode::CONFLICT,
            None,
            format!(
                "state {name} is not locked, so lock {id} is not held (it was released or force-unlocked); nothing was written"
            ),
        )),
        _ => None,
    }
}

/// Why a new version conflicts with the current one, if it does.
fn version_conflict(name: &str, cur: &Current, lineage: &str, serial: u64) -> Option<String> {
    if lineage != cur.lineage {
        Some(format!(
            "state {name}: lineage {lineage} is not the current state's ({}): this is another state; an admin can replace it with ?force=true",
            cur.lineage
        ))
    } else if serial < cur.serial {
        Some(format!(
            "state {name}: serial {serial} is older than the current serial {}; an admin can roll back with ?force=true",
            cur.serial
        ))
    } else if serial == cur.serial {
        Some(format!(
            "state {name}: serial {serial} is the current serial but the content differs (a changed state needs a higher serial)"
        ))
    } else {
        None
    }
}

/// Appends a record of the state backend; its index.
async fn record(
    st: &Arc<AppState>,
    kind: &'static str,
    who: &Principal,
    lock: Option<&LockInfo>,
    payload: Value,
) -> Result<u64, ApiError> {
    record_with(st, kind, who, lock, payload, Vec::new()).await
}

/// [`record`] with blobs of its own (`(name, bytes)`, stored before the record).
async fn record_with(
    st: &Arc<AppState>,
    kind: &'static str,
    who: &Principal,
    lock: Option<&LockInfo>,
    payload: Value,
    extra: Vec<(String, Vec<u8>)>,
) -> Result<u64, ApiError> {
    let (user, host) = lock.map(LockInfo::user_host).unwrap_or_default();
    let actor = Actor {
        user,
        host,
        ci: None,
        authenticated: Some(who.authenticated.clone()),
    };
    let entry = st
        .blocking(move |st| {
            let (entry, blobs) = fit(kind, actor, payload, extra)?;
            if !blobs.is_empty() {
                st.log.store().create_all(&blobs)?;
            }
            Ok(entry)
        })
        .await?;
    let landed = st
        .seq
        .append(vec![entry])
        .await
        .map_err(ApiError::unavailable)?;
    Ok(landed.first)
}

/// The record's entry within [`INLINE_BUDGET`], moving its state diff to a blob when larger;
/// the blobs to store first.
fn fit(
    kind: &str,
    actor: Actor,
    mut payload: Value,
    extra: Vec<(String, Vec<u8>)>,
) -> Result<(Vec<u8>, Vec<NewObject>), ApiError> {
    let time = now_utc();
    let build = |p: &Value, blobs: Vec<BlobRef>| {
        Record::new(kind, &time, actor.clone(), p.clone(), blobs)
            .and_then(|r| r.to_entry())
            .map_err(|e| ApiError::internal(format!("cannot build the {kind} record: {e}")))
    };
    let mut refs = Vec::new();
    let mut objects = Vec::new();
    for (name, data) in extra {
        let sha256 = hex::encode(Sha256::digest(&data));
        refs.push(BlobRef {
            name,
            sha256: sha256.clone(),
            size: data.len() as u64,
        });
        objects.push(NewObject::new(blob_path(&sha256), data));
    }
    // Too large for the budget, or even for an entry (a 64 KiB diff): the diff moves out.
    if let Ok(entry) = build(&payload, refs.clone()) {
        if entry.len() <= INLINE_BUDGET {
            return Ok((entry, objects));
        }
    }
    let envelope = build(&json!({}), refs.clone())?.len();
    // Room for the blob reference the record gains.
    let fits =
        |p: &Value| serde_json::to_vec(p).is_ok_and(|b| envelope + b.len() + 200 <= INLINE_BUDGET);
    let moved = tftrail_index::deflate(&mut payload, &fits);
    for (name, data) in moved {
        let sha256 = hex::encode(Sha256::digest(&data));
        refs.push(BlobRef {
            name,
            sha256: sha256.clone(),
            size: data.len() as u64,
        });
        objects.push(NewObject::new(blob_path(&sha256), data));
    }
    Ok((build(&payload, refs)?, objects))
}

/// Records a refused write, delete or unlock and answers it: the holder's lock info when a
/// lock is the reason (what Terraform and OpenTofu read), else a JSON error.
async fn refused(
    st: &Arc<AppState>,
    who: &Principal,
    name: &str,
    operation: &str,
    (status, holder, reason): LockConflict,
    sent: Option<Value>,
) -> Result<Response, ApiError> {
    let payload = json!({
        "state": name,
        "operation": operation,
        "status": status.as_u16(),
        "reason": reason,
        "lock": holder.as_ref().map(LockInfo::to_record),
        "sent": sent,
    });
    record(st, "terraform.state.refused", who, holder.as_ref(), payload).await?;
    Ok(match holder {
        Some(h) => json_response(status, h.to_json()),
        None => ApiError::new(status, reason).into_response(),
    })
}

/// The run a write or delete belongs to: the lock's, when a lock is held (a lock taken outside
/// a run keeps its writes outside too), else the run open on the name.
fn link(st: &AppState, g: &Slot, name: &str) -> Value {
    match &g.lock {
        Some(h) => match h.run {
            Some(i) => json!({"intent_index": i, "matched_by": "lock"}),
            None => Value::Null,
        },
        None => match st.tfstate.open_run(name, now_ns(), None) {
            Some(i) => json!({"intent_index": i, "matched_by": "workspace"}),
            None => Value::Null,
        },
    }
}

/// Reads and parses the current version (for the diff), checked against its record.
async fn current_snapshot(
    st: &Arc<AppState>,
    name: &str,
    cur: &Current,
) -> Result<StateSnapshot, ApiError> {
    let (n, c) = (name.to_string(), cur.clone());
    st.blocking(move |st| {
        let bytes = st.tfstate.get(&n, &c.sha256, c.index)?;
        StateSnapshot::from_state_json(&bytes).map_err(|e| {
            ApiError::internal(format!(
                "state {n}: the version recorded at index {} is not a readable state: {e}",
                c.index
            ))
        })
    })
    .await
}

/// `POST /state/{name}`: a new version.
async fn write(
    st: &Arc<AppState>,
    name: &str,
    q: &StateQuery,
    parts: &Parts,
    body: Body,
) -> Result<Response, ApiError> {
    let force = q.forced()?;
    let who = if force {
        caller(
            st,
            parts,
            name,
            |r| r.allows(Need::Admin),
            "force a state write",
        )
        .await?
    } else {
        caller(st, parts, name, writer, "write state").await?
    };
    let bytes = read_body(body, st.config.limits.max_state_bytes, "state").await?;
    check_md5(&parts.headers, &bytes)?;
    let snap = StateSnapshot::from_state_json(&bytes).map_err(|e| {
        ApiError::bad_request(format!(
            "state {name}: the body is not a Terraform state: {e}"
        ))
    })?;
    let (Some(lineage), Some(serial)) = (snap.lineage().map(String::from), snap.serial()) else {
        return Err(ApiError::bad_request(format!(
            "state {name}: the body has no lineage or no serial; a Terraform state (version 4) has both"
        )));
    };
    let mut g = loaded(st, name).await?;
    if let Some(c) = lock_check(&g, name, q.id.as_deref()) {
        return refused(st, &who, name, "write", c, Some(snap.fingerprint())).await;
    }
    let mut forced = false;
    if let Some(cur) = &g.current {
        if cur.sha256 == snap.sha256() {
            // The same bytes again (a retry): nothing changes.
            return Ok(
                Json(json!({"index": cur.index, "serial": cur.serial, "unchanged": true}))
                    .into_response(),
            );
        }
        if let Some(why) = version_conflict(name, cur, &lineage, serial) {
            if !force {
                let holder = None;
                return refused(
                    st,
                    &who,
                    name,
                    "write",
                    (StatusCode::CONFLICT, holder, why),
                    Some(snap.fingerprint()),
                )
                .await;
            }
            forced = true;
        }
    }
    let before = match &g.current {
        Some(cur) => Some(current_snapshot(st, name, cur).await?),
        None => None,
    };
    let (diff, full) = tftrail_terraform::values::fit_diff(
        tftrail_terraform::diff_values(before.as_ref(), Some(&snap)),
        None,
    );
    let sha256 = snap.sha256().to_string();
    {
        let (n, s) = (name.to_string(), sha256.clone());
        st.blocking(move |st| st.tfstate.put(&n, &s, bytes)).await?;
    }
    let run = link(st, &g, name);
    let lock = g.lock.as_ref().map(|h| h.info.clone());
    let payload = json!({
        "state": name,
        "lock": lock.as_ref().map(LockInfo::to_record),
        "before": before.as_ref().map_or(json!({"present": false}), StateSnapshot::fingerprint),
        "after": snap.fingerprint(),
        "state_diff": diff,
        "forced": forced,
        "out_of_band": run.is_null(),
        "run": run,
    });
    let index = record_with(
        st,
        "terraform.state.write",
        &who,
        lock.as_ref(),
        payload,
        full.into_iter().collect(),
    )
    .await?;
    g.current = Some(Current {
        index,
        sha256,
        serial,
        lineage,
    });
    Ok(Json(json!({"index": index, "serial": serial})).into_response())
}

/// `DELETE /state/{name}`: no state from now on (every version stays in the state store).
async fn delete(
    st: &Arc<AppState>,
    name: &str,
    q: &StateQuery,
    parts: &Parts,
) -> Result<Response, ApiError> {
    let who = caller(st, parts, name, writer, "delete state").await?;
    let mut g = loaded(st, name).await?;
    if let Some(c) = lock_check(&g, name, q.id.as_deref()) {
        return refused(st, &who, name, "delete", c, None).await;
    }
    let Some(cur) = g.current.clone() else {
        return Ok(Json(json!({"deleted": false, "reason": "there is no state"})).into_response());
    };
    let before = current_snapshot(st, name, &cur).await?;
    let (diff, full) = tftrail_terraform::values::fit_diff(
        tftrail_terraform::diff_values(Some(&before), None),
        None,
    );
    let run = link(st, &g, name);
    let lock = g.lock.as_ref().map(|h| h.info.clone());
    let payload = json!({
        "state": name,
        "lock": lock.as_ref().map(LockInfo::to_record),
        "before": before.fingerprint(),
        "after": {"present": false},
        "state_diff": diff,
        "out_of_band": run.is_null(),
        "run": run,
    });
    let index = record_with(
        st,
        "terraform.state.delete",
        &who,
        lock.as_ref(),
        payload,
        full.into_iter().collect(),
    )
    .await?;
    g.current = None;
    Ok(Json(json!({"deleted": true, "index": index})).into_response())
}

async fn lock_body(body: Body) -> Result<LockInfo, ApiError> {
    let bytes = read_body(body, MAX_LOCK_BODY, "lock info").await?;
    LockInfo::parse(&bytes).map_err(ApiError::bad_request)
}

/// `LOCK /state/{name}`.
async fn lock(
    st: &Arc<AppState>,
    name: &str,
    parts: &Parts,
    body: Body,
) -> Result<Response, ApiError> {
    let who = caller(st, parts, name, writer, "lock state").await?;
    let info = lock_body(body).await?;
    if info.id.is_empty() {
        return Err(ApiError::bad_request(
            "the lock info has no ID (Terraform sends {\"ID\": …, \"Operation\": …, \"Who\": …})",
        ));
    }
    let mut g = loaded(st, name).await?;
    if let Some(h) = &g.lock {
        // The holder asking again succeeds; anyone else learns who holds it.
        let status = if h.info.id == info.id {
            StatusCode::OK
        } else {
            StatusCode::LOCKED
        };
        return Ok(json_response(status, h.info.to_json()));
    }
    let (user, host) = info.user_host();
    let who_str = (!user.is_empty()).then(|| format!("{user}@{host}"));
    let run = st.tfstate.open_run(name, now_ns(), who_str.as_deref());
    let payload = json!({
        "state": name,
        "lock": info.to_record(),
        "run": run.map(|i| json!({"intent_index": i})),
    });
    let index = record(st, "terraform.state.lock", &who, Some(&info), payload).await?;
    let reply = info.to_json();
    g.lock = Some(Held { info, index, run });
    Ok(json_response(StatusCode::OK, reply))
}

/// `UNLOCK /state/{name}`: a release by the holder, or `force-unlock`.
async fn unlock(
    st: &Arc<AppState>,
    name: &str,
    parts: &Parts,
    body: Body,
) -> Result<Response, ApiError> {
    let who = caller(st, parts, name, writer, "unlock state").await?;
    let info = lock_body(body).await?;
    let mut g = loaded(st, name).await?;
    let Some(h) = g.lock.clone() else {
        return Ok(
            Json(json!({"unlocked": false, "reason": "the state is not locked"})).into_response(),
        );
    };
    match h.info.unlock_kind(&info) {
        Unlock::Release => {
            let payload = json!({"state": name, "lock": h.info.to_record(), "lock_index": h.index});
            record(st, "terraform.state.unlock", &who, Some(&h.info), payload).await?;
        }
        Unlock::Force => {
            let payload = json!({
                "state": name,
                "lock": h.info.to_record(),
                "lock_index": h.index,
                "requested_id": info.id,
            });
            record(st, "terraform.state.force_unlock", &who, None, payload).await?;
        }
        Unlock::Mismatch => {
            let why = format!(
                "state {name} is locked by {} with lock {}, not {}",
                h.info.who, h.info.id, info.id
            );
            return refused(
                st,
                &who,
                name,
                "unlock",
                (StatusCode::CONFLICT, Some(h.info), why),
                None,
            )
            .await;
        }
    }
    g.lock = None;
    Ok(Json(json!({"unlocked": true})).into_response())
}

fn writer_or_admin(r: Role) -> bool {
    matches!(r, Role::Writer | Role::Admin)
}

/// `GET /v1/state`: every state name with its current version and lock.
pub async fn v1_states(
    State(st): State<Arc<AppState>>,
    req: Request,
) -> Result<Response, ApiError> {
    let (parts, _) = req.into_parts();
    let (peer, path) = (peer_of(&parts), parts.uri.path().to_string());
    let p = st
        .identify(&parts.headers, peer, &parts.method, &path)
        .await?;
    if !writer_or_admin(p.role) {
        return Err(st.forbid(peer, &parts.method, &path, &p, "list states"));
    }
    let names = st
        .blocking(|st| with_index(st, |ix, _| ix.state_names().map_err(index_err)))
        .await?;
    let mut out = Vec::new();
    for n in names {
        let g = loaded(&st, &n).await?;
        out.push(json!({
            "name": n,
            "serial": g.current.as_ref().map(|c| c.serial),
            "lineage": g.current.as_ref().map(|c| c.lineage.clone()),
            "sha256": g.current.as_ref().map(|c| c.sha256.clone()),
            "index": g.current.as_ref().map(|c| c.index),
            "locked": g.lock.as_ref().map(|h| serde_json::to_value(&h.info).unwrap_or_default()),
        }));
    }
    Ok(Json(json!({ "states": out })).into_response())
}

/// `GET /v1/state/{name}/versions` and `GET /v1/state/{name}/versions/{sha256}`.
pub async fn v1_state(
    State(st): State<Arc<AppState>>,
    Path(rest): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let (parts, _) = req.into_parts();
    let (name, sha) = match rest.rsplit_once("/versions") {
        Some((n, "")) => (n.to_string(), None),
        Some((n, s)) if s.starts_with('/') => (n.to_string(), Some(s[1..].to_string())),
        _ => {
            return Err(ApiError::not_found(
                "use /v1/state/<name>/versions or /v1/state/<name>/versions/<sha256>",
            ))
        }
    };
    caller(&st, &parts, &name, writer_or_admin, "read state versions").await?;
    let n = name.clone();
    let versions = st
        .blocking(move |st| {
            with_index(st, |ix, cp| {
                let evs: Vec<_> = ix
                    .state_events(&n)
                    .map_err(index_err)?
                    .into_iter()
                    .filter(|e| e.event == "write" || e.event == "delete")
                    .collect();
                let idx: Vec<u64> = evs.iter().map(|e| e.index).collect();
                let recs = tftrail_index::read_records(&st.log, cp, &idx).map_err(index_err)?;
                Ok(recs
                    .into_iter()
                    .map(|(i, r)| {
                        let p = &r.payload;
                        let event = r.kind.rsplit('.').next().unwrap_or("").to_string();
                        json!({
                            "index": i,
                            "time": r.time,
                            "event": event,
                            "serial": p.pointer("/after/serial"),
                            "lineage": p.pointer("/after/lineage"),
                            "sha256": p.pointer("/after/sha256"),
                            "size": p.pointer("/after/size"),
                            "by": r.actor.authenticated,
                            "forced": p.get("forced").and_then(Value::as_bool).unwrap_or(false),
                        })
                    })
                    .collect::<Vec<_>>())
            })
        })
        .await?;
    let Some(sha) = sha else {
        return Ok(Json(json!({"name": name, "versions": versions})).into_response());
    };
    let found = versions
        .iter()
        .find(|v| v["sha256"].as_str() == Some(sha.as_str()))
        .and_then(|v| v["index"].as_u64());
    let Some(index) = found else {
        return Err(ApiError::not_found(format!(
            "state {name} has no recorded version with sha256 {sha}"
        )));
    };
    let bytes = st
        .blocking(move |st| st.tfstate.get(&name, &sha, index))
        .await?;
    Ok(json_response(StatusCode::OK, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cur() -> Current {
        Current {
            index: 7,
            sha256: "ab".into(),
            serial: 5,
            lineage: "L".into(),
        }
    }

    #[test]
    fn version_conflicts() {
        assert!(version_conflict("p", &cur(), "L", 6).is_none());
        assert!(version_conflict("p", &cur(), "M", 6)
            .unwrap()
            .contains("lineage M"));
        assert!(version_conflict("p", &cur(), "L", 4)
            .unwrap()
            .contains("older than the current serial 5"));
        assert!(version_conflict("p", &cur(), "L", 5)
            .unwrap()
            .contains("content differs"));
    }

    #[test]
    fn lock_checks() {
        let mut g = Slot::default();
        assert!(lock_check(&g, "p", None).is_none());
        assert!(lock_check(&g, "p", Some("")).is_none());
        assert_eq!(
            lock_check(&g, "p", Some("x")).unwrap().0,
            StatusCode::CONFLICT
        );
        g.lock = Some(Held {
            info: LockInfo {
                id: "L1".into(),
                who: "a@b".into(),
                ..Default::default()
            },
            index: 3,
            run: None,
        });
        assert!(lock_check(&g, "p", Some("L1")).is_none());
        let (s, holder, why) = lock_check(&g, "p", None).unwrap();
        assert_eq!((s, holder.unwrap().id.as_str()), (StatusCode::LOCKED, "L1"));
        assert!(why.contains("?ID="), "{why}");
        assert_eq!(
            lock_check(&g, "p", Some("L2")).unwrap().0,
            StatusCode::CONFLICT
        );
    }

    #[test]
    fn content_md5() {
        let body = b"{\"version\":4}";
        let good = base64::engine::general_purpose::STANDARD.encode(md5_of(body));
        let mut h = HeaderMap::new();
        assert!(check_md5(&h, body).is_ok());
        h.insert("content-md5", good.parse().unwrap());
        assert!(check_md5(&h, body).is_ok());
        assert!(check_md5(&h, b"{}")
            .unwrap_err()
            .message
            .contains("damaged"));
        h.insert("content-md5", "not base64!".parse().unwrap());
        assert!(check_md5(&h, body).unwrap_err().message.contains("16-byte"));
    }
}
