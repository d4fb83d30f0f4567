//! Test helpers (feature `testing`): a `moto_server` S3 fixture and an Azurite (Azure Blob
//! Storage emulator) fixture.
//!
//! [`Moto::start`] finds `moto_server` through the `TFTRAIL_MOTO_SERVER` environment variable
//! or `PATH`, starts it on a free loopback port, waits until it answers, and kills it on drop.
//! It panics with an install hint when moto is absent: tests must not silently skip.
//!
//! [`Moto::env`] gives the environment a store or a `tftrail` child process needs to talk to
//! it; [`Moto::apply_env`] sets it in the current process (tests of one binary share one moto,
//! so set it once).
//!
//! [`Azurite::start`] runs `azurite-blob` from the `TFTRAIL_AZURITE` environment variable (set by
//! `scripts/test`; `scripts/deps` installs Azurite from npm) on a free loopback port with its
//! data in a temporary directory. When the variable is unset it returns `None` after printing
//! why: the Azure tests then skip with that message. When it is set but broken, it panics.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::s3::admin::S3Admin;

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

/// How to get Azurite, for messages.
pub const AZURITE_HINT: &str =
    "scripts/deps installs Azurite (npm package `azurite`) into .azurite/, linked as \
     .venv/bin/azurite-blob, and scripts/test sets TFTRAIL_AZURITE to it";

/// The account and key every Azurite instance accepts (Microsoft's documented well-known
/// development credentials, not secrets).
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";
const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// A running Azurite blob service (`azurite-blob`), killed on drop (its data directory is
/// removed too).
#[derive(Debug)]
pub struct Azurite {
    child: Child,
    addr: SocketAddr,
    data: PathBuf,
}

/// A raw response from [`Azurite::send`].
pub type AzuriteResponse = crate::connector::RawResponse;

impl Azurite {
    /// Starts `azurite-blob` (from `TFTRAIL_AZURITE`) on a free loopback port and waits (at
    /// most 60 s) until it answers. `None`, after printing why, when `TFTRAIL_AZURITE` is
    /// unset; panics when it is set but Azurite cannot run.
    pub fn start() -> Option<Azurite> {
        let Some(exe) = std::env::var_os("TFTRAIL_AZURITE").filter(|p| !p.is_empty()) else {
            eprintln!("SKIPPED: TFTRAIL_AZURITE is not set, so no Azure test runs; {AZURITE_HINT}");
            return None;
        };
        let exe = PathBuf::from(exe);
        assert!(
            exe.is_file(),
            "TFTRAIL_AZURITE={} does not exist; {AZURITE_HINT}",
            exe.display()
        );
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
            l.local_addr().unwrap().port()
        };
        let data =
            std::env::temp_dir().join(format!("tftrail-azurite-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&data).expect("create Azurite's data directory");
        let child = Command::new(&exe)
            .arg("--blobHost")
            .arg("127.0.0.1")
            .arg("--blobPort")
            .arg(port.to_string())
            .arg("--location")
            .arg(&data)
            .args(["--silent", "--disableTelemetry", "--skipApiVersionCheck"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}; {AZURITE_HINT}", exe.display()));
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut a = Azurite { child, addr, data };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = a.child.try_wait() {
                panic!("azurite-blob exited early ({status}); {AZURITE_HINT}");
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "azurite-blob did not start within 60 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(a)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The environment object_store's Azure client reads to talk to an emulator:
    /// `AZURE_STORAGE_USE_EMULATOR` (well-known account and key, plain http allowed) and
    /// `AZURITE_BLOB_STORAGE_URL`.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AZURE_STORAGE_USE_EMULATOR", "true".into()),
            ("AZURITE_BLOB_STORAGE_URL", self.endpoint()),
        ]
    }

    /// Sets [`Azurite::env`] in this process and removes the Azure variables that would
    /// override the emulator's account and key. Call before any store is opened.
    pub fn apply_env(&self) {
        for (k, v) in self.env() {
            std::env::set_var(k, v);
        }
        for k in AZURE_OVERRIDES {
            std::env::remove_var(k);
        }
    }

    /// Sends one request signed with the emulator's shared key to
    /// `/<account>/<container>[/<blob>][?query]`.
    pub fn send(
        &self,
        method: &str,
        container: &str,
        blob: Option<&str>,
        query: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> AzuriteResponse {
        use object_store::azure::{AzureAccessKey, AzureAuthorizer, AzureCredential};
        use object_store::client::{HttpConnector, ReqwestConnector};
        let mut url = format!("{}/{AZURITE_ACCOUNT}/{container}", self.endpoint());
        if let Some(b) = blob {
            url.push('/');
            url.push_str(b);
        }
        if !query.is_empty() {
            url.push('?');
            url.push_str(query);
        }
        let mut b = http::Request::builder()
            .method(method)
            .uri(&url)
            .header("content-length", body.len().to_string());
        for (n, v) in headers {
            b = b.header(*n, *v);
        }
        let mut req = b
            .body(object_store::client::HttpRequestBody::from(body))
            .expect("request");
        let cred = AzureCredential::AccessKey(AzureAccessKey::try_new(AZURITE_KEY).unwrap());
        AzureAuthorizer::new(&cred, AZURITE_ACCOUNT)
            .try_authorize(&mut req)
            .expect("sign");
        let rt = crate::object::runtime().expect("runtime");
        let http = ReqwestConnector::default()
            .connect(&object_store::ClientOptions::new().with_allow_http(true))
            .expect("http client");
        rt.block_on(crate::connector::execute(&http, req, &url))
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"))
    }

    /// Creates a private container.
    pub fn create_container(&self, container: &str) {
        let r = self.send("PUT", container, None, "restype=container", &[], Vec::new());
        assert!(
            r.status < 300,
            "create container {container}: {} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
    }

    /// Writes a block blob unconditionally (an overwrite, as an attacker with write access
    /// would).
    pub fn put_blob(&self, container: &str, blob: &str, data: &[u8]) {
        let r = self.send(
            "PUT",
            container,
            Some(blob),
            "",
            &[("x-ms-blob-type", "BlockBlob")],
            data.to_vec(),
        );
        assert!(
            r.status < 300,
            "put {container}/{blob}: {} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
    }

    /// Reads a blob; `None` when it does not exist.
    pub fn get_blob(&self, container: &str, blob: &str) -> Option<Vec<u8>> {
        let r = self.send("GET", container, Some(blob), "", &[], Vec::new());
        match r.status {
            404 => None,
            s if s < 300 => Some(r.body),
            s => panic!(
                "get {container}/{blob}: {s} {}",
                String::from_utf8_lossy(&r.body)
            ),
        }
    }
}

/// Azure variables that would make object_store use another account, key or endpoint than
/// the emulator's.
const AZURE_OVERRIDES: &[&str] = &[
    "AZURE_STORAGE_ACCOUNT_NAME",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_ACCESS_KEY",
    "AZURE_STORAGE_SAS_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_STORAGE_TOKEN",
    "AZURE_STORAGE_ENDPOINT",
    "AZURE_ENDPOINT",
];

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}
