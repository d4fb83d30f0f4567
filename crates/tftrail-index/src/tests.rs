use serde_json::json;
use tftrail_core::checkpoint::{Origin, SigningKey};
use tftrail_core::record::{Actor, Record};

use super::*;

fn rec(kind: &str, user: &str, time: &str, payload: Value) -> Vec<u8> {
    let actor = Actor {
        authenticated: None,
        user: user.into(),
        host: "box".into(),
        ci: None,
    };
    Record::new(kind, time, actor, payload, vec![])
        .unwrap()
        .to_entry()
        .unwrap()
}

struct Fixture {
    _dir: tempfile::TempDir,
    log: Log,
    key: SigningKey,
    db: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let loc = dir.path().join("log").display().to_string();
    let store = tftrail_store::create(&loc).unwrap();
    let key = SigningKey::generate(&Origin::new("test.example/index").unwrap());
    tftrail_log::init(store.as_ref(), &key).unwrap();
    let log = Log::open(tftrail_store::open(&loc).unwrap(), key.verifier()).unwrap();
    let db = dir.path().join("cache/ix.sqlite");
    Fixture {
        _dir: dir,
        log,
        key,
        db,
    }
}

impl Fixture {
    fn append(&self, entries: Vec<Vec<u8>>) {
        self.log
            .append(&self.key, entries, &[], &mut |_, _| {})
            .unwrap();
    }
    fn open(&self) -> (Index, Sync) {
        let cp = self.log.head().unwrap().checkpoint;
        Index::open(&self.db, &self.log, &cp).unwrap()
    }
}

fn apply_records() -> Vec<Vec<u8>> {
    let ctx = json!({"dir": ".", "workspace": "default", "backend": "local"});
    vec![
        rec(
            "terraform.plan",
            "alice",
            "2026-01-01T10:00:00.000Z",
            json!({"context": ctx, "outcome": "success", "plan": {"sha256": "ab", "summary": {"resource_changes": [
                {"address": "terraform_data.a", "action": "create"},
                {"address": "terraform_data.b", "action": "replace"},
                {"address": "terraform_data.n", "action": "no-op"}]}}}),
        ),
        rec(
            "terraform.apply.intent",
            "bob",
            "2026-01-02T10:00:00.000Z",
            json!({"context": ctx, "plan": {"sha256": "ab", "plan_index": 0, "summary": {"resource_changes": [
                {"address": "terraform_data.a", "action": "create"},
                {"address": "terraform_data.b", "action": "replace"}]}}}),
        ),
        rec(
            "terraform.apply.outcome",
            "bob",
            "2026-01-02T10:00:05Z",
            json!({"context": ctx, "intent_index": 1, "outcome": "success",
                   "state_diff": {"added": ["terraform_data.a"], "removed": [],
                                  "changed": [{"address": "terraform_data.b", "paths": ["id", "output"]}]}}),
        ),
        rec(
            "terraform.state.outcome",
            "carol",
            "2026-01-03T00:00:00Z",
            json!({"context": ctx, "intent_index": null, "outcome": "success",
                   "state_diff": {"added": [], "removed": ["terraform_data.a"], "changed": []}}),
        ),
    ]
}

#[test]
fn extract_names_actions_from_intent_plan() {
    let f = fixture();
    f.append(apply_records());
    let (ix, sync) = f.open();
    assert!(matches!(sync, Sync::Rebuilt(_)), "{sync:?}");
    let h = ix.history("terraform_data.b").unwrap();
    assert_eq!(h.len(), 1);
    assert_eq!((h[0].index, h[0].action.as_str()), (2, "replace"));
    let h = ix.history("terraform_data.a").unwrap();
    let acts: Vec<_> = h.iter().map(|c| (c.index, c.action.as_str())).collect();
    assert_eq!(acts, vec![(2, "create"), (3, "forget")]);
    assert_eq!(ix.find_plan("ab").unwrap(), Some(0));
    assert_eq!(ix.outcome_of(1).unwrap(), Some(2));
    assert_eq!(ix.applies_of_plan(0).unwrap(), vec![1]);
}

