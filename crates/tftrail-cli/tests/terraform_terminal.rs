//! `tftrail run` on a real terminal (a pseudo-terminal made by the test, which becomes the
//! controlling terminal of a new session through util-linux `setsid --ctty`): Terraform's
//! interactive approval prompt still works through tftrail, and Ctrl-C typed on the terminal
//! reaches Terraform exactly once (a second interrupt would make Terraform exit at once),
//! while tftrail survives it and records the interrupted apply.

mod common;

use std::fs::File;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{terraform_bin, Env, BIN};

const CONFIG: &str = r#"
resource "terraform_data" "slow" {
  input = "x"
  provisioner "local-exec" {
    # The markers are computed so that the command's own text (which Terraform echoes) does
    # not contain them.
    command = "echo STARTED-$((20+3)); sleep 60; echo FINISHED-$((40+2))"
  }
}
"#;

/// A pseudo-terminal: the master side for the test, the slave side for the child.
struct Pty {
    master: File,
    slave: File,
}

fn open_pty() -> Pty {
    use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).expect("openpt");
    grantpt(&master).expect("grantpt");
    unlockpt(&master).expect("unlockpt");
    let name = ptsname(&master, Vec::new()).expect("ptsname");
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(name.to_str().expect("utf-8 pts name"))
        .expect("open pts");
    Pty {
        master: File::from(master),
        slave,
    }
}

/// Reads what the terminal shows until `needle` appears (or panics after `limit`).
fn wait_for(rx: &mpsc::Receiver<Vec<u8>>, seen: &mut Vec<u8>, needle: &str, limit: Duration) {
    let deadline = Instant::now() + limit;
    while !String::from_utf8_lossy(seen).contains(needle) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(chunk) => seen.extend_from_slice(&chunk),
            Err(_) => panic!(
                "terminal never showed {needle:?}; it showed:\n{}",
                String::from_utf8_lossy(seen)
            ),
        }
    }
}

