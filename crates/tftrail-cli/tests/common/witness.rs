//! A real `tftrail witness serve` on loopback (C2SP tlog-witness), started with a key made by
//! `tftrail witness init`, for the tests of servers and bundles that need witnesses.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Stdio};

use super::Env;

/// A `tftrail witness serve` process; killed on drop.
pub struct Witness {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// Its verifier key (cosignature/v1).
    pub vkey: String,
    dir: PathBuf,
}

impl Witness {
    /// `tftrail witness init` in a fresh directory, then serve on any free port.
    pub fn new(env: &Env, name: &str, log_vkey: &str) -> Witness {
        let dir = env.path(&format!("witness-{}", name.replace('/', "_")));
        let vkey = env
            .ok(
                &[
                    "witness",
                    "init",
                    "--origin",
                    name,
                    "--dir",
                    dir.to_str().unwrap(),
                ],
                None,
            )
            .trim()
            .to_string();
        Self::serve(env, dir, vkey, log_vkey, "127.0.0.1:0")
    }

    pub fn serve(env: &Env, dir: PathBuf, vkey: String, log_vkey: &str, listen: &str) -> Witness {
        let mut child = env
            .command(&[
                "witness",
                "serve",
                "--listen",
                listen,
                "--dir",
                dir.to_str().unwrap(),
                "--log",
                log_vkey,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tftrail witness serve");
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut seen = String::new();
        let addr = loop {
            let mut line = String::new();
            if err.read_line(&mut line).unwrap() == 0 {
                let _ = child.kill();
                panic!("the witness did not start:\n{seen}");
            }
            seen.push_str(&line);
            if let Some(a) = line.trim().strip_prefix("listening on http://") {
                break a.split(' ').next().unwrap().to_string();
            }
        };
        std::thread::spawn(move || for _ in err.lines().map_while(Result::ok) {});
        Witness {
            child,
            addr,
            vkey,
            dir,
        }
    }

    /// Stops it (SIGKILL).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The same witness (key, state, port) started again.
    pub fn restart(&mut self, env: &Env, log_vkey: &str) {
        self.kill();
        let again = Self::serve(
            env,
            self.dir.clone(),
            self.vkey.clone(),
            log_vkey,
            &self.addr,
        );
        // Take over the process; the old handle is already reaped.
        let old = std::mem::replace(self, again);
        std::mem::forget(old);
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Witness {
    fn drop(&mut self) {
        self.kill();
    }
}
