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
    // Keyset paging: the page after index 2, and a filter on top of it.
    assert_eq!(
        q(Filter {
            before: Some(2),
            ..Default::default()
        }),
        vec![1, 0]
    );
    assert_eq!(
        q(Filter {
            resource: Some("terraform_data.a".into()),
            before: Some(3),
            limit: 1,
            ..Default::default()
        }),
        vec![2]
    );
    // Backwards: the page before index 1 (newer records), newest first.
    assert_eq!(
        q(Filter {
            after: Some(1),
            limit: 2,
            ..Default::default()
        }),
        vec![3, 2]
    );
    // A prefix that only looks like one: `terraform_data.a` is not an instance of `terraform_d`.
    assert!(q(Filter {
        resource: Some("terraform_d".into()),
        ..Default::default()
    })
    .is_empty());
    assert!(q(Filter {
        kind: Some("applyx".into()),
        ..Default::default()
    })
    .is_empty());
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
             DROP INDEX records_auth_label;
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

/// A record the server writes for a state request, authenticated as a writer's token.
fn state_rec(
    kind: &str,
    time: &str,
    payload: Value,
    blobs: Vec<tftrail_core::record::BlobRef>,
) -> Vec<u8> {
    let actor = Actor {
        authenticated: Some(json!({"by": "token", "name": "ci-deploy", "role": "writer"})),
        user: "alice".into(),
        host: "laptop".into(),
        ci: None,
    };
    Record::new(kind, time, actor, payload, blobs)
        .unwrap()
        .to_entry()
        .unwrap()
}

fn fp(serial: u64, sha: &str) -> Value {
    json!({"present": true, "lineage": "lin-1", "serial": serial, "sha256": sha,
           "content_sha256": sha, "size": 10, "terraform_version": "1.11.4",
           "resources": 1, "outputs": 0})
}

fn lock(id: &str) -> Value {
    json!({"id": id, "operation": "OperationTypeApply", "info": "", "who": "alice@laptop",
           "version": "1.11.4", "created": "2026-03-01T10:00:00Z", "path": ""})
}

