//! Micro-benchmark of `Policy::decide`: 100 tools × 10 rules (literals,
//! globs, `**`), a set of realistic calls (allowed, approved, denied by a
//! rule, matching nothing), median and p99 nanoseconds per decision.
//!
//! Run: `cargo bench -p cordon --bench policy`. Not part of `cargo test`.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cordon::policy::{Policy, Verdict};
use cordon::profile::{
    ArgvRule, Audit, Divergence, Environment, Filesystem, Limits, Location, Network, Profile,
    Syscalls, Tool, ToolSandbox,
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
        origin: rule(&[]).origin,
    }
}

fn profile() -> Profile {
    let tools: BTreeMap<String, Tool> = (0..100)
        .map(|i| {
            let name = if i == 42 {
                "git".to_string()
            } else {
                format!("tool{i}")
            };
            (name.clone(), tool(name))
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

fn main() {
    let policy = match Policy::compile(&profile()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("bench profile does not compile: {e}");
            std::process::exit(1);
        }
    };
    let calls: Vec<(&str, Vec<&[u8]>, Verdict)> = vec![
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
    for (tool, args, want) in &calls {
        let got = policy.decide(tool, args).verdict;
        if got != *want {
            eprintln!("wrong verdict for {tool} {args:?}: {got:?}, want {want:?}");
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
    println!(
        "policy decide: 100 tools x 10 rules, {} call shapes, {SAMPLES} samples of {BATCH} decisions",
        calls.len()
    );
    println!(
        "median {:.0} ns/decision, p99 {:.0} ns/decision",
        at(500),
        at(990)
    );
}
