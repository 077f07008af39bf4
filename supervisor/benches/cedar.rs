//! Micro-benchmark of a Cedar decision: 100 policies (forbids on argument
//! shapes, permits scoped by profile, tool, server and hour, some with
//! `@approve`), a set of exec and MCP requests, median and p99
//! microseconds per decision. A decision here is what the broker pays:
//! building the request from the call, evaluating, combining with the
//! TOML verdict.
//!
//! Run: `cargo bench -p cordon --bench cedar`. Not part of `cargo test`.

use std::hint::black_box;
use std::time::Instant;

use cordon::policy::cedar::{combine, Answer, Engine, Principal, Request, Unmatched};
use cordon::policy::Verdict;

/// 100 policies, 25 of each of four shapes.
fn policies() -> String {
    let mut out = String::new();
    for i in 0..25 {
        out.push_str(&format!(
            "@id(\"no-force-{i}\")\nforbid (principal, action == Cordon::Action::\"exec\", resource == Cordon::Tool::\"tool{i}\")\nwhen {{ context.args.contains(\"--force\") || context.argv like \"*--delete*\" }};\n"
        ));
        out.push_str(&format!(
            "@id(\"team-{i}\")\npermit (principal in Cordon::Profile::\"team{i}\", action, resource)\nwhen {{ context.hour_utc >= 6 && context.hour_utc <= 20 }};\n"
        ));
        out.push_str(&format!(
            "@id(\"ask-writes-{i}\")\n@approve(\"writes outside the workspace\")\npermit (principal, action == Cordon::Action::\"mcp_call\", resource == Cordon::McpTool::\"srv{i}/write_file\")\nwhen {{ !(context.argv like \"*\\\"path\\\":\\\"/ws/*\") }};\n"
        ));
        out.push_str(&format!(
            "@id(\"intent-{i}\")\nforbid (principal, action, resource in Cordon::McpServer::\"srv{i}\")\nwhen {{ context.intent like \"*exfiltrate*\" || principal.depth > 3 }};\n"
        ));
    }
    out
}

/// 100 policies with no scope at all (`principal, action, resource`):
/// the worst case, where every request is evaluated against all of them.
fn unscoped() -> String {
    let mut out = String::new();
    for i in 0..100 {
        out.push_str(&format!(
            "@id(\"u{i}\")\nforbid (principal, action, resource)\nwhen {{ context.argv like \"*--danger-{i}*\" || context.intent == \"x{i}\" }};\n"
        ));
    }
    out
}

