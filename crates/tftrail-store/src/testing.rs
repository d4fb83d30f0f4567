//! Test helpers (feature `testing`): a `moto_server` S3 fixture.
//!
//! [`Moto::start`] finds `moto_server` through the `TFTRAIL_MOTO_SERVER` environment variable
//! or `PATH`, starts it on a free loopback port, waits until it answers, and kills it on drop.
//! It panics with an install hint when moto is absent: tests must not silently skip.
//!
//! [`Moto::env`] gives the environment a store or a `tftrail` child process needs to talk to
//! it; [`Moto::apply_env`] sets it in the current process (tests of one binary share one moto,
//! so set it once).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::s3admin::S3Admin;

/// A running moto_server, killed on drop.
#[derive(Debug)]
pub struct Moto {
    child: Child,
    addr: SocketAddr,
}

/// How to install moto, for error messages.
pub const INSTALL_HINT: &str =
    "install it with `python3 -m pip install 'moto[server]>=5.2,<6'` or set TFTRAIL_MOTO_SERVER \
     to the moto_server executable";

fn find_moto() -> PathBuf {
    if let Some(p) = std::env::var_os("TFTRAIL_MOTO_SERVER").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "TFTRAIL_MOTO_SERVER={} does not exist; {INSTALL_HINT}",
            p.display()
        );
        return p;
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let c = dir.join("moto_server");
            if c.is_file() {
                return c;
            }
        }
    }
    panic!("moto_server not found on PATH; {INSTALL_HINT}");
}

impl Moto {
    /// Starts moto_server on a free loopback port and waits (at most 30 s) until it answers.
    pub fn start() -> Moto {
        let exe = find_moto();
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
            l.local_addr().unwrap().port()
        };
        let child = Command::new(&exe)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}; {INSTALL_HINT}", exe.display()));
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut m = Moto { child, addr };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = m.child.try_wait() {
                panic!("moto_server exited early ({status}); {INSTALL_HINT}");
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not start within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        m
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Environment for a client of this server (endpoint, dummy credentials, region).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ENDPOINT_URL_S3", self.endpoint()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_DEFAULT_REGION", "us-east-1".into()),
            ("AWS_ALLOW_HTTP", "true".into()),
        ]
    }

    /// Sets [`Moto::env`] in this process (and removes session tokens and profiles that
    /// would confuse it). Call before any store is opened.
    pub fn apply_env(&self) {
        for (k, v) in self.env() {
            std::env::set_var(k, v);
        }
        for k in [
            "AWS_SESSION_TOKEN",
            "AWS_PROFILE",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
        ] {
            std::env::remove_var(k);
        }
    }

    /// Creates a bucket (needs [`Moto::apply_env`] first). `lock`: with Object Lock (and so
    /// versioning).
    pub fn create_bucket(&self, bucket: &str, lock: bool) {
        let admin = S3Admin::new(bucket, "").expect("admin client");
        let headers: &[(&str, &str)] = if lock {
            &[("x-amz-bucket-object-lock-enabled", "true")]
        } else {
            &[]
        };
        let r = admin
            .send("PUT", None, &[], headers, Vec::new())
            .expect("create bucket");
        assert!(r.status < 300, "create bucket {bucket}: {r:?}");
    }

    /// Applies a bucket sub-resource configuration (`versioning`, `object-lock`,
    /// `publicAccessBlock`, `policy`) with a PUT of `body`.
    pub fn put_bucket_config(&self, bucket: &str, subresource: &str, body: &str) {
        let admin = S3Admin::new(bucket, "").expect("admin client");
        let r = admin
            .send(
                "PUT",
                None,
                &[(subresource, "")],
                &[],
                body.as_bytes().to_vec(),
            )
            .expect("put bucket config");
        assert!(
            r.status < 300,
            "PUT ?{subresource} on {bucket}: {} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
    }

    /// Creates a bucket configured as `tftrail bootstrap aws` does: Object Lock with
    /// COMPLIANCE default retention of `days`, versioning, all Block Public Access flags, and
    /// a bucket policy granting a non-public reader role.
    pub fn create_audit_bucket(&self, bucket: &str, days: u32) {
        self.create_bucket(bucket, true);
        self.put_bucket_config(
            bucket,
            "versioning",
            "<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>",
        );
        self.put_bucket_config(bucket, "object-lock", &object_lock_xml("COMPLIANCE", days));
        self.put_bucket_config(bucket, "publicAccessBlock", PUBLIC_ACCESS_BLOCK_ALL);
        // moto evaluates bucket policies on object requests but ignores conditions, so the
        // bootstrap's TLS-only and no-delete Deny statements would deny everything here;
        // this policy has the same shape for `storage check` (a non-public principal only).
        let policy = format!(
            r#"{{"Version":"2012-10-17","Statement":[
{{"Sid":"Reader","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::123456789012:role/tftrail-reader"}},
  "Action":["s3:GetObject","s3:GetObjectVersion"],"Resource":"arn:aws:s3:::{bucket}/*"}}]}}"#
        );
        self.put_bucket_config(bucket, "policy", &policy);
    }
}

/// `PUT ?object-lock` body with a default retention.
pub fn object_lock_xml(mode: &str, days: u32) -> String {
    format!(
        "<ObjectLockConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
         <ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention>\
         <Mode>{mode}</Mode><Days>{days}</Days></DefaultRetention></Rule>\
         </ObjectLockConfiguration>"
    )
}

/// `PUT ?publicAccessBlock` body with all four flags on.
pub const PUBLIC_ACCESS_BLOCK_ALL: &str = "<PublicAccessBlockConfiguration \
     xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><BlockPublicAcls>true</BlockPublicAcls>\
     <IgnorePublicAcls>true</IgnorePublicAcls><BlockPublicPolicy>true</BlockPublicPolicy>\
     <RestrictPublicBuckets>true</RestrictPublicBuckets></PublicAccessBlockConfiguration>";

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