/// One of every state event, in the order a run through the server's backend makes them,
/// then a plain `terraform apply` (no run), a refusal, a force-unlock and a delete.
fn state_records() -> Vec<Vec<u8>> {
    let ctx = json!({"dir": ".", "workspace": "default", "backend": "http",
                     "state_address": "https://tftrail.example/state/team/prod"});
    let t = |s: u32| format!("2026-03-01T10:00:{s:02}Z");
    vec![
        // 0: the run's intent
        rec(
            "terraform.apply.intent",
            "alice",
            &t(0),
            json!({"context": ctx}),
        ),
        // 1: its lock, linked
        state_rec(
            "terraform.state.lock",
            &t(1),
            json!({"state": "team/prod", "lock": lock("L1"),
            "run": {"intent_index": 0, "matched_by": "lock"}}),
            vec![],
        ),
        // 2: its write: create one, change one (new id: a replacement), another updated
        state_rec(
            "terraform.state.write",
            &t(2),
            json!({"state": "team/prod", "lock": lock("L1"),
            "before": {"present": false}, "after": fp(1, "aa"), "forced": false,
            "run": {"intent_index": 0, "matched_by": "lock"}, "out_of_band": false,
            "state_diff": {"added": ["terraform_data.a"], "removed": [],
                "changed": [{"address": "terraform_data.r", "paths": ["id", "output"]},
                            {"address": "terraform_data.u", "paths": ["input.region"]}],
                "outputs_changed": [], "lineage_changed": false, "serial": [null, 1]}}),
            vec![],
        ),
        // 3: unlock
        state_rec(
            "terraform.state.unlock",
            &t(3),
            json!({"state": "team/prod", "lock": lock("L1")}),
            vec![],
        ),
        // 4: the run's outcome
        rec(
            "terraform.apply.outcome",
            "alice",
            &t(4),
            json!({"context": ctx, "intent_index": 0,
            "outcome": "success", "state_diff": {"added": [], "removed": [], "changed": []}}),
        ),
        // 5: a plain apply's write elsewhere, no lock, no run
        state_rec(
            "terraform.state.write",
            &t(5),
            json!({"state": "team/dev", "lock": null,
            "before": {"present": false}, "after": fp(1, "dd"), "forced": false, "run": null,
            "out_of_band": true, "state_diff": {"added": ["terraform_data.d"], "removed": [],
            "changed": []}}),
            vec![],
        ),
        // 6: a second run that never ends
        rec(
            "terraform.apply.intent",
            "bob",
            &t(6),
            json!({"context": ctx}),
        ),
        // 7: a refused write with a stale serial
        state_rec(
            "terraform.state.refused",
            &t(7),
            json!({"state": "team/prod",
            "operation": "write", "status": 409, "reason": "serial 0 is older than 1",
            "lock": lock("L2"), "sent": fp(0, "bb")}),
            vec![],
        ),
        // 8: force-unlock of L2
        state_rec(
            "terraform.state.force_unlock",
            &t(8),
            json!({"state": "team/prod",
            "lock": lock("L2"), "requested_id": ""}),
            vec![],
        ),
        // 9: delete
        state_rec(
            "terraform.state.delete",
            &t(9),
            json!({"state": "team/prod", "lock": null,
            "before": fp(1, "aa"), "after": {"present": false}, "run": null, "out_of_band": true,
            "state_diff": {"added": [], "removed": ["terraform_data.a", "terraform_data.r"],
                           "changed": []}}),
            vec![],
        ),
        // 10: an intent without a state address, and one naming no valid state
        rec(
            "terraform.apply.intent",
            "carol",
            &t(10),
            json!({"context": {"dir": ".", "workspace": "default", "backend": "local"}}),
        ),
        rec(
            "terraform.apply.intent",
            "carol",
            &t(11),
            json!({"context": {"backend": "http",
            "state_address": "https://tftrail.example/other/x"}}),
        ),
        // 12: its outcome ends no run
        rec(
            "terraform.apply.outcome",
            "carol",
            &t(12),
            json!({"intent_index": 11, "outcome": "success"}),
        ),
        // 13: a kind this version does not know, and a bad name
        state_rec(
            "terraform.state.frobnicate",
            &t(13),
            json!({"state": "team/prod"}),
            vec![],
        ),
        state_rec(
            "terraform.state.write",
            &t(14),
            json!({"state": "../etc", "after": fp(1, "ee")}),
            vec![],
        ),
        // 15, 16: `tftrail run terraform state rm …` on the server-backed workspace: a run
        // (its kinds start like the server's), ended by its outcome
        rec(
            "terraform.state.intent",
            "dave",
            &t(15),
            json!({"context": ctx}),
        ),
        rec(
            "terraform.state.outcome",
            "dave",
            &t(16),
            json!({"context": ctx, "intent_index": 15, "outcome": "success"}),
        ),
    ]
}

