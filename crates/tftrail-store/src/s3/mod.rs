//! Amazon S3 (and S3-compatible services): the administrative client used for object
//! versions and bucket configuration ([`admin`]) and the WORM check (`worm`, re-exported from
//! [`crate::worm`]). The data path is the shared object_store backend in `object`.

pub mod admin;
pub(crate) mod worm;

use crate::object::is_loopback_http;

/// Endpoint and region an S3 store talks to, shared with the administration client.
#[derive(Clone, Debug)]
pub(crate) struct S3Settings {
    /// Endpoint override (`AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`), path-style when set.
    pub endpoint: Option<String>,
    /// Region used for signing.
    pub region: String,
    /// Whether plain http is allowed.
    pub allow_http: bool,
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The S3 endpoint override from the environment, and whether it is a loopback http URL.
pub(crate) fn s3_settings_from_env() -> S3Settings {
    let endpoint = env_nonempty("AWS_ENDPOINT_URL_S3").or_else(|| env_nonempty("AWS_ENDPOINT_URL"));
    let region = env_nonempty("AWS_REGION")
        .or_else(|| env_nonempty("AWS_DEFAULT_REGION"))
        .unwrap_or_else(|| "us-east-1".to_string());
    let explicit = env_nonempty("AWS_ALLOW_HTTP").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let loopback_http = endpoint.as_deref().is_some_and(is_loopback_http);
    S3Settings {
        endpoint,
        region,
        allow_http: explicit || loopback_http,
    }
}
