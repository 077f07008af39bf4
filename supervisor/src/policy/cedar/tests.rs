// Tests may panic on a broken fixture: that is how they fail.
#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::*;
use crate::policy::Verdict;
use crate::profile::Risk;

fn principal<'a>(chain: &'a [String]) -> Principal<'a> {
    Principal {
        session: "s1",
        profile: "coding-agent",
        intent: Some("fix the build"),
        chain,
    }
}

fn exec<'a>(chain: &'a [String], args: &[&[u8]], toml: Verdict) -> Request<'a> {
    Request::exec(principal(chain), "git", args, None, "/ws").decided(
        toml,
        "tools.git.allow[0]".into(),
        None,
    )
}

fn engine(text: &str) -> Engine {
    Engine::compile("p.cedar", text).unwrap_or_else(|e| panic!("{e:#?}"))
}

#[test]
fn our_requests_conform_to_the_schema() {
    // Built with the schema (which the engine skips for speed), so a
    // mismatch between request.rs and the schema fails here.
    let p = schema::parsed().unwrap();
    let chain = vec!["root".to_string()];
    let reqs = [
        exec(&chain, &[b"push", b"\xff"], Verdict::Allow),
        Request::mcp_call(
            principal(&chain),
            "fs/write_file",
            &json!({"path": "/ws/a", "n": [1, true]}),
        )
        .decided(Verdict::Approve, "r".into(), Some(Risk::Delete)),
    ];
    for r in reqs {
        let parts = r.parts(p);
        let ctx = r.context(&index::Needed::everything()).unwrap();
        cedar_policy::Request::new(
            parts.principal.clone(),
            parts.action.clone(),
            parts.resource.clone(),
            ctx,
            Some(&p.schema),
        )
        .unwrap();
        let entities = r.entities(&parts).unwrap();
        cedar_policy::Entities::from_entities(entities.iter().cloned(), Some(&p.schema)).unwrap();
    }
    // Scope selection assumes `action in [...]` is membership: no groups.
    assert_eq!(p.schema.action_groups().count(), 0);
}

#[test]
fn forbid_permit_approve_and_nothing() {
    let e = engine(
        r#"
@id("no-force-push")
forbid (principal, action == Cordon::Action::"exec", resource == Cordon::Tool::"git")
when { context.args.contains("--force") };

@id("ask-at-night")
@approve("outside working hours")
permit (principal in Cordon::Profile::"coding-agent", action, resource)
when { context.hour_utc < 6 || context.hour_utc > 20 };

@id("daytime")
permit (principal in Cordon::Profile::"coding-agent", action, resource)
when { context.hour_utc >= 6 && context.hour_utc <= 20 };
"#,
    );
    assert_eq!(e.len(), 3);
    let chain = vec![];
    let r = exec(&chain, &[b"push", b"--force"], Verdict::Allow);
    assert_eq!(
        e.evaluate(&r),
        Answer::Forbid {
            policies: vec!["no-force-push".into()]
        }
    );
    let mut r = exec(&chain, &[b"push"], Verdict::Allow);
    r.time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(3 * 3600);
    assert_eq!(
        e.evaluate(&r),
        Answer::Permit {
            policies: vec!["ask-at-night".into()],
            approve: true
        }
    );
    r.time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(12 * 3600);
    assert_eq!(
        e.evaluate(&r),
        Answer::Permit {
            policies: vec!["daytime".into()],
            approve: false
        }
    );
    // Another profile: nothing holds.
    let mut other = exec(&chain, &[b"push"], Verdict::Allow);
    other.principal.profile = "other";
    assert_eq!(e.evaluate(&other), Answer::NoMatch);
}

