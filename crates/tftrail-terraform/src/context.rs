//! Where and by whom a command runs: git, workspace, backend, actor and CI identity.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Serialize;
use serde_json::{Map, Value};

/// The environment the tool runs with: the inherited process environment plus overrides.
///
/// Children get the real inherited environment (non-UTF-8 values included) plus
/// [`Env::set`] overrides; lookups see the same.
#[derive(Debug, Clone, Default)]
pub struct Env {
    base: BTreeMap<String, String>,
    overrides: BTreeMap<String, String>,
    inherit: bool,
}

impl Env {
    /// The current process environment.
    pub fn inherit() -> Self {
        let base = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        Env {
            base,
            overrides: BTreeMap::new(),
            inherit: true,
        }
    }

    /// An empty environment (children get only what is set; for tests).
    pub fn empty() -> Self {
        Env::default()
    }

    /// Sets (overrides) one variable, for this crate's lookups and for children.
    pub fn set(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.overrides.insert(key.into(), value.into());
        self
    }

    /// Looks a variable up; empty values count as unset.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.overrides
            .get(key)
            .or_else(|| self.base.get(key))
            .map(|s| s.as_str())
            .filter(|s| !s.is_empty())
    }

    /// All variables (overrides win).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut all: BTreeMap<&str, &str> = BTreeMap::new();
        for (k, v) in self.base.iter().chain(self.overrides.iter()) {
            all.insert(k, v);
        }
        all.into_iter()
    }

    /// Values of `TF_VAR_*` variables (secrets, for scrubbing only).
    pub fn tf_var_values(&self) -> Vec<String> {
        self.iter()
            .filter(|(k, _)| k.starts_with("TF_VAR_"))
            .map(|(_, v)| v.to_string())
            .collect()
    }

    /// Names (without the prefix) of `TF_VAR_*` variables.
    pub fn tf_var_names(&self) -> Vec<String> {
        self.iter()
            .filter_map(|(k, _)| k.strip_prefix("TF_VAR_").map(String::from))
            .collect()
    }

    /// Applies this environment to a command about to be spawned.
    pub fn apply_to(&self, cmd: &mut Command) {
        if !self.inherit {
            cmd.env_clear();
            for (k, v) in &self.base {
                cmd.env(k, v);
            }
        }
        for (k, v) in &self.overrides {
            cmd.env(k, v);
        }
    }

    pub(crate) fn path_var(&self) -> Option<OsString> {
        if self.inherit && !self.overrides.contains_key("PATH") {
            std::env::var_os("PATH")
        } else {
            self.get("PATH").map(OsString::from)
        }
    }
}

/// Git facts about the working directory.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct GitInfo {
    /// `origin` (or first) remote URL with credentials, query and fragment removed.
    pub remote: Option<String>,
    /// HEAD commit.
    pub commit: Option<String>,
    /// Current branch (`None` when detached).
    pub branch: Option<String>,
    /// Whether the work tree has uncommitted changes.
    pub dirty: Option<bool>,
}

/// Who runs the command. Everything here is self-asserted by the environment.
#[derive(Debug, Clone, Serialize)]
pub struct Actor {
    /// OS user name.
    pub user: Option<String>,
    /// Host name.
    pub host: Option<String>,
    /// CI identity, when a known CI system is detected.
    pub ci: Option<Value>,
}

/// The run context common to every record.
#[derive(Debug, Clone, Serialize)]
pub struct Context {
    /// Working directory relative to the git root (absolute when outside git).
    pub dir: String,
    /// Git facts; `None` outside a git work tree.
    pub git: Option<GitInfo>,
    /// Terraform workspace.
    pub workspace: String,
    /// Backend type (`local`, `s3`, `http`, ...).
    pub backend: String,
    /// Actor.
    pub actor: Actor,
    /// Where the state lives, for the `http` backend: the backend's `address` (else
    /// `TF_HTTP_ADDRESS`) without user-info, query or fragment. A tftrail server links
    /// state writes to runs by it (`/state/<name>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_address: Option<String>,
    #[serde(skip)]
    backend_config: Value,
    #[serde(skip)]
    abs_dir: PathBuf,
}

impl Context {
    /// Captures the context for Terraform working in `dir` (already joined with `-chdir`).
    pub fn capture(dir: &Path, env: &Env) -> Context {
        Context::begin(dir, env).finish()
    }

