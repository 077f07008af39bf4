#![allow(clippy::unwrap_used)] // a test fails by panicking

use super::*;

fn config() -> Approval {
    Approval {
        timeout: Duration::from_secs(60),
        max_pending: 2,
        max_per_minute: 3,
        ..Approval::default()
    }
}

fn request(argv: &[&str]) -> NewRequest {
    NewRequest {
        info: RequestInfo {
            id: String::new(),
            session: "0123456789abcdef".into(),
            identity: "spiffe://x".into(),
            profile: "p".into(),
            intent: Some("ship it".into()),
            tool: "git".into(),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            cwd: "/w".into(),
            secrets: vec!["GITHUB_TOKEN".into()],
            rule: "tools.git.approve[0]".into(),
            risk: None,
            pid: 7,
            requested_at: "t".into(),
            expires_in_s: 0,
        },
        rule_key: ("approve", 0),
        args: argv.iter().map(|s| s.as_bytes().to_vec()).collect(),
    }
}

fn answer(approve: bool, who: &str, grant: GrantSpec) -> Answer {
    Answer {
        approve,
        grant,
        approver: who.into(),
        reason: None,
        at: "t".into(),
    }
}

#[test]
fn ids_name_the_session_and_the_first_answer_wins() {
    let q = Queue::new(config(), "0123456789abcdef");
    let p = q.open(request(&["push"])).unwrap();
    assert_eq!(p.info.id, "01234567-1");
    assert_eq!(q.list().len(), 1);
    assert!(q.find("01234567-1").is_some());
    assert!(p.answer(answer(false, "hook:/bin/ask", GrantSpec::default())));
    assert!(
        !p.answer(answer(true, "uid 0 (root)", GrantSpec::default())),
        "too late"
    );
    assert_eq!(p.wait(Duration::ZERO).unwrap().approver, "hook:/bin/ask");
    assert!(!p.close().unwrap().approve);
    q.finish(&p, None);
    assert!(q.list().is_empty() && q.find("01234567-1").is_none());
}

#[test]
fn a_closed_request_takes_no_answer() {
    let q = Queue::new(config(), "s");
    let p = q.open(request(&["push"])).unwrap();
    assert!(p.close().is_none());
    assert!(!p.answer(answer(true, "uid 0", GrantSpec::default())));
    assert!(!p.is_open());
}

#[test]
fn the_limiter_caps_waiting_and_per_minute_requests() {
    let q = Queue::new(config(), "s");
    let a = q.open(request(&["a"])).unwrap();
    let _b = q.open(request(&["b"])).unwrap();
    assert!(matches!(
        q.open(request(&["c"])),
        Err(OpenError::Limit(Over::Pending(2)))
    ));
    a.close();
    q.finish(&a, None);
    let _c = q.open(request(&["c"])).unwrap();
    let err = q.open(request(&["d"])).unwrap_err();
    assert!(err.to_string().starts_with("approval rate limit:"), "{err}");
}

#[test]
fn grants_come_only_from_approvals_wider_than_one_call() {
    let q = Queue::new(config(), "s");
    let args: [&[u8]; 1] = [b"push"];
    let p = q.open(request(&["push"])).unwrap();
    let once = answer(true, "uid 0", GrantSpec::default());
    p.answer(once.clone());
    q.finish(&p, Some(&once));
    assert!(q.covered("git", ("approve", 0), &args).is_none());

    let p = q.open(request(&["push"])).unwrap();
    let denied = answer(
        false,
        "uid 0",
        GrantSpec {
            for_session: true,
            ..GrantSpec::default()
        },
    );
    q.finish(&p, Some(&denied));
    assert!(
        q.covered("git", ("approve", 0), &args).is_none(),
        "a deny grants nothing"
    );

    let p = q.open(request(&["push"])).unwrap();
    let session = answer(
        true,
        "uid 0",
        GrantSpec {
            for_session: true,
            ..GrantSpec::default()
        },
    );
    q.finish(&p, Some(&session));
    let c = q.covered("git", ("approve", 0), &[b"push", b"x"]).unwrap();
    assert_eq!(c.from, p.info.id);
    assert!(q.covered("git", ("approve", 1), &args).is_none());
}