#[test]
fn principals_resources_and_context_are_what_the_schema_says() {
    let e = engine(
        r#"
@id("sub-agents-never-write")
forbid (principal in Cordon::Session::"root", action == Cordon::Action::"mcp_call", resource in Cordon::McpServer::"fs")
when { context.argv like "*\"path\":*" && resource == Cordon::McpTool::"fs/write_file" };
@id("intent")
forbid (principal, action, resource) when { principal.depth > 2 || context.intent == "exfiltrate" };
"#,
    );
    let chain = vec!["root".to_string()];
    let write = Request::mcp_call(
        principal(&chain),
        "fs/write_file",
        &json!({"path": "/ws/a"}),
    )
    .decided(Verdict::Allow, String::new(), None);
    assert_eq!(
        e.evaluate(&write),
        Answer::Forbid {
            policies: vec!["sub-agents-never-write".into()]
        }
    );
    let read = Request::mcp_call(principal(&chain), "fs/read_file", &json!({"path": "/ws/a"}))
        .decided(Verdict::Allow, String::new(), None);
    assert_eq!(e.evaluate(&read), Answer::NoMatch);
    // A root session is not in its own chain.
    let root = Request::mcp_call(principal(&[]), "fs/write_file", &json!({"path": "/ws/a"}))
        .decided(Verdict::Allow, String::new(), None);
    assert_eq!(e.evaluate(&root), Answer::NoMatch);
    let deep = vec!["a".to_string(), "b".to_string(), "c".to_string()];
    assert!(matches!(
        e.evaluate(&exec(&deep, &[], Verdict::Allow)),
        Answer::Forbid { .. }
    ));
}

#[test]
fn policy_files_are_checked_with_places() {
    let text = "permit (principal, action, resource)\nwhen { context.nope == 1 };\n\nforbid (principal, action, resource) when { principal.profile == 3 };\n";
    let problems = Engine::compile("p.cedar", text).unwrap_err();
    assert_eq!(problems.len(), 2, "{problems:#?}");
    for p in &problems {
        assert!(p.offset.is_some(), "{p:?}");
    }
    let mut offsets: Vec<usize> = problems.iter().filter_map(|p| p.offset).collect();
    offsets.sort();
    assert!(
        text[offsets[0]..].starts_with("context.nope"),
        "{problems:#?}"
    );
    assert!(text[..offsets[1]].contains("forbid"), "{problems:#?}");
    // Syntax errors too.
    let problems = Engine::compile("p.cedar", "permit (principal, action resource);").unwrap_err();
    assert_eq!(problems[0].offset, Some(26), "{problems:#?}");
    // Entity types and actions outside the schema.
    let problems = Engine::compile(
        "p.cedar",
        "permit (principal == User::\"alice\", action == Cordon::Action::\"delete\", resource);",
    )
    .unwrap_err();
    assert!(problems.len() >= 2, "{problems:#?}");
    // `@approve` on a forbid, and one id twice.
    let problems = Engine::compile("p.cedar", "@approve\nforbid (principal, action, resource);\n@id(\"x\") permit (principal, action, resource);\n@id(\"x\") permit (principal, action, resource);").unwrap_err();
    let msgs: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
    assert!(
        msgs.iter()
            .any(|m| m.contains("`@approve` means nothing on a forbid")),
        "{msgs:#?}"
    );
    assert!(
        msgs.iter().any(|m| m.contains("`x` is used twice")),
        "{msgs:#?}"
    );
    // Ids default to FILE:LINE.
    let e = engine("\n\npermit (principal, action, resource);");
    assert_eq!(
        e.evaluate(&exec(&[], &[], Verdict::Allow)),
        Answer::Permit {
            policies: vec!["p.cedar:3".into()],
            approve: false
        }
    );
}

#[test]
fn a_policy_cannot_widen_a_toml_deny() {
    let e = engine("permit (principal, action, resource);");
    let a = e.evaluate(&exec(&[], &[b"push", b"--force"], Verdict::Allow));
    // TOML said deny: the policy's permit does not matter.
    let c = combine(Verdict::Deny, Some(&a), Unmatched::Toml);
    assert_eq!((c.verdict, c.policies.len()), (Verdict::Deny, 0));
}