    /// Starts capturing the context: workspace, backend and actor are read now, the git facts
    /// by git processes on a background thread until [`PendingContext::finish`], so they can
    /// run while Terraform does.
    pub fn begin(dir: &Path, env: &Env) -> PendingContext {
        let abs_dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        let d = abs_dir.clone();
        let git = std::thread::spawn(move || git_facts(&d));
        let (backend, backend_config) = backend_of(&abs_dir, env);
        PendingContext {
            ctx: Context {
                dir: abs_dir.to_string_lossy().into_owned(),
                git: None,
                workspace: workspace_of(&abs_dir, env),
                state_address: state_address(&backend, &backend_config, env),
                backend,
                actor: Actor {
                    user: Some(os_user(env)),
                    host: Some(host_name()),
                    ci: ci_identity(env),
                },
                backend_config,
                abs_dir,
            },
            git,
        }
    }

    /// The backend's `config` block from `.terraform/terraform.tfstate` (not serialised:
    /// it may hold credentials).
    /// The same context after a command that may have changed the workspace or the backend
    /// (`init -migrate-state`, `workspace select`): those are read again, the rest (git,
    /// actor) is kept.
    pub fn after_command(&self, env: &Env) -> Context {
        let (backend, backend_config) = backend_of(&self.abs_dir, env);
        Context {
            workspace: workspace_of(&self.abs_dir, env),
            state_address: state_address(&backend, &backend_config, env),
            backend,
            backend_config,
            ..self.clone()
        }
    }

    pub(crate) fn backend_config(&self) -> &Value {
        &self.backend_config
    }

    /// The absolute working directory.
    pub fn abs_dir(&self) -> &Path {
        &self.abs_dir
    }
}

/// A [`Context`] whose git facts are still being read; see [`Context::begin`].
pub struct PendingContext {
    ctx: Context,
    git: std::thread::JoinHandle<(String, Option<GitInfo>)>,
}

impl PendingContext {
    /// Everything but the git facts (and the directory relative to the git root).
    pub fn partial(&self) -> &Context {
        &self.ctx
    }

    /// Waits for the git facts.
    pub fn finish(self) -> Context {
        let (dir, git) = self
            .git
            .join()
            .unwrap_or_else(|_| (self.ctx.dir.clone(), None));
        Context {
            dir,
            git,
            ..self.ctx
        }
    }
}

/// The directory relative to the git root (absolute outside git) and the git facts of
/// `abs_dir`, from git processes run at once (outside a repository each fails at once).
fn git_facts(abs_dir: &Path) -> (String, Option<GitInfo>) {
    let (git_root, remote, commit, branch, dirty) = std::thread::scope(|s| {
        let d = abs_dir;
        // Every remote's URL in one call: origin's, else the first listed.
        let remote = s.spawn(move || {
            let urls = git(d, &["config", "--get-regexp", r"^remote\..*\.url$"])?;
            let pairs: Vec<(&str, &str)> = urls.lines().filter_map(|l| l.split_once(' ')).collect();
            pairs
                .iter()
                .find(|(k, _)| *k == "remote.origin.url")
                .or(pairs.first())
                .map(|(_, url)| url.to_string())
        });
        let commit = s.spawn(move || git(d, &["rev-parse", "--verify", "-q", "HEAD"]));
        let branch = s.spawn(move || git(d, &["symbolic-ref", "-q", "--short", "HEAD"]));
        let dirty = s.spawn(move || git_status_dirty(d));
        let root = git(d, &["rev-parse", "--show-toplevel"]).map(PathBuf::from);
        let join = "git helper thread panicked";
        (
            root,
            remote.join().expect(join),
            commit.join().expect(join),
            branch.join().expect(join),
            dirty.join().expect(join),
        )
    });
    let rel = match &git_root {
        Some(root) => {
            let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.clone());
            match abs_dir.strip_prefix(&root) {
                Ok(r) if r.as_os_str().is_empty() => ".".to_string(),
                Ok(r) => r.to_string_lossy().into_owned(),
                Err(_) => abs_dir.to_string_lossy().into_owned(),
            }
        }
        None => abs_dir.to_string_lossy().into_owned(),
    };
    let info = git_root.as_ref().map(|_| GitInfo {
        remote: remote.map(|r| strip_url_credentials(&r)),
        commit,
        branch,
        dirty,
    });
    (rel, info)
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn git_status_dirty(dir: &Path) -> Option<bool> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["status", "--porcelain", "--untracked-files=normal"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status.success().then_some(!out.stdout.is_empty())
}

