//! Store locations as the user writes them: `s3://bucket/prefix`, `gs://bucket/prefix`,
//! `az://container/prefix` (or `azure://`), `file:///path` or a plain path; and tftrail
//! servers, `http(s)://host[:port][/base]`.

use std::fmt;
use std::path::PathBuf;

use crate::StoreError;

/// Which object storage service a location names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Cloud {
    /// Amazon S3 or an S3-compatible server (`s3://`).
    S3,
    /// Google Cloud Storage (`gs://`).
    Gcs,
    /// Azure Blob Storage (`az://`, `azure://`).
    Azure,
}

impl Cloud {
    /// The URL scheme tftrail prints for this cloud.
    pub fn scheme(self) -> &'static str {
        match self {
            Cloud::S3 => "s3",
            Cloud::Gcs => "gs",
            Cloud::Azure => "az",
        }
    }
}

/// A parsed store location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A local directory.
    Local(PathBuf),
    /// A bucket (S3, GCS) or container (Azure) and a key prefix inside it.
    Object {
        /// Which service.
        cloud: Cloud,
        /// Bucket or container name.
        bucket: String,
        /// Key prefix without leading or trailing `/`; empty for the bucket's root.
        prefix: String,
    },
    /// A tftrail server: `http(s)://host[:port][/base]`, normalised (lower-case scheme and
    /// host, no default port, no trailing `/`).
    Server(String),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Local(p) => write!(f, "{}", p.display()),
            Location::Server(url) => f.write_str(url),
            Location::Object {
                cloud,
                bucket,
                prefix,
            } if prefix.is_empty() => write!(f, "{}://{bucket}", cloud.scheme()),
            Location::Object {
                cloud,
                bucket,
                prefix,
            } => write!(f, "{}://{bucket}/{prefix}", cloud.scheme()),
        }
    }
}

fn bad(location: &str, reason: impl Into<String>) -> StoreError {
    StoreError::NotAStore {
        location: location.to_string(),
        reason: reason.into(),
    }
}

/// Checks that `prefix` is a usable key prefix: `/`-separated, no empty, `.` or `..` segment.
pub(crate) fn valid_key_path(path: &str) -> bool {
    !path.is_empty()
        && path
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != ".." && !c.chars().any(char::is_control))
}

impl Location {
    /// Parses a location. Bad URLs get an error that names the problem.
    pub fn parse(location: &str) -> Result<Location, StoreError> {
        if location.is_empty() {
            return Err(bad(location, "empty store location"));
        }
        let Some((scheme, rest)) = location.split_once("://") else {
            return Ok(Location::Local(PathBuf::from(location)));
        };
        let cloud = match scheme.to_ascii_lowercase().as_str() {
            "file" => {
                if rest.is_empty() || !rest.starts_with('/') {
                    return Err(bad(
                        location,
                        "a file:// URL needs an absolute path (file:///var/lib/tftrail)",
                    ));
                }
                return Ok(Location::Local(PathBuf::from(rest)));
            }
            "s3" | "s3a" => Cloud::S3,
            "gs" | "gcs" => Cloud::Gcs,
            "az" | "azure" | "abfs" => Cloud::Azure,
            "http" | "https" => return parse_server(location),
            other => {
                return Err(bad(
                    location,
                    format!(
                        "unsupported scheme {other:?}: use s3://, gs://, az://, file://, a path, \
                         or a tftrail server's https://"
                    ),
                ))
            }
        };
        if rest.contains(['?', '#']) {
            return Err(bad(
                location,
                "query strings and fragments are not supported",
            ));
        }
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let what = if cloud == Cloud::Azure {
            "container"
        } else {
            "bucket"
        };
        if bucket.is_empty() {
            return Err(bad(location, format!("missing {what} name")));
        }
        let bucket_ok = bucket.len() >= 3
            && bucket.len() <= 222
            && bucket
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-._".contains(c))
            && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
            && bucket.ends_with(|c: char| c.is_ascii_alphanumeric());
        if !bucket_ok {
            return Err(bad(
                location,
                format!(
                    "invalid {what} name {bucket:?}: 3 or more lower-case letters, digits, '-', '.' \
                     or '_', starting and ending with a letter or digit"
                ),
            ));
        }
        let prefix = prefix.trim_matches('/');
        if !prefix.is_empty() && !valid_key_path(prefix) {
            return Err(bad(
                location,
                format!("invalid prefix {prefix:?}: no empty, '.' or '..' path segments"),
            ));
        }
        Ok(Location::Object {
            cloud,
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        })
    }
}