#[test]
fn approval_prompt_and_ctrl_c_on_a_real_terminal() {
    let env = Env::new();
    env.init();
    let wd = env.path("wd");
    std::fs::create_dir_all(&wd).unwrap();
    std::fs::write(wd.join("main.tf"), CONFIG).unwrap();
    let out = env.bare_terraform(&wd, &["init", "-input=false"]);
    assert!(out.status.success(), "terraform init: {out:?}");

    let pty = open_pty();
    let tf = terraform_bin();
    // `setsid --ctty` starts a new session whose controlling terminal is its stdin (the pty),
    // so the terminal's Ctrl-C goes to the foreground process group: tftrail and Terraform.
    let mut c = Command::new("setsid");
    c.arg("--ctty")
        .arg(BIN)
        .args(["run", "--"])
        .arg(&tf)
        .arg("apply");
    for k in ["TFTRAIL_STORE", "TFTRAIL_KEY"] {
        c.env_remove(k);
    }
    c.env("HOME", &env.home)
        .env("XDG_DATA_HOME", &env.data)
        .env("XDG_CONFIG_HOME", &env.config)
        .env("XDG_STATE_HOME", &env.state)
        .env("XDG_CACHE_HOME", env.cache())
        .env("TFTRAIL_STORE", &env.store)
        .env("TFTRAIL_KEY", &env.key);
    env.tf_env(&mut c);
    // Like a person at a terminal: interactive input and colours allowed.
    c.env_remove("TF_IN_AUTOMATION").env_remove("NO_COLOR");
    c.current_dir(&wd)
        .stdin(Stdio::from(pty.slave.try_clone().unwrap()))
        .stdout(Stdio::from(pty.slave.try_clone().unwrap()))
        .stderr(Stdio::from(pty.slave));
    let mut child = c.spawn().expect("spawn setsid (util-linux)");
    // The parent's copies of the slave side are gone once `c` is dropped.
    drop(c);

    let (tx, rx) = mpsc::channel();
    let mut reader = pty.master.try_clone().unwrap();
    let pump = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        // Reading fails with EIO once every slave descriptor is closed.
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut master = pty.master;
    let mut seen = Vec::new();

    // Terraform asks on the terminal, through tftrail, and takes the answer typed there.
    wait_for(&rx, &mut seen, "Enter a value:", Duration::from_secs(60));
    master.write_all(b"yes\r").unwrap();
    wait_for(&rx, &mut seen, "STARTED-23", Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(300));
    // Ctrl-C, as typed: the terminal driver turns it into SIGINT for the foreground group.
    master.write_all(&[0x03]).unwrap();

    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "tftrail did not exit after Ctrl-C:\n{}",
                String::from_utf8_lossy(&seen)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(master);
    while let Ok(chunk) = rx.recv_timeout(Duration::from_secs(5)) {
        seen.extend_from_slice(&chunk);
    }
    let _ = pump.join();
    let shown = String::from_utf8_lossy(&seen).into_owned();

    // Terraform's colours reach the terminal through tftrail.
    assert!(shown.contains("\x1b[1m"), "no colours: {shown}");
    // Terraform got one interrupt and shut down gracefully; the provisioner never finished.
    assert!(shown.contains("Interrupt received"), "{shown}");
    assert!(!shown.contains("Two interrupts received"), "{shown}");
    assert!(!shown.contains("FINISHED-42"), "{shown}");
    // tftrail exits with Terraform's exit code and reports what it recorded.
    assert_eq!(status.code(), Some(1), "{shown}");
    assert!(shown.contains("tftrail: recorded 0, 1"), "{shown}");

    let intent = env.record(0);
    let outcome = env.record(1);
    assert_eq!(intent["kind"], "terraform.apply.intent");
    assert_eq!(outcome["kind"], "terraform.apply.outcome");
    let p = &outcome["payload"];
    assert_eq!(p["outcome"], "interrupted", "{p}");
    assert_eq!(p["exit_code"], 1, "{p}");
    assert_eq!(p["intent_index"], 0, "{p}");
    // The captured output is what the terminal showed, prompt answer included.
    let blob = env.ok(&["show", "1", "--blob", "output.txt"], None);
    assert!(blob.contains("Interrupt received"), "{blob}");
    assert!(blob.contains("Enter a value:"), "{blob}");
    env.ok(&["verify"], None);

    // A blob name the record does not have: exit 2, naming the ones it has.
    let out = env.tftrail(&["show", "1", "--blob", "plan.json"], None);
    common::assert_fails(&out, 2, &["no blob named \"plan.json\"", "output.txt"]);
    // A blob altered in the store is refused, not printed.
    let sha = outcome["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == "output.txt")
        .and_then(|b| b["sha256"].as_str())
        .unwrap()
        .to_string();
    common::flip_byte(&env.object(&format!("tftrail/blobs/sha256/{sha}")), 10);
    let out = env.tftrail(&["show", "1", "--blob", "output.txt"], None);
    common::assert_fails(&out, 1, &["does not match its SHA-256"]);
    assert!(out.stdout.is_empty(), "printed a tampered blob");
}

/// `tftrail evidence` without `--out` refuses to write its binary bundle to a terminal
/// (usage, exit 2, with the way out), and writes nothing there; redirected, it writes the tar.
#[test]
fn evidence_refuses_to_write_a_bundle_to_a_terminal() {
    let env = Env::new();
    env.init();
    env.append(r#"{"kind":"test.event","payload":{"n":1}}"#);
    let pty = open_pty();
    let child = env
        .command(&["evidence"])
        .stdin(Stdio::null())
        .stdout(Stdio::from(pty.slave.try_clone().unwrap()))
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tftrail evidence");
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("not writing it to a terminal"), "{err}");
    assert!(err.contains("--out FILE"), "{err}");
    // Nothing reached the terminal: the master side has nothing to read.
    drop(pty.slave);
    let mut master = pty.master;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        let _ = tx.send(master.read(&mut buf).unwrap_or(0));
    });
    let read = rx.recv_timeout(Duration::from_millis(300)).unwrap_or(0);
    assert_eq!(read, 0, "bytes reached the terminal");
    // The same command with stdout to a file writes a tar (ustar magic at offset 257).
    let out = env.tftrail(&["evidence"], None);
    assert_eq!(out.status.code(), Some(0), "{}", common::describe(&out));
    assert_eq!(&out.stdout[257..262], b"ustar", "a tar archive");
}
