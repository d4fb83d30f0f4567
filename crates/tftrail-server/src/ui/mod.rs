//! The web UI: server-rendered pages at `/` over the same log and index as the `/v1/` API.
//!
//! Every record a page shows is read through the log, authenticated against the signed
//! checkpoint (the index only picks which); an integrity failure is shown as such, never the
//! content. Every value is escaped by the templates (maud). No CDN, no inline script: the CSS
//! and the little JavaScript are embedded in the binary and served under `/assets/` with long
//! cache lifetimes, and every page carries a Content-Security-Policy allowing only them.
//!
//! - `session.rs`: login sessions and CSRF tokens
//! - `pages.rs`: the timeline, record, resource and status pages, receipts and blobs
//! - `verify.rs`: the server verifying its own log (at start, then incrementally, or on an
//!   admin's demand) for the status page

mod pages;
pub mod session;
pub mod verify;

use std::sync::{Arc, LazyLock};

use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup, DOCTYPE};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::auth::{Need, Principal, Role};
use crate::state::{peer_of, AppState};
use session::{Session, Sessions, LOGIN_CSRF_COOKIE, SESSION_COOKIE};

/// What the UI keeps besides the log: sessions and the last verification.
#[derive(Default)]
pub struct UiState {
    /// Login sessions.
    pub sessions: Sessions,
    /// The server's own verifications of its log.
    pub verifier: verify::Verifier,
}

const STYLE: &str = include_str!("assets/style.css");
const SCRIPT: &str = include_str!("assets/app.js");

/// The assets' URLs carry a hash of their bytes, so they can be cached for a year.
static ASSETS: LazyLock<Vec<(String, &'static str, &'static str)>> = LazyLock::new(|| {
    [
        ("style", "css", STYLE, "text/css; charset=utf-8"),
        ("app", "js", SCRIPT, "text/javascript; charset=utf-8"),
    ]
    .into_iter()
    .map(|(stem, ext, body, ct)| {
        let h = hex::encode(&Sha256::digest(body.as_bytes())[..6]);
        (format!("{stem}.{h}.{ext}"), body, ct)
    })
    .collect()
});

fn asset_url(stem: &str) -> String {
    let name = ASSETS
        .iter()
        .find(|(n, _, _)| n.starts_with(&format!("{stem}.")))
        .map(|(n, _, _)| n.as_str())
        .unwrap_or(stem);
    format!("/assets/{name}")
}

/// The UI's routes (docs/API.md, "Web UI").
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(pages::timeline))
        .route("/records/{n}", get(pages::record))
        .route("/records/{n}/receipt", get(pages::receipt))
        .route("/records/{n}/blobs/{sha}", get(pages::blob))
        .route("/resources", get(pages::resource_query))
        .route("/resources/{*addr}", get(pages::resource))
        .route("/status", get(pages::status))
        .route("/status/verify", post(pages::verify_now))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/assets/{name}", get(asset))
        .layer(axum::middleware::from_fn(security_headers))
}

/// The Content-Security-Policy of every UI answer: only this server's own CSS and script,
/// no framing, forms only to this server.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                       form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

async fn security_headers(req: Request, next: Next) -> Response {
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    h.insert("content-security-policy", HeaderValue::from_static(CSP));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    // same-origin: this server's own forms keep their Referer (checked on POST).
    h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    r
}

async fn asset(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, body, ct)) => (
            [
                (header::CONTENT_TYPE, *ct),
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            ],
            *body,
        )
            .into_response(),
        None => error_page(None, StatusCode::NOT_FOUND, "Not found", "No such asset."),
    }
}

/// Who is looking at a page: a session's principal, a bearer credential's, or nobody (with
/// `--public-read`).
pub struct Viewer {
    /// The authenticated caller, if any.
    pub who: Option<Principal>,
    /// The session, when the caller logged in.
    pub session: Option<Session>,
}

impl Viewer {
    fn is_admin(&self) -> bool {
        self.who.as_ref().is_some_and(|p| p.role == Role::Admin)
    }
}

fn redirect(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_string())]).into_response()
}