/// The Terraform data directory (`TF_DATA_DIR`, default `.terraform`).
pub(crate) fn data_dir(dir: &Path, env: &Env) -> PathBuf {
    dir.join(env.get("TF_DATA_DIR").unwrap_or(".terraform"))
}

/// `TF_WORKSPACE`, else `<data dir>/environment`, else `default`.
pub fn workspace_of(dir: &Path, env: &Env) -> String {
    if let Some(w) = env.get("TF_WORKSPACE") {
        return w.to_string();
    }
    std::fs::read_to_string(data_dir(dir, env).join("environment"))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "default".into())
}

/// Backend type and config from `<data dir>/terraform.tfstate`, else `local`.
pub(crate) fn backend_of(dir: &Path, env: &Env) -> (String, Value) {
    let parsed: Option<Value> = std::fs::read(data_dir(dir, env).join("terraform.tfstate"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let backend = parsed.as_ref().and_then(|v| v.get("backend"));
    match backend.and_then(|b| b.get("type")).and_then(Value::as_str) {
        Some(t) => (
            t.to_string(),
            backend
                .and_then(|b| b.get("config"))
                .cloned()
                .unwrap_or(Value::Null),
        ),
        None => ("local".into(), Value::Null),
    }
}

/// The state's address for the `http` backend (see [`Context::state_address`]); `None` for
/// other backends or when none is set.
pub fn state_address(backend: &str, config: &Value, env: &Env) -> Option<String> {
    if backend != "http" {
        return None;
    }
    let address = config
        .get("address")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .or_else(|| env.get("TF_HTTP_ADDRESS").map(str::trim))?;
    Some(strip_url_credentials(address)).filter(|a| !a.is_empty())
}

/// Removes credentials from a git remote URL: the user-info of URLs with a scheme
/// (`https://user:token@host/x` → `https://host/x`), and any query or fragment. SCP-like
/// `git@host:org/repo` is kept (the `git` user is not a credential).
pub fn strip_url_credentials(url: &str) -> String {
    let url = url.trim();
    let Some(scheme_end) = url.find("://") else {
        // scp-like or local path: drop a password-looking part only.
        return match url.split_once('@') {
            Some((user, rest)) if user.contains(':') => {
                format!("{}@{rest}", user.split(':').next().unwrap_or(""))
            }
            _ => url.to_string(),
        };
    };
    let (scheme, rest) = url.split_at(scheme_end + 3);
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let host = match authority.rfind('@') {
        Some(i) => &authority[i + 1..],
        None => authority,
    };
    let keep_user =
        scheme.starts_with("ssh") && !authority[..authority.rfind('@').unwrap_or(0)].contains(':');
    let user = if keep_user {
        authority
            .rfind('@')
            .map(|i| format!("{}@", &authority[..i]))
    } else {
        None
    };
    format!("{scheme}{}{host}{path}", user.unwrap_or_default())
}

/// The OS identity every command records as its user: `$USER`, else `$LOGNAME`, else the
/// passwd name of the real uid, else `uid:<n>`. One function, so that `run`, `append` and
/// `init`'s default origin name the same person (`log --actor` relies on it).
pub fn os_user(env: &Env) -> String {
    if let Some(u) = env
        .get("USER")
        .or_else(|| env.get("LOGNAME"))
        .filter(|u| !u.is_empty())
    {
        return u.to_string();
    }
    let uid = rustix::process::getuid().as_raw();
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| passwd_name(&p, uid))
        .unwrap_or_else(|| format!("uid:{uid}"))
}

/// The user name of `uid` in passwd(5) text.
fn passwd_name(passwd: &str, uid: u32) -> Option<String> {
    let uid = uid.to_string();
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let _password = f.next()?;
        (f.next()? == uid && !name.is_empty()).then(|| name.to_string())
    })
}

/// The machine's host name (`uname -n`), or `localhost` when it has none.
pub fn host_name() -> String {
    let u = rustix::system::uname();
    let n = u.nodename().to_string_lossy().into_owned();
    if n.is_empty() {
        "localhost".to_string()
    } else {
        n
    }
}