#[test]
fn state_events_of_every_kind_are_indexed() {
    let f = fixture();
    f.append(state_records());
    let (ix, _) = f.open();
    let ns = |s: u32| time_ns(&format!("2026-03-01T10:00:{s:02}Z"));
    let ev = |index: u64, event: &str| StateEvent {
        index,
        name: "team/prod".into(),
        event: event.into(),
        lock_id: None,
        sha256: None,
        serial: None,
        lineage: None,
        intent_index: None,
        time_ns: ns(index as u32),
    };
    let l1 = Some("L1".to_string());
    let l2 = Some("L2".to_string());
    assert_eq!(
        ix.state_events("team/prod").unwrap(),
        vec![
            StateEvent {
                intent_index: Some(0),
                ..ev(0, "run")
            },
            StateEvent {
                lock_id: l1.clone(),
                intent_index: Some(0),
                ..ev(1, "lock")
            },
            StateEvent {
                lock_id: l1.clone(),
                sha256: Some("aa".into()),
                serial: Some(1),
                lineage: Some("lin-1".into()),
                intent_index: Some(0),
                ..ev(2, "write")
            },
            StateEvent {
                lock_id: l1,
                ..ev(3, "unlock")
            },
            StateEvent {
                intent_index: Some(0),
                ..ev(4, "run_end")
            },
            StateEvent {
                intent_index: Some(6),
                ..ev(6, "run")
            },
            StateEvent {
                lock_id: l2.clone(),
                sha256: Some("bb".into()),
                serial: Some(0),
                lineage: Some("lin-1".into()),
                ..ev(7, "refused")
            },
            StateEvent {
                lock_id: l2,
                ..ev(8, "force_unlock")
            },
            ev(9, "delete"),
            StateEvent {
                intent_index: Some(15),
                ..ev(15, "run")
            },
            StateEvent {
                intent_index: Some(15),
                ..ev(16, "run_end")
            },
        ]
    );
    let dev = ix.state_events("team/dev").unwrap();
    assert_eq!(dev.len(), 1);
    assert_eq!(
        (
            dev[0].index,
            dev[0].event.as_str(),
            dev[0].sha256.as_deref(),
            dev[0].intent_index
        ),
        (5, "write", Some("dd"), None)
    );
    assert_eq!(ix.state_names().unwrap(), ["team/dev", "team/prod"]);
    assert!(ix.state_events("../etc").unwrap().is_empty());
    assert!(ix.state_events("x").unwrap().is_empty());

    // The first run ended (its outcome is in); the second did not.
    let open: Vec<u64> = ix.open_runs(0).unwrap().iter().map(|e| e.index).collect();
    assert_eq!(open, [6]);
    assert_eq!(ix.open_runs(ns(6).unwrap()).unwrap().len(), 1);
    assert!(ix.open_runs(ns(6).unwrap() + 1).unwrap().is_empty());
}

#[test]
fn open_runs_close_when_their_outcome_arrives_later() {
    let f = fixture();
    let all = state_records();
    f.append(all[..4].to_vec());
    let (ix, _) = f.open();
    let open: Vec<(u64, String)> = ix
        .open_runs(0)
        .unwrap()
        .into_iter()
        .map(|e| (e.index, e.name))
        .collect();
    assert_eq!(open, [(0, "team/prod".to_string())]);
    drop(ix);
    f.append(all[4..].to_vec());
    let (ix, sync) = f.open();
    assert_eq!(sync, Sync::Extended { from: 4 });
    let open: Vec<u64> = ix.open_runs(0).unwrap().iter().map(|e| e.index).collect();
    assert_eq!(open, [6]);
}