/// A server URL: `http(s)://host[:port][/base]`, without credentials, query or fragment.
fn parse_server(location: &str) -> Result<Location, StoreError> {
    let u = url::Url::parse(location).map_err(|e| bad(location, format!("invalid URL: {e}")))?;
    if u.host_str().is_none_or(str::is_empty) {
        return Err(bad(location, "missing host name"));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(bad(
            location,
            "credentials do not go in the URL: put the token in TFTRAIL_TOKEN",
        ));
    }
    if u.query().is_some() || u.fragment().is_some() {
        return Err(bad(
            location,
            "query strings and fragments are not supported",
        ));
    }
    let path = u.path().trim_end_matches('/');
    if !path.is_empty() && !valid_key_path(path.trim_start_matches('/')) {
        return Err(bad(
            location,
            format!("invalid base path {path:?}: no empty, '.' or '..' path segments"),
        ));
    }
    let host = u.host_str().expect("checked");
    let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
    Ok(Location::Server(format!(
        "{}://{host}{port}{path}",
        u.scheme()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(cloud: Cloud, bucket: &str, prefix: &str) -> Location {
        Location::Object {
            cloud,
            bucket: bucket.into(),
            prefix: prefix.into(),
        }
    }

    #[test]
    fn parses_object_urls() {
        assert_eq!(
            Location::parse("s3://audit-bkt").unwrap(),
            obj(Cloud::S3, "audit-bkt", "")
        );
        assert_eq!(
            Location::parse("s3://audit-bkt/logs/prod/").unwrap(),
            obj(Cloud::S3, "audit-bkt", "logs/prod")
        );
        assert_eq!(
            Location::parse("gs://b-1/x").unwrap(),
            obj(Cloud::Gcs, "b-1", "x")
        );
        assert_eq!(
            Location::parse("az://cont/x/y").unwrap(),
            obj(Cloud::Azure, "cont", "x/y")
        );
        assert_eq!(
            Location::parse("azure://cont").unwrap(),
            obj(Cloud::Azure, "cont", "")
        );
        assert_eq!(
            Location::parse("S3://abc/p").unwrap(),
            obj(Cloud::S3, "abc", "p")
        );
        assert_eq!(obj(Cloud::Azure, "cont", "x").to_string(), "az://cont/x");
        assert_eq!(obj(Cloud::S3, "abc", "").to_string(), "s3://abc");
    }

    #[test]
    fn parses_servers() {
        for (url, want) in [
            ("https://audit.example.com", "https://audit.example.com"),
            ("HTTPS://Audit.Example.com/", "https://audit.example.com"),
            ("https://h:443/tftrail/", "https://h/tftrail"),
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
            ("http://[::1]:9/a/b", "http://[::1]:9/a/b"),
        ] {
            assert_eq!(
                Location::parse(url).unwrap(),
                Location::Server(want.into()),
                "{url}"
            );
        }
    }

    #[test]
    fn parses_local() {
        assert_eq!(
            Location::parse("/var/lib/t").unwrap(),
            Location::Local("/var/lib/t".into())
        );
        assert_eq!(
            Location::parse("rel/dir").unwrap(),
            Location::Local("rel/dir".into())
        );
        assert_eq!(
            Location::parse("file:///var/lib/t").unwrap(),
            Location::Local("/var/lib/t".into())
        );
    }

    #[test]
    fn rejects_bad_urls_with_reason() {
        for (url, needle) in [
            ("", "empty"),
            ("s3://", "missing bucket"),
            ("s3:///prefix", "missing bucket"),
            ("az://", "missing container"),
            ("s3://Upper/x", "invalid bucket name"),
            ("s3://ab", "invalid bucket name"),
            ("s3://bkt/a//b", "invalid prefix"),
            ("s3://bkt/a/../b", "invalid prefix"),
            ("s3://bkt/a?versionId=1", "query"),
            ("ftp://host/x", "unsupported scheme"),
            ("file://relative", "absolute path"),
            ("https://", "invalid URL"),
            ("https://u:p@host", "credentials"),
            ("https://host/x?a=1", "query"),
            ("http://host/a//b", "invalid base path"),
        ] {
            let e = Location::parse(url).unwrap_err().to_string();
            assert!(e.contains(needle), "{url}: {e}");
        }
    }
}
