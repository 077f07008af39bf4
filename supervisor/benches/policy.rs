//! Micro-benchmark of `Policy::decide`: 100 tools × 10 rules (literals,
//! globs, `**`), a set of realistic calls (allowed, approved, denied by a
//! rule, matching nothing), median and p99 nanoseconds per decision; then
//! the same with every tool canonicalising its argv with the shipped git
//! grammar (and an option rule for `-c`), over calls spelled the ways
//! agents and attackers spell them.
//!
//! Run: `cargo bench -p cordon --bench policy`. Not part of `cargo test`.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cordon::policy::{Policy, Verdict};
use cordon::profile::{
    shipped_grammar, ArgvRule, Audit, Divergence, Environment, Filesystem, Limits, Location,
    Network, OptionRule, Profile, Syscalls, Tool, ToolGrammar, ToolSandbox, Unknown,
};

fn rule(tokens: &[&str]) -> ArgvRule {
    ArgvRule {
        tokens: tokens.iter().map(|s| s.to_string()).collect(),
        examples_match: Vec::new(),
        examples_no_match: Vec::new(),
        risk: None,
        pre_approved: false,
        origin: Location {
            file: Arc::from(Path::new("bench.toml")),
            line: 1,
            column: 1,
        },
    }
}

/// Ten rules shaped like the git rules of profiles/coding-agent.toml.
fn tool(name: String) -> Tool {
    Tool {
        name: name.clone(),
        path: PathBuf::from("/usr/bin/git"),
        allow: vec![
            rule(&["status", "**"]),
            rule(&["diff", "**"]),
            rule(&["log", "**"]),
            rule(&["commit", "-m", "*"]),
            rule(&["switch", "feature/*"]),
            rule(&["add", "**"]),
        ],
        approve: vec![rule(&["push", "**"])],
        deny: vec![
            rule(&["push", "**", "-[!-]*f*", "**"]),
            rule(&["push", "**", "--force*", "**"]),
            rule(&["**", "-c", "**"]),
        ],
        timeout: None,
        max_calls: None,
        env: Vec::new(),
        secrets: Vec::new(),
        sandbox: ToolSandbox::default(),
        grammar: None,
        origin: rule(&[]).origin,
    }
}

/// Ten rules in the canonical form of the git grammar, which the tool
/// declares, with the `-c` values agents send accepted.
fn grammar_tool(name: String) -> Tool {
    let grammar = match shipped_grammar("git") {
        Some(Ok(g)) => g,
        _ => {
            eprintln!("the shipped git grammar does not parse");
            std::process::exit(1);
        }
    };
    let origin = rule(&[]).origin;
    Tool {
        allow: vec![
            rule(&["status", "**"]),
            rule(&["diff", "**"]),
            rule(&["log", "**"]),
            rule(&["commit", "--message=*"]),
            rule(&["switch", "feature/*"]),
            rule(&["add", "**"]),
        ],
        approve: vec![rule(&["push", "**"])],
        deny: vec![
            rule(&["push", "**", "--force", "**"]),
            rule(&["push", "**", "--delete", "**"]),
            rule(&["**", "--upload-pack=*", "**"]),
        ],
        grammar: Some(ToolGrammar {
            grammar,
            shipped: Some("git".into()),
            unknown: Unknown::Deny,
            unknown_origin: origin.clone(),
            options: vec![OptionRule {
                scope: String::new(),
                option: "-c".into(),
                allow: vec!["core.hooksPath=/dev/null".into(), "core.fsmonitor=".into()],
                approve: Vec::new(),
                neutral: false,
                origin: origin.clone(),
            }],
            origin,
        }),
        ..tool(name)
    }
}

fn profile(make: fn(String) -> Tool) -> Profile {
    let tools: BTreeMap<String, Tool> = (0..100)
        .map(|i| {
            let name = if i == 42 {
                "git".to_string()
            } else {
                format!("tool{i}")
            };
            (name.clone(), make(name))
        })
        .collect();
    Profile {
        source: PathBuf::from("bench.toml"),
        name: "bench".into(),
        description: None,
        best_effort: false,
        stop_grace: Duration::from_secs(5),
        filesystem: Filesystem::default(),
        network: Network::default(),
        syscalls: Syscalls::default(),
        divergence: Divergence::default(),
        environment: Environment::default(),
        limits: Limits::default(),
        tools,
        secrets: Default::default(),
        audit: Audit::default(),
        approval: Default::default(),
        mcp: Default::default(),
        policy: Default::default(),
    }
}

type Call<'a> = (&'a str, Vec<&'a [u8]>, Verdict);