fn main() {
    worst_case();
    let engine = match Engine::compile("bench.cedar", &policies()) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("bench policies do not compile: {e:#?}");
            std::process::exit(1);
        }
    };
    assert_eq!(engine.len(), 100);
    let chain: Vec<String> = vec!["root-session".into()];
    let principal = |profile: &'static str| Principal {
        session: "0123456789abcdef0123456789abcdef",
        profile,
        intent: Some("fix the failing test in the parser"),
        chain: &chain,
    };
    let args = serde_json::json!({"path": "/ws/src/main.rs", "content": "fn main() {}"});
    // The canonical forms the tools' grammars would give (`-f` is
    // `--force`, `-sb` is `--short --branch`).
    let forced: Vec<Vec<u8>> = ["push", "--force", "origin", "main"]
        .map(|a| a.as_bytes().to_vec())
        .to_vec();
    let status: Vec<Vec<u8>> = ["status", "--short", "--branch"]
        .map(|a| a.as_bytes().to_vec())
        .to_vec();
    let outside = serde_json::json!({"path": "/etc/cron.d/x", "content": "* * * * * root sh"});
    let cases: Vec<Case<'_>> = vec![
        (
            "exec forbidden",
            Box::new(|| {
                Request::exec(
                    principal("team3"),
                    "tool3",
                    &[b"push", b"-f", b"origin", b"main"],
                    Some(&forced),
                    "/ws",
                )
                .decided(Verdict::Allow, "tools.tool3.allow[0]".into(), None)
            }),
            |a| matches!(a, Answer::Forbid { .. }),
        ),
        (
            "exec permitted or unmatched",
            Box::new(|| {
                Request::exec(
                    principal("team3"),
                    "tool3",
                    &[b"status", b"-sb"],
                    Some(&status),
                    "/ws",
                )
                .decided(Verdict::Allow, "tools.tool3.allow[0]".into(), None)
            }),
            |a| matches!(a, Answer::Permit { .. } | Answer::NoMatch),
        ),
        (
            "mcp write outside: approve",
            Box::new(|| {
                Request::mcp_call(principal("other"), "srv7/write_file", &outside).decided(
                    Verdict::Allow,
                    "mcp.srv7.tools.write_file.allow[0]".into(),
                    None,
                )
            }),
            |a| matches!(a, Answer::Permit { approve: true, .. }),
        ),
        (
            "mcp write inside: unmatched",
            Box::new(|| {
                Request::mcp_call(principal("other"), "srv7/write_file", &args).decided(
                    Verdict::Allow,
                    "mcp.srv7.tools.write_file.allow[0]".into(),
                    None,
                )
            }),
            |a| matches!(a, Answer::NoMatch),
        ),
    ];
    for (name, make, ok) in &cases {
        let a = engine.evaluate(&make());
        if !ok(&a) {
            eprintln!("{name}: unexpected answer {a:?}");
            std::process::exit(1);
        }
    }
    let all: Vec<&Case<'_>> = cases.iter().collect();
    let (median, p99) = measure(&engine, &all);
    println!(
        "cedar decision: 100 policies, {} request shapes, {SAMPLES} samples of {BATCH} decisions",
        cases.len()
    );
    println!("median {median:.1} us/decision, p99 {p99:.1} us/decision");
    // The exec path alone: its two shapes (argv exact and canonical).
    let exec: Vec<&Case<'_>> = cases.iter().filter(|c| c.0.starts_with("exec")).collect();
    let (median, p99) = measure(&engine, &exec);
    println!(
        "exec path: {} shapes, median {median:.1} us/decision, p99 {p99:.1} us/decision",
        exec.len()
    );
}

const BATCH: u32 = 50;
const SAMPLES: usize = 2000;

type Case<'a> = (
    &'a str,
    Box<dyn Fn() -> Request<'a> + 'a>,
    fn(&Answer) -> bool,
);

/// Median and p99 microseconds per decision over `cases` in turn.
fn measure(engine: &Engine, cases: &[&Case<'_>]) -> (f64, f64) {
    let mut per: Vec<f64> = Vec::with_capacity(SAMPLES);
    for s in 0..SAMPLES {
        let (_, make, _) = cases[s % cases.len()];
        let start = Instant::now();
        for _ in 0..BATCH {
            let req = make();
            let answer = engine.evaluate(black_box(&req));
            black_box(combine(Verdict::Allow, Some(&answer), Unmatched::Toml));
        }
        per.push(start.elapsed().as_nanos() as f64 / f64::from(BATCH) / 1000.0);
    }
    per.sort_by(f64::total_cmp);
    let at = |per_mille: usize| per[(per.len() - 1) * per_mille / 1000];
    (at(500), at(990))
}

fn worst_case() {
    let engine = match Engine::compile("unscoped.cedar", &unscoped()) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("unscoped policies do not compile: {e:#?}");
            std::process::exit(1);
        }
    };
    let chain: Vec<String> = vec![];
    let principal = Principal {
        session: "0123456789abcdef0123456789abcdef",
        profile: "p",
        intent: Some("fix the failing test in the parser"),
        chain: &chain,
    };
    let mut per: Vec<f64> = Vec::with_capacity(500);
    for _ in 0..500 {
        let start = Instant::now();
        for _ in 0..10 {
            let req = Request::exec(principal, "git", &[b"status"], None, "/ws");
            black_box(engine.evaluate(black_box(&req)));
        }
        per.push(start.elapsed().as_nanos() as f64 / 10.0 / 1000.0);
    }
    per.sort_by(f64::total_cmp);
    println!(
        "cedar worst case: 100 unscoped policies (all evaluated), median {:.1} us/decision",
        per[per.len() / 2]
    );
}