#[test]
fn every_combination() {
    let permit = Answer::Permit {
        policies: vec!["p".into()],
        approve: false,
    };
    let ask = Answer::Permit {
        policies: vec!["a".into()],
        approve: true,
    };
    let forbid = Answer::Forbid {
        policies: vec!["f".into()],
    };
    let error = Answer::Error {
        policies: vec!["e".into()],
        message: "overflow".into(),
    };
    let none = Answer::NoMatch;
    use Verdict::{Allow, Approve, Deny};
    // TOML verdict, the policies' answer, `unmatched`: the decision and
    // the policies that made it.
    type Case<'a> = (
        Verdict,
        Option<&'a Answer>,
        Unmatched,
        Verdict,
        &'a [&'a str],
    );
    let cases: [Case<'_>; 14] = [
        (Deny, Some(&permit), Unmatched::Toml, Deny, &[]),
        (Deny, Some(&ask), Unmatched::Toml, Deny, &[]),
        (Allow, Some(&forbid), Unmatched::Toml, Deny, &["f"]),
        (Approve, Some(&forbid), Unmatched::Toml, Deny, &["f"]),
        (Allow, Some(&error), Unmatched::Toml, Deny, &["e"]),
        (Approve, Some(&error), Unmatched::Toml, Deny, &["e"]),
        (Allow, Some(&ask), Unmatched::Toml, Approve, &["a"]),
        (Allow, Some(&permit), Unmatched::Toml, Allow, &["p"]),
        (Approve, Some(&permit), Unmatched::Toml, Approve, &["p"]),
        (Approve, Some(&ask), Unmatched::Toml, Approve, &["a"]),
        (Allow, Some(&none), Unmatched::Toml, Allow, &[]),
        (Approve, Some(&none), Unmatched::Toml, Approve, &[]),
        (Allow, Some(&none), Unmatched::Deny, Deny, &[]),
        (Allow, None, Unmatched::Deny, Allow, &[]),
    ];
    for (toml, answer, unmatched, want, policies) in cases {
        let c = combine(toml, answer, unmatched);
        assert_eq!(c.verdict, want, "{toml:?} {answer:?} {unmatched:?}");
        assert_eq!(c.policies, policies, "{toml:?} {answer:?}");
        assert_eq!(c.reason.is_some(), c.verdict != toml, "{c:?}");
    }
}

#[test]
fn exec_policies_see_the_canonical_form_and_connects_see_host_and_tool() {
    let e = engine(
        r#"
@id("no-force")
forbid (principal, action == Cordon::Action::"exec", resource == Cordon::Tool::"git")
when { context.canonical_args.contains("--force") };
@id("no-pastebin")
forbid (principal, action == Cordon::Action::"connect", resource)
when { context.host like "*.pastebin.example" && context.tool == "" };
@id("token-for-git-only")
forbid (principal, action == Cordon::Action::"secret", resource == Cordon::Secret::"GITHUB_TOKEN")
unless { context.tool == "git" };
"#,
    );
    let chain = vec![];
    // `-f` is `--force` to git, and to the policy.
    let canonical = [b"push".to_vec(), b"--force".to_vec(), b"origin".to_vec()];
    let r = Request::exec(
        principal(&chain),
        "git",
        &[b"push", b"-f", b"origin"],
        Some(&canonical),
        "/ws",
    );
    assert!(matches!(e.evaluate(&r), Answer::Forbid { .. }));
    let r = Request::exec(principal(&chain), "git", &[b"push", b"origin"], None, "/ws");
    assert_eq!(e.evaluate(&r), Answer::NoMatch);
    let agent = Request::connect(principal(&chain), "x.pastebin.example", 443, None);
    assert!(matches!(e.evaluate(&agent), Answer::Forbid { .. }));
    let tool = Request::connect(principal(&chain), "x.pastebin.example", 443, Some("curl"));
    assert_eq!(e.evaluate(&tool), Answer::NoMatch);
    let expose = Request::secret(principal(&chain), "GITHUB_TOKEN", None);
    assert!(matches!(e.evaluate(&expose), Answer::Forbid { .. }));
    let git = Request::secret(principal(&chain), "GITHUB_TOKEN", Some("git"));
    assert_eq!(e.evaluate(&git), Answer::NoMatch);
}