/// Median and p99 nanoseconds per decision over `calls`.
fn measure(policy: &Policy, calls: &[Call<'_>]) -> (f64, f64) {
    for (tool, args, want) in calls {
        let d = policy.decide(tool, args);
        if d.verdict != *want {
            eprintln!(
                "wrong verdict for {tool} {args:?}: {:?}, want {want:?} ({})",
                d.verdict, d.reason
            );
            std::process::exit(1);
        }
    }
    const BATCH: u32 = 1000;
    const SAMPLES: usize = 2000;
    let mut per_call: Vec<f64> = Vec::with_capacity(SAMPLES);
    for s in 0..SAMPLES {
        let (tool, args, _) = &calls[s % calls.len()];
        let start = Instant::now();
        for _ in 0..BATCH {
            black_box(policy.decide(black_box(tool), black_box(args)));
        }
        per_call.push(start.elapsed().as_nanos() as f64 / f64::from(BATCH));
    }
    per_call.sort_by(f64::total_cmp);
    // Index of the q-quantile, in per-mille to stay in integers.
    let at = |per_mille: usize| per_call[(per_call.len() - 1) * per_mille / 1000];
    (at(500), at(990))
}

fn compile(p: &Profile) -> Policy {
    match Policy::compile(p) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("bench profile does not compile: {e}");
            std::process::exit(1);
        }
    }
}

fn main() {
    let policy = compile(&profile(tool));
    let calls: Vec<Call> = vec![
        ("git", vec![b"status"], Verdict::Allow),
        ("git", vec![b"diff", b"--stat", b"HEAD~3"], Verdict::Allow),
        (
            "git",
            vec![b"commit", b"-m", b"fix the parser"],
            Verdict::Allow,
        ),
        ("git", vec![b"switch", b"feature/policy"], Verdict::Allow),
        ("git", vec![b"push", b"origin", b"main"], Verdict::Approve),
        (
            "git",
            vec![b"push", b"-uf", b"origin", b"main"],
            Verdict::Deny,
        ),
        (
            "git",
            vec![b"push", b"origin", b"main", b"--force-with-lease"],
            Verdict::Deny,
        ),
        ("git", vec![b"-c", b"core.pager=sh", b"log"], Verdict::Deny),
        ("git", vec![b"rebase", b"-i", b"HEAD~2"], Verdict::Deny),
        (
            "tool7",
            vec![b"log", b"--oneline", b"-n", b"20"],
            Verdict::Allow,
        ),
        ("nosuch", vec![b"status"], Verdict::Deny),
    ];
    let (median, p99) = measure(&policy, &calls);
    println!(
        "policy decide: 100 tools x 10 rules, {} call shapes, 2000 samples of 1000 decisions",
        calls.len()
    );
    println!("median {median:.0} ns/decision, p99 {p99:.0} ns/decision");

    let policy = compile(&profile(grammar_tool));
    let calls: Vec<Call> = vec![
        ("git", vec![b"status", b"-sb"], Verdict::Allow),
        (
            "git",
            vec![
                b"-c",
                b"core.hooksPath=/dev/null",
                b"-c",
                b"core.fsmonitor=",
                b"status",
                b"--porcelain",
            ],
            Verdict::Allow,
        ),
        ("git", vec![b"diff", b"--stat", b"HEAD~3"], Verdict::Allow),
        (
            "git",
            vec![b"commit", b"-m", b"fix the parser"],
            Verdict::Allow,
        ),
        ("git", vec![b"switch", b"feature/policy"], Verdict::Allow),
        ("git", vec![b"push", b"origin", b"main"], Verdict::Approve),
        (
            "git",
            vec![b"push", b"-uf", b"origin", b"main"],
            Verdict::Deny,
        ),
        (
            "git",
            vec![b"push", b"--del", b"origin", b"old"],
            Verdict::Deny,
        ),
        (
            "git",
            vec![b"fetch", b"--upl", b"sh", b"origin"],
            Verdict::Deny,
        ),
        ("git", vec![b"-c", b"core.pager=sh", b"log"], Verdict::Deny),
        ("git", vec![b"push", b"--fo"], Verdict::Deny),
        (
            "tool7",
            vec![b"log", b"--oneline", b"-n", b"20"],
            Verdict::Allow,
        ),
        ("nosuch", vec![b"status"], Verdict::Deny),
    ];
    let (median, p99) = measure(&policy, &calls);
    println!(
        "with the git grammar: 100 tools x 10 rules, {} call shapes, 2000 samples of 1000 decisions",
        calls.len()
    );
    println!(
        "median {median:.0} ns/decision, p99 {p99:.0} ns/decision (canonicalisation included)"
    );
}