/// CI identity from the environment (GitHub Actions, GitLab CI, Atlantis, Jenkins, Buildkite,
/// CircleCI), marked `"self_asserted": true`: any process can set these variables.
pub fn ci_identity(env: &Env) -> Option<Value> {
    let g = |k: &str| env.get(k).map(String::from);
    let mut m = Map::new();
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            m.insert(k.into(), Value::String(v));
        }
    };
    let provider;
    if env.get("GITHUB_ACTIONS") == Some("true") {
        provider = "github_actions";
        put("actor", g("GITHUB_ACTOR"));
        put("triggering_actor", g("GITHUB_TRIGGERING_ACTOR"));
        put("run_id", g("GITHUB_RUN_ID"));
        put("run_attempt", g("GITHUB_RUN_ATTEMPT"));
        put("job", g("GITHUB_JOB"));
        put("workflow", g("GITHUB_WORKFLOW"));
        put("event", g("GITHUB_EVENT_NAME"));
        put("repo", g("GITHUB_REPOSITORY"));
        put("ref", g("GITHUB_REF"));
        put("sha", g("GITHUB_SHA"));
        if let (Some(s), Some(r), Some(id)) = (
            g("GITHUB_SERVER_URL"),
            g("GITHUB_REPOSITORY"),
            g("GITHUB_RUN_ID"),
        ) {
            put(
                "url",
                Some(strip_url_credentials(&format!("{s}/{r}/actions/runs/{id}"))),
            );
        }
    } else if env.get("GITLAB_CI") == Some("true") {
        provider = "gitlab_ci";
        put("actor", g("GITLAB_USER_LOGIN"));
        put("job_id", g("CI_JOB_ID"));
        put("run_id", g("CI_PIPELINE_ID"));
        put("url", g("CI_JOB_URL").map(|u| strip_url_credentials(&u)));
        put("repo", g("CI_PROJECT_PATH"));
        put("ref", g("CI_COMMIT_REF_NAME"));
        put("sha", g("CI_COMMIT_SHA"));
    } else if env.get("ATLANTIS_TERRAFORM_VERSION").is_some()
        || env.get("PULL_NUM").is_some() && env.get("BASE_REPO_OWNER").is_some()
    {
        provider = "atlantis";
        put("actor", g("USER_NAME"));
        put("pull_author", g("PULL_AUTHOR"));
        put("pull", g("PULL_NUM"));
        put("url", g("PULL_URL").map(|u| strip_url_credentials(&u)));
        if let (Some(o), Some(n)) = (g("BASE_REPO_OWNER"), g("BASE_REPO_NAME")) {
            put("repo", Some(format!("{o}/{n}")));
        }
        put("ref", g("HEAD_BRANCH_NAME"));
        put("sha", g("HEAD_COMMIT"));
        put("project", g("PROJECT_NAME"));
    } else if env.get("BUILDKITE") == Some("true") {
        provider = "buildkite";
        put("actor", g("BUILDKITE_BUILD_CREATOR"));
        put("actor_email", g("BUILDKITE_BUILD_CREATOR_EMAIL"));
        put("unblocker", g("BUILDKITE_UNBLOCKER"));
        put("job_id", g("BUILDKITE_JOB_ID"));
        put("run_id", g("BUILDKITE_BUILD_ID"));
        put(
            "url",
            g("BUILDKITE_BUILD_URL").map(|u| strip_url_credentials(&u)),
        );
        put(
            "repo",
            g("BUILDKITE_REPO").map(|u| strip_url_credentials(&u)),
        );
        put("ref", g("BUILDKITE_BRANCH"));
        put("sha", g("BUILDKITE_COMMIT"));
    } else if env.get("CIRCLECI") == Some("true") {
        provider = "circleci";
        put("actor", g("CIRCLE_USERNAME"));
        put("job_id", g("CIRCLE_BUILD_NUM"));
        put("run_id", g("CIRCLE_WORKFLOW_ID"));
        put(
            "url",
            g("CIRCLE_BUILD_URL").map(|u| strip_url_credentials(&u)),
        );
        put(
            "repo",
            g("CIRCLE_REPOSITORY_URL").map(|u| strip_url_credentials(&u)),
        );
        put("ref", g("CIRCLE_BRANCH"));
        put("sha", g("CIRCLE_SHA1"));
    } else if env.get("JENKINS_URL").is_some() {
        provider = "jenkins";
        put("actor", g("BUILD_USER_ID"));
        put("job", g("JOB_NAME"));
        put("run_id", g("BUILD_NUMBER"));
        put("url", g("BUILD_URL").map(|u| strip_url_credentials(&u)));
        put("repo", g("GIT_URL").map(|u| strip_url_credentials(&u)));
        put("ref", g("GIT_BRANCH"));
        put("sha", g("GIT_COMMIT"));
    } else {
        return None;
    }
    m.insert("provider".into(), Value::String(provider.into()));
    m.insert("self_asserted".into(), Value::Bool(true));
    Some(Value::Object(m))
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwd_names_the_uid_and_skips_malformed_lines() {
        let passwd = "broken\n:x:0:0::/:/bin/sh\nroot:x:0:0:root:/root:/bin/bash\nal:x:1000:1000::/home/al:/bin/sh\n";
        assert_eq!(passwd_name(passwd, 0).as_deref(), Some("root"));
        assert_eq!(passwd_name(passwd, 1000).as_deref(), Some("al"));
        assert_eq!(passwd_name(passwd, 7), None);
        assert_eq!(passwd_name("", 0), None);
    }

    #[test]
    fn os_user_prefers_user_then_logname() {
        let e = Env::empty().set("USER", "u").set("LOGNAME", "l");
        assert_eq!(os_user(&e), "u");
        assert_eq!(os_user(&Env::empty().set("LOGNAME", "l")), "l");
        let none = os_user(&Env::empty().set("USER", ""));
        assert!(!none.is_empty());
    }

    use super::*;
    use serde_json::json;

    #[test]
    fn strips_credentials() {
        for (i, o) in [
            (
                "https://user:tok3n@github.com/o/r.git",
                "https://github.com/o/r.git",
            ),
            ("https://tok3n@github.com/o/r", "https://github.com/o/r"),
            (
                "https://h.example/o/r.git?private_token=abc#x",
                "https://h.example/o/r.git",
            ),
            ("git@github.com:o/r.git", "git@github.com:o/r.git"),
            ("ssh://git@host:22/o/r", "ssh://git@host:22/o/r"),
            ("ssh://git:pw@host/o/r", "ssh://host/o/r"),
            ("https://host", "https://host"),
        ] {
            assert_eq!(strip_url_credentials(i), o, "{i}");
        }
    }

    /// Runs git in `dir` (a real git, as tftrail uses it); panics when it fails.
    fn git_ok(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .output()
            .expect("git runs");
        assert!(out.status.success(), "git {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    #[test]
    fn git_facts() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("repo");
        let infra = repo.join("infra/prod");
        std::fs::create_dir_all(&infra).unwrap();
        git_ok(&repo, &["init", "-q", "-b", "audit-branch"]);
        git_ok(
            &repo,
            &[
                "remote",
                "add",
                "upstream",
                "https://u:pw@up.example/o/r.git",
            ],
        );
        std::fs::write(infra.join("main.tf"), "# x\n").unwrap();
        git_ok(&repo, &["add", "."]);
        git_ok(&repo, &["commit", "-q", "-m", "one"]);
        let head = git_ok(&repo, &["rev-parse", "HEAD"]);

        // Without origin: the first remote, credentials stripped.
        let c = Context::capture(&infra, &Env::empty());
        assert_eq!(c.dir, "infra/prod");
        let g = c.git.expect("in a work tree");
        assert_eq!(g.remote.as_deref(), Some("https://up.example/o/r.git"));
        assert_eq!(g.commit.as_deref(), Some(head.as_str()));
        assert_eq!(g.branch.as_deref(), Some("audit-branch"));
        assert_eq!(g.dirty, Some(false));

        // origin wins; an untracked file makes the tree dirty.
        git_ok(
            &repo,
            &[
                "remote",
                "add",
                "origin",
                "https://tok3n@git.example/o/r.git",
            ],
        );
        std::fs::write(infra.join("new.tf"), "# y\n").unwrap();
        let g = Context::capture(&infra, &Env::empty()).git.unwrap();
        assert_eq!(g.remote.as_deref(), Some("https://git.example/o/r.git"));
        assert_eq!(g.dirty, Some(true));

        // Detached HEAD: no branch, still the commit.
        git_ok(&repo, &["checkout", "-q", "--detach"]);
        let g = Context::capture(&infra, &Env::empty()).git.unwrap();
        assert_eq!(g.branch, None);
        assert_eq!(g.commit.as_deref(), Some(head.as_str()));

        // Outside any repository: no git facts, the absolute directory.
        let outside = tmp.path().join("plain");
        std::fs::create_dir_all(&outside).unwrap();
        let c = Context::capture(&outside, &Env::empty());
        assert!(c.git.is_none());
        assert_eq!(
            Path::new(&c.dir),
            std::fs::canonicalize(&outside).unwrap().as_path()
        );
    }

    #[test]
    fn ci() {
        assert!(ci_identity(&Env::empty()).is_none());
        let env = Env::empty()
            .set("GITHUB_ACTIONS", "true")
            .set("GITHUB_ACTOR", "octocat")
            .set("GITHUB_RUN_ID", "42")
            .set("GITHUB_SERVER_URL", "https://github.com")
            .set("GITHUB_REPOSITORY", "o/r")
            .set("GITHUB_REF", "refs/heads/main");
        let v = ci_identity(&env).unwrap();
        assert_eq!(v["actor"], "octocat");
        assert_eq!(v["url"], "https://github.com/o/r/actions/runs/42");
        assert_eq!(v["self_asserted"], true);
        let env = Env::empty()
            .set("GITLAB_CI", "true")
            .set("GITLAB_USER_LOGIN", "al")
            .set("CI_JOB_ID", "7");
        assert_eq!(ci_identity(&env).unwrap()["provider"], "gitlab_ci");
        let env = Env::empty()
            .set("ATLANTIS_TERRAFORM_VERSION", "1.11.0")
            .set("USER_NAME", "bob");
        assert_eq!(ci_identity(&env).unwrap()["actor"], "bob");
        let env = Env::empty()
            .set("JENKINS_URL", "https://j")
            .set("GIT_URL", "https://u:p@h/r");
        assert_eq!(ci_identity(&env).unwrap()["repo"], "https://h/r");
        let env = Env::empty().set("BUILDKITE", "true");
        assert_eq!(ci_identity(&env).unwrap()["provider"], "buildkite");
        let env = Env::empty()
            .set("CIRCLECI", "true")
            .set("CIRCLE_USERNAME", "c");
        assert_eq!(ci_identity(&env).unwrap()["actor"], "c");
    }

    #[test]
    fn workspace_and_backend() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(workspace_of(d.path(), &Env::empty()), "default");
        assert_eq!(backend_of(d.path(), &Env::empty()).0, "local");
        std::fs::create_dir(d.path().join(".terraform")).unwrap();
        std::fs::write(d.path().join(".terraform/environment"), "staging").unwrap();
        std::fs::write(
            d.path().join(".terraform/terraform.tfstate"),
            r#"{"backend":{"type":"http","config":{"address":"http://x"}}}"#,
        )
        .unwrap();
        assert_eq!(workspace_of(d.path(), &Env::empty()), "staging");
        assert_eq!(
            workspace_of(d.path(), &Env::empty().set("TF_WORKSPACE", "w2")),
            "w2"
        );
        assert_eq!(backend_of(d.path(), &Env::empty()).0, "http");
    }

    #[test]
    fn state_address_of_the_http_backend() {
        let cfg = json!({"address": "https://u:secret-pw@tftrail.example/state/team/prod?x=1#f",
                         "password": "secret-pw"});
        let env = Env::empty().set("TF_HTTP_ADDRESS", "https://other.example/state/env");
        assert_eq!(
            state_address("http", &cfg, &env).as_deref(),
            Some("https://tftrail.example/state/team/prod")
        );
        // Not set in the configuration: the environment's.
        for cfg in [json!({"address": null}), json!({}), Value::Null] {
            assert_eq!(
                state_address("http", &cfg, &env).as_deref(),
                Some("https://other.example/state/env")
            );
            assert_eq!(state_address("http", &cfg, &Env::empty()), None);
        }
        assert_eq!(state_address("s3", &cfg, &env), None);

        // From a real working directory, serialised only when set.
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join(".terraform")).unwrap();
        let ctx = Context::capture(d.path(), &Env::empty());
        let v = serde_json::to_value(&ctx).unwrap();
        assert!(v.get("state_address").is_none(), "{v}");
        std::fs::write(
            d.path().join(".terraform/terraform.tfstate"),
            r#"{"backend":{"type":"http","config":{"address":"http://127.0.0.1:9/state/a/b","username":"tftrail"}}}"#,
        )
        .unwrap();
        let ctx = ctx.after_command(&Env::empty());
        let v = serde_json::to_value(&ctx).unwrap();
        assert_eq!(v["state_address"], "http://127.0.0.1:9/state/a/b");
        assert_eq!(v["backend"], "http");
    }
}