fn login_redirect(parts: &axum::http::request::Parts, why: Option<&str>) -> Response {
    let next = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut to = format!("/login?next={}", urlencode(next));
    if let Some(w) = why {
        to.push_str(&format!("&why={w}"));
    }
    redirect(&to)
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn secure(st: &AppState) -> bool {
    st.config.tls_cert.is_some()
}

impl axum::extract::FromRequestParts<Arc<AppState>> for Viewer {
    type Rejection = Response;
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        st: &Arc<AppState>,
    ) -> Result<Self, Response> {
        let peer = peer_of(parts);
        if let Some(c) = session::cookie(&parts.headers, SESSION_COOKIE) {
            if let Some(s) = st.ui.sessions.get(&c) {
                // The token is checked again on every request: revoked or expired, the
                // session ends.
                let denial = match st.auth.token_by_hash(&s.token_hash) {
                    Ok(p) if p.role.allows(Need::Read) => {
                        return Ok(Viewer {
                            who: Some(p),
                            session: Some(s),
                        })
                    }
                    Ok(p) => crate::auth::Denial {
                        status: 403,
                        reason: format!(
                            "{} has role {}, which cannot read the log",
                            p.label,
                            p.role.as_str()
                        ),
                        credential: Some(p.label),
                    },
                    Err(d) => d,
                };
                st.ui.sessions.close(&c);
                let _ = st.refuse(peer, &parts.method, parts.uri.path(), denial);
                return Err(login_redirect(parts, Some("ended")));
            }
        }
        if parts.headers.contains_key(header::AUTHORIZATION) {
            return match st
                .require(
                    &parts.headers,
                    peer,
                    &parts.method,
                    parts.uri.path(),
                    Need::Read,
                )
                .await
            {
                Ok(who) => Ok(Viewer { who, session: None }),
                Err(e) => Err(error_page(None, e.status, "Refused", &e.message)),
            };
        }
        if st.config.public_read {
            return Ok(Viewer {
                who: None,
                session: None,
            });
        }
        Err(login_redirect(parts, None))
    }
}

/// The frame of every page.
fn layout(title: &str, v: Option<&Viewer>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · tftrail" }
                link rel="stylesheet" href=(asset_url("style"));
                script src=(asset_url("app")) defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/" { "tftrail" }
                    nav aria-label="Main" {
                        ul {
                            li { a href="/" { "Timeline" } }
                            li { a href="/resources" { "Resources" } }
                            li { a href="/status" { "Status" } }
                        }
                    }
                    div.who {
                        @match v {
                            Some(Viewer { who: Some(p), session: Some(s) }) => {
                                span { "Signed in as " strong { (p.label) } " (" (p.role.as_str()) ")" }
                                form method="post" action="/logout" {
                                    input type="hidden" name="csrf" value=(s.csrf);
                                    button type="submit" { "Log out" }
                                }
                            }
                            Some(Viewer { who: Some(p), session: None }) => {
                                span { "Authenticated as " strong { (p.label) } }
                            }
                            Some(Viewer { who: None, .. }) => {
                                span { "Public read" }
                                a href="/login" { "Log in" }
                            }
                            None => {}
                        }
                    }
                }
                main #main tabindex="-1" { (body) }
                footer { p { "Everything shown is read from records authenticated against the log's signed checkpoint." } }
            }
        }
    }
}

fn html_response(status: StatusCode, m: Markup) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        m.into_string(),
    )
        .into_response()
}

/// An error as a page.
pub fn error_page(v: Option<&Viewer>, status: StatusCode, title: &str, message: &str) -> Response {
    html_response(
        status,
        layout(
            title,
            v,
            html! {
                h1 { (title) }
                p.error role="alert" { (message) }
            },
        ),
    )
}

#[derive(Deserialize, Default)]
struct LoginQuery {
    next: Option<String>,
    why: Option<String>,
}

/// Only a path of this server (`/…`, not `//host`) is a place to go after login.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/\\")
                && !n.chars().any(char::is_control) =>
        {
            n.to_string()
        }
        _ => "/".to_string(),
    }
}