#[test]
fn state_writes_and_deletes_are_resource_changes() {
    let f = fixture();
    let mut entries = state_records();
    // A write whose diff was too big for the record: moved to a blob, put back by the index.
    let mut payload = json!({"state": "team/big", "lock": null, "before": {"present": false},
        "after": fp(1, "ff"), "forced": false, "run": null, "out_of_band": true,
        "state_diff": {"added": ["terraform_data.big"], "removed": [], "changed": [],
                       "serial": [null, 1], "lineage_changed": false,
                       "values": [{"address": "terraform_data.big", "change": "added",
                                   "attributes": [{"path": "input", "before": null,
                                                   "after": "x".repeat(5000)}]}]}});
    let moved = deflate(&mut payload, &|p| p.to_string().len() < 4096);
    assert_eq!(moved.len(), 1);
    let blobs: Vec<tftrail_log::Blob> = moved
        .into_iter()
        .map(|(name, data)| tftrail_log::Blob { name, data })
        .collect();
    entries.push(state_rec(
        "terraform.state.write",
        "2026-03-01T10:01:00Z",
        payload,
        blobs.iter().map(|b| b.reference()).collect(),
    ));
    f.log
        .append(&f.key, entries, &blobs, &mut |_, _| {})
        .unwrap();
    let (ix, _) = f.open();
    let acts = |a: &str| -> Vec<(u64, String, Vec<String>)> {
        ix.history(a)
            .unwrap()
            .into_iter()
            .map(|c| (c.index, c.action, c.paths))
            .collect()
    };
    assert_eq!(
        acts("terraform_data.a"),
        [(2, "create".into(), vec![]), (9, "delete".into(), vec![])]
    );
    assert_eq!(
        acts("terraform_data.r"),
        [
            (2, "replace".into(), vec!["id".into(), "output".into()]),
            (9, "delete".into(), vec![])
        ]
    );
    assert_eq!(
        acts("terraform_data.u"),
        [(2, "update".into(), vec!["input.region".into()])]
    );
    assert_eq!(acts("terraform_data.d"), [(5, "create".into(), vec![])]);
    assert_eq!(acts("terraform_data.big"), [(17, "create".into(), vec![])]);
    // Described with its values, put back from the blob.
    let cp = f.log.head().unwrap().checkpoint;
    let d = describe_history(&ix, &f.log, &cp, "terraform_data.big").unwrap();
    assert_eq!(
        d[0]["values"],
        json!([{"path": "input", "before": null, "after": "x".repeat(5000)}])
    );
    // A change whose record has no values: none.
    let d = describe_history(&ix, &f.log, &cp, "terraform_data.d").unwrap();
    assert_eq!(d[0]["values"], json!([]));
    let h = ix.history("terraform_data.a").unwrap();
    assert_eq!(h[0].state_change.as_deref(), Some("added"));
    // A filter by resource finds the server's records too.
    assert_eq!(
        ix.find(&Filter {
            resource: Some("terraform_data.a".into()),
            ..Default::default()
        })
        .unwrap(),
        vec![9, 2]
    );
}

#[test]
fn an_index_of_schema_2_is_rebuilt_with_state_events() {
    let f = fixture();
    f.append(state_records());
    let (ix, _) = f.open();
    // What version 2 looked like: no state events.
    ix.conn
        .execute_batch(
            "UPDATE meta SET v = '2' WHERE k = 'schema'; DROP TABLE state_events;
             DELETE FROM resource_changes WHERE idx IN (2, 5, 9);",
        )
        .unwrap();
    drop(ix);
    let (ix, sync) = f.open();
    assert_eq!(sync, Sync::Rebuilt("another index schema".into()));
    assert_eq!(ix.state_events("team/prod").unwrap().len(), 11);
    assert_eq!(ix.history("terraform_data.d").unwrap().len(), 1);
    assert_eq!(ix.open_runs(0).unwrap().len(), 1);
}

#[test]
fn state_names_from_addresses() {
    for (addr, want) in [
        ("https://tftrail.example/state/team/prod", Some("team/prod")),
        ("http://127.0.0.1:8080/state/a", Some("a")),
        ("https://h/base/path/state/x.y_z-1/w", Some("x.y_z-1/w")),
        ("https://h/state/team/prod?lock=1#frag", Some("team/prod")),
        ("https://h/state/state/x", Some("state/x")),
        ("https://h/state/", None),
        ("https://h/state/team/", None),
        ("https://h/state/team//prod", None),
        ("https://h/state/team/../prod", None),
        ("https://h/state/./prod", None),
        ("https://h/state/te%20am", None),
        ("https://h/states/x", None),
        ("https://state/x", None),
        ("/state/x", None),
        ("", None),
    ] {
        assert_eq!(state_name_from_address(addr).as_deref(), want, "{addr}");
    }
    let long = "a".repeat(MAX_STATE_NAME_BYTES);
    assert!(valid_state_name(&long));
    assert!(!valid_state_name(&format!("{long}b")));
    assert!(valid_state_name("a/b/c"));
    for bad in ["", "/a", "a/", "a b", "a\\b", "..", "ä"] {
        assert!(!valid_state_name(bad), "{bad:?}");
    }
}
