//! The C2SP tlog-tiles read paths, served from the store byte for byte under `/log/`, and the
//! listing a client needs to check batch claims (`/v1/objects`). Nothing here is trusted by
//! a client: it checks every object against the signed checkpoint.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::error::ApiError;
use crate::state::{AppState, Reader};

/// Cache-Control of objects that never change (tiles, partial tiles of a width, bundles,
/// claims, blobs).
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// Whether `path` is one of the log's objects that the server serves.
fn servable(path: &str) -> bool {
    let ok_chars = path
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'/' | b'.' | b'_' | b'-'));
    ok_chars
        && !path
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
        && (path == "checkpoint"
            || path.starts_with("tile/")
            || path.starts_with("tftrail/batches/")
            || path.starts_with("tftrail/blobs/sha256/"))
}

/// `GET /log/<path>`.
pub async fn get(
    State(st): State<Arc<AppState>>,
    _: Reader,
    Path(path): Path<String>,
) -> Result<Response, ApiError> {
    if !servable(&path) {
        return Err(ApiError::not_found(format!(
            "/log/{path} is not a log object"
        )));
    }
    let p = path.clone();
    let data = st
        .blocking(move |st| {
            if p == "checkpoint" {
                Ok(st.log.store().get_checkpoint()?.map(|(b, _)| b))
            } else {
                Ok(st.log.store().get(&p)?)
            }
        })
        .await?
        .ok_or_else(|| ApiError::not_found(format!("/log/{path} does not exist")))?;
    let (ctype, cache) = if path == "checkpoint" {
        ("text/plain; charset=utf-8", "no-cache")
    } else {
        ("application/octet-stream", IMMUTABLE)
    };
    let met = st
        .witnesses
        .as_ref()
        .filter(|_| path == "checkpoint")
        .map(|w| w.policy().check(&data).satisfied);
    let mut resp = (
        [
            (header::CONTENT_TYPE, ctype),
            (header::CACHE_CONTROL, cache),
        ],
        data,
    )
        .into_response();
    if let Some(met) = met {
        resp.headers_mut().insert(
            crate::witnesses::QUORUM_HEADER,
            header::HeaderValue::from_static(crate::witnesses::quorum_word(met)),
        );
    }
    Ok(resp)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    prefix: String,
}

/// `GET /v1/objects?prefix=P`.
pub async fn list(
    State(st): State<Arc<AppState>>,
    _: Reader,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let listable = ["tile/", "tftrail/batches/", "tftrail/blobs/"]
        .iter()
        .any(|p| q.prefix.starts_with(p))
        && (q.prefix.ends_with('/') && servable(&format!("{}x", q.prefix)) || servable(&q.prefix));
    if !listable {
        return Err(ApiError::bad_request(format!(
            "cannot list {:?}: prefixes start with tile/, tftrail/batches/ or tftrail/blobs/",
            q.prefix
        )));
    }
    let paths = st
        .blocking(move |st| Ok(st.log.store().list(&q.prefix)?))
        .await?;
    Ok(axum::Json(serde_json::json!({ "paths": paths })).into_response())
}

#[cfg(test)]
mod tests {
    use super::servable;

    #[test]
    fn only_log_objects_are_served() {
        for ok in [
            "checkpoint",
            "tile/0/000",
            "tile/entries/x001/234.p/7",
            "tftrail/batches/0000000001",
            "tftrail/blobs/sha256/ab12",
        ] {
            assert!(servable(ok), "{ok}");
        }
        for bad in [
            "",
            "checkpoint.lock",
            "tile/../checkpoint",
            "tile//0",
            ".tmp/x",
            "tftrail/other",
            "tile/0/000%2f..",
            "tile/0/./000",
        ] {
            assert!(!servable(bad), "{bad}");
        }
        // Listing prefixes ("tile/") are checked with a name after them.
        assert!(servable("tile/x") && !servable("tile/../x"));
    }
}