#[test]
fn filters() {
    let f = fixture();
    f.append(apply_records());
    let (ix, _) = f.open();
    let q = |flt: Filter| ix.find(&flt).unwrap();
    assert_eq!(
        q(Filter {
            kind: Some("terraform.apply".into()),
            ..Default::default()
        }),
        vec![2, 1]
    );
    // A kind filter is a prefix (documented on `log --kind`), also of a Terraform kind
    // without its `terraform.`.
    for k in ["terraform.app", "apply", "app"] {
        assert_eq!(
            q(Filter {
                kind: Some(k.into()),
                ..Default::default()
            }),
            vec![2, 1],
            "{k}"
        );
    }
    assert_eq!(
        q(Filter {
            kind: Some("plan".into()),
            ..Default::default()
        }),
        vec![0]
    );
    assert_eq!(
        q(Filter {
            actor: Some("bob@box".into()),
            ..Default::default()
        }),
        vec![2, 1]
    );
    assert_eq!(
        q(Filter {
            resource: Some("terraform_data.a".into()),
            ..Default::default()
        }),
        vec![3, 2, 1, 0]
    );
    assert_eq!(
        q(Filter {
            since_ns: time_ns("2026-01-02T10:00:01Z"),
            until_ns: time_ns("2026-01-03T00:00:00Z"),
            ..Default::default()
        }),
        vec![2]
    );
    assert_eq!(
        q(Filter {
            outcome: Some("success".into()),
            limit: 2,
            ..Default::default()
        }),
        vec![3, 2]
    );
}

#[test]
fn stays_correct_when_extended_deleted_corrupted_or_rolled_back() {
    let f = fixture();
    let all = apply_records();
    f.append(all[..2].to_vec());
    let (ix, _) = f.open();
    assert_eq!(ix.find(&Filter::default()).unwrap(), vec![1, 0]);
    drop(ix);
    f.append(all[2..].to_vec());
    let (ix, sync) = f.open();
    assert_eq!(sync, Sync::Extended { from: 2 });
    assert_eq!(ix.history("terraform_data.b").unwrap()[0].action, "replace");
    assert_eq!(f.open().1, Sync::UpToDate);
    drop(ix);

    // Garbage in the file.
    std::fs::write(
        &f.db,
        b"this is not a database at all, not even close..........",
    )
    .unwrap();
    let (ix, sync) = f.open();
    assert!(matches!(sync, Sync::Rebuilt(_)), "{sync:?}");
    assert_eq!(ix.find(&Filter::default()).unwrap(), vec![3, 2, 1, 0]);
    drop(ix);

    // Deleted.
    std::fs::remove_file(&f.db).unwrap();
    assert_eq!(f.open().0.find(&Filter::default()).unwrap().len(), 4);

    // An index claiming a tree the log is not an extension of.
    let (ix, _) = f.open();
    ix.conn
        .execute_batch(
            "UPDATE meta SET v = '2' WHERE k = 'size'; DELETE FROM records WHERE idx >= 2;",
        )
        .unwrap();
    drop(ix);
    let (ix, sync) = f.open();
    assert!(matches!(sync, Sync::Rebuilt(_)), "{sync:?}");
    assert_eq!(ix.find(&Filter::default()).unwrap().len(), 4);
    drop(ix);

    // An index built from a longer tree (the log was rolled back or replaced).
    let (ix, _) = f.open();
    ix.conn
        .execute_batch("UPDATE meta SET v = '9' WHERE k = 'size';")
        .unwrap();
    drop(ix);
    assert!(matches!(f.open().1, Sync::Rebuilt(_)));
}

#[test]
fn kind_filters_are_prefixes_and_short_terraform_names() {
    use crate::kind_matches;
    for (f, k) in [
        ("apply", "terraform.apply.intent"),
        ("apply", "terraform.apply.outcome"),
        ("plan", "terraform.plan"),
        ("terraform.apply", "terraform.apply.outcome"),
        ("terraform", "terraform.destroy.intent"),
        ("change", "change.approval"),
        ("event", "event"),
        ("destroy.intent", "terraform.destroy.intent"),
    ] {
        assert!(kind_matches(f, k), "{f} should match {k}");
    }
    for (f, k) in [
        ("apply", "terraform.plan"),
        ("terraform.plan", "terraform.apply.intent"),
        ("x.apply", "terraform.apply.intent"),
        ("event", "terraform.apply.intent"),
    ] {
        assert!(!kind_matches(f, k), "{f} should not match {k}");
    }
}