fn login_form(
    next: &str,
    csrf: &str,
    error: Option<&str>,
    notice: Option<&str>,
    public: bool,
) -> Markup {
    layout(
        "Log in",
        None,
        html! {
            h1 { "Log in" }
            @if let Some(n) = notice { p.notice role="status" { (n) } }
            @if let Some(e) = error { p.error #login-error role="alert" { (e) } }
            @if public { p { "This server's log is public: " a href="/" { "read it without logging in" } "." } }
            form.login method="post" action="/login" {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="next" value=(next);
                label for="token" { "Token" }
                input #token type="password" name="token" autocomplete="off" required
                    aria-describedby="token-help" spellcheck="false";
                p #token-help .help { "A tftrail token (reader, auditor, admin or writer) from " code { "tftrail token create" } "." }
                button type="submit" { "Log in" }
            }
        },
    )
}

/// The login page, with a fresh pre-session CSRF token in a cookie and the form.
fn login_response(
    st: &AppState,
    status: StatusCode,
    next: &str,
    error: Option<&str>,
    notice: Option<&str>,
) -> Response {
    let csrf = session::random_token();
    let mut r = html_response(
        status,
        login_form(next, &csrf, error, notice, st.config.public_read),
    );
    if let Ok(v) = HeaderValue::from_str(&session::set_cookie(
        LOGIN_CSRF_COOKIE,
        &csrf,
        secure(st),
        Some(3600),
    )) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

async fn login_page(State(st): State<Arc<AppState>>, Query(q): Query<LoginQuery>) -> Response {
    let notice = match q.why.as_deref() {
        Some("ended") => Some("Your session ended: its token is no longer valid. Log in again."),
        Some("out") => Some("You are logged out."),
        _ => None,
    };
    login_response(
        &st,
        StatusCode::OK,
        &safe_next(q.next.as_deref()),
        None,
        notice,
    )
}

struct LoginForm {
    token: String,
    csrf: String,
    next: Option<String>,
}

/// Refuses a POST whose origin or CSRF token is wrong (403, recorded).
fn csrf_refusal(
    st: &AppState,
    parts: (&axum::http::Method, &str, std::net::SocketAddr),
    why: String,
) -> Response {
    let (method, path, peer) = parts;
    let _ = st.refuse(
        peer,
        method,
        path,
        crate::auth::Denial {
            status: 403,
            reason: format!("CSRF check failed: {why}"),
            credential: None,
        },
    );
    error_page(
        None,
        StatusCode::FORBIDDEN,
        "Refused",
        &format!("The form was refused: {why}. Reload the page and try again."),
    )
}

fn check_post(
    headers: &HeaderMap,
    secure: bool,
    expected: Option<&str>,
    sent: &str,
) -> Result<(), String> {
    session::same_origin(headers, secure)?;
    match expected {
        Some(e) if !sent.is_empty() && session::secrets_equal(e, sent) => Ok(()),
        Some(_) => Err("the form's CSRF token is missing or wrong".into()),
        None => Err("no CSRF cookie came with the form (are cookies enabled?)".into()),
    }
}

async fn login(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let peer = peer_of(&parts);
    let Ok(bytes) = crate::api::read_body(body, 64 * 1024, "login form").await else {
        return error_page(
            None,
            StatusCode::PAYLOAD_TOO_LARGE,
            "Refused",
            "The login form is too large.",
        );
    };
    let Ok(f) = serde_urlencoded_form(&bytes) else {
        return error_page(
            None,
            StatusCode::BAD_REQUEST,
            "Bad request",
            "The login form is not a form.",
        );
    };
    let expected = session::cookie(&parts.headers, LOGIN_CSRF_COOKIE);
    if let Err(why) = check_post(&parts.headers, secure(&st), expected.as_deref(), &f.csrf) {
        return csrf_refusal(&st, (&parts.method, parts.uri.path(), peer), why);
    }
    let next = safe_next(f.next.as_deref());
    let token = f.token.trim();
    let refused = |st: &AppState, d: crate::auth::Denial| {
        let e = st.refuse(peer, &parts.method, parts.uri.path(), d);
        login_response(
            st,
            StatusCode::UNAUTHORIZED,
            &next,
            Some(&format!("Login refused: {}.", e.message)),
            None,
        )
    };
    if token.is_empty() {
        return refused(
            &st,
            crate::auth::Denial {
                status: 401,
                reason: "no token given".into(),
                credential: None,
            },
        );
    }
    if !crate::tokens::is_well_formed(token) {
        return refused(
            &st,
            crate::auth::Denial {
                status: 401,
                reason: format!(
                    "that is not a tftrail token (expected {} and 43 base64url characters)",
                    crate::tokens::TOKEN_PREFIX
                ),
                credential: None,
            },
        );
    }
    let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    match st.auth.token_by_hash(&hash) {
        Ok(p) if p.role.allows(Need::Read) => {
            let cookie = st.ui.sessions.open(hash);
            let mut r = redirect(&next);
            let h = r.headers_mut();
            for c in [
                session::set_cookie(SESSION_COOKIE, &cookie, secure(&st), None),
                session::set_cookie(LOGIN_CSRF_COOKIE, "", secure(&st), Some(0)),
            ] {
                if let Ok(v) = HeaderValue::from_str(&c) {
                    h.append(header::SET_COOKIE, v);
                }
            }
            r
        }
        Ok(p) => refused(
            &st,
            crate::auth::Denial {
                status: 403,
                reason: format!(
                    "{} has role {}, which cannot read the log",
                    p.label,
                    p.role.as_str()
                ),
                credential: Some(p.label),
            },
        ),
        Err(mut d) => {
            if d.credential.is_none() {
                d.credential = Some(format!("token:{}", crate::tokens::fingerprint(token)));
            }
            refused(&st, d)
        }
    }
}

fn serde_urlencoded_form(bytes: &[u8]) -> Result<LoginForm, ()> {
    let mut f = LoginForm {
        token: String::new(),
        csrf: String::new(),
        next: None,
    };
    for (k, v) in url::form_urlencoded::parse(bytes) {
        match k.as_ref() {
            "token" => f.token = v.into_owned(),
            "csrf" => f.csrf = v.into_owned(),
            "next" => f.next = Some(v.into_owned()),
            _ => {}
        }
    }
    Ok(f)
}

/// The `csrf` field of a posted form.
pub(crate) fn form_csrf(bytes: &[u8]) -> String {
    url::form_urlencoded::parse(bytes)
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

async fn logout(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let peer = peer_of(&parts);
    let bytes = crate::api::read_body(body, 16 * 1024, "form")
        .await
        .unwrap_or_default();
    let sent = form_csrf(&bytes);
    let cookie = session::cookie(&parts.headers, SESSION_COOKIE);
    let s = cookie.as_deref().and_then(|c| st.ui.sessions.get(c));
    let Some(s) = s else {
        return redirect("/login?why=out");
    };
    if let Err(why) = check_post(&parts.headers, secure(&st), Some(&s.csrf), &sent) {
        return csrf_refusal(&st, (&parts.method, parts.uri.path(), peer), why);
    }
    if let Some(c) = &cookie {
        st.ui.sessions.close(c);
    }
    let mut r = redirect("/login?why=out");
    if let Ok(v) = HeaderValue::from_str(&session::set_cookie(
        SESSION_COOKIE,
        "",
        secure(&st),
        Some(0),
    )) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

/// A JSON value as a page shows it: strings quoted, the redaction marker styled as redacted.
pub fn value(v: &serde_json::Value) -> Markup {
    match v {
        serde_json::Value::String(s) if s == tftrail_terraform::REDACTED => {
            html! { span.redacted title="sensitive: never recorded" { "(sensitive value)" } }
        }
        serde_json::Value::String(s) if s == pages::KNOWN_AFTER_APPLY => {
            html! { span.unknown { (s) } }
        }
        serde_json::Value::Null => html! { span.null { "null" } },
        serde_json::Value::String(s) => {
            html! { code { (serde_json::to_string(s).unwrap_or_default()) } }
        }
        other => {
            // Nested values may hold redacted leaves: they stay visible as the marker text.
            let text = serde_json::to_string(other).unwrap_or_default();
            if text.contains(tftrail_terraform::REDACTED) {
                html! { code { (text) } " " span.redacted { "(holds sensitive values)" } }
            } else {
                html! { code { (text) } }
            }
        }
    }
}