/// A record a team server wrote for a caller it authenticated as `authenticated`.
fn server_rec(user: &str, authenticated: Option<Value>) -> Vec<u8> {
    let actor = Actor {
        authenticated,
        user: user.into(),
        host: "runner".into(),
        ci: Some(json!({"actor": "octocat"})),
    };
    Record::new("event", "2026-02-01T00:00:00Z", actor, json!({}), vec![])
        .unwrap()
        .to_entry()
        .unwrap()
}

#[test]
fn authenticated_identities_are_indexed_and_filtered() {
    let f = fixture();
    let subject = "repo:acme/infra:ref:refs/heads/main";
    f.append(vec![
        rec("event", "alice", "2026-01-01T00:00:00Z", json!({})),
        server_rec(
            "root",
            Some(json!({"by": "token", "name": "ci-deploy", "role": "writer",
                        "token": "0123456789abcdef"})),
        ),
        server_rec(
            "runner",
            Some(
                json!({"by": "oidc", "issuer": "https://token.actions.githubusercontent.com",
                        "subject": subject, "role": "writer", "actor": "octocat"}),
            ),
        ),
        server_rec("tftrail", Some(json!({"by": "server"}))),
        // An object of a shape this version does not know: authenticated, without a label.
        server_rec("x", Some(json!({"via": "mtls"}))),
    ]);
    let (ix, _) = f.open();
    type Cols = (i64, Option<String>, Option<String>, Option<String>);
    let cols: Vec<Cols> = ix
        .conn
        .prepare("SELECT idx, auth_by, auth_label, auth_role FROM records ORDER BY idx")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let some = |s: &str| Some(s.to_string());
    assert_eq!(
        cols,
        vec![
            (0, None, None, None),
            (1, some("token"), some("ci-deploy"), some("writer")),
            (2, some("oidc"), some(subject), some("writer")),
            (3, some("server"), some("server"), None),
            (4, some(""), None, None),
        ]
    );
    let q = |flt: Filter| ix.find(&flt).unwrap();
    let actor = |a: &str| Filter {
        actor: Some(a.into()),
        ..Default::default()
    };
    // The authenticated name, beside the self-asserted user and CI actor.
    assert_eq!(q(actor("ci-deploy")), vec![1]);
    assert_eq!(q(actor(subject)), vec![2]);
    assert_eq!(q(actor("root")), vec![1]);
    assert_eq!(q(actor("octocat")), vec![4, 3, 2, 1]);
    assert_eq!(q(actor("writer")), Vec::<u64>::new());
    let authenticated = |yes| Filter {
        authenticated: Some(yes),
        ..Default::default()
    };
    assert_eq!(q(authenticated(true)), vec![4, 3, 2, 1]);
    assert_eq!(q(authenticated(false)), vec![0]);
    assert_eq!(
        q(Filter {
            actor: Some("octocat".into()),
            authenticated: Some(false),
            ..Default::default()
        }),
        Vec::<u64>::new()
    );
}

#[test]
fn an_index_of_the_previous_schema_is_rebuilt() {
    let f = fixture();
    f.append(vec![server_rec(
        "u",
        Some(json!({"by": "token", "name": "ci-deploy"})),
    )]);
    let (ix, _) = f.open();
    // What version 1 looked like: no authenticated columns.
    ix.conn
        .execute_batch(
            "UPDATE meta SET v = '1' WHERE k = 'schema';
             ALTER TABLE records DROP COLUMN auth_label;",
        )
        .unwrap();
    drop(ix);
    let (ix, sync) = f.open();
    assert_eq!(sync, Sync::Rebuilt("another index schema".into()));
    assert_eq!(
        ix.find(&Filter {
            actor: Some("ci-deploy".into()),
            ..Default::default()
        })
        .unwrap(),
        vec![0]
    );
}
