//! `cordon learn [--base PROFILE] [--workspace DIR] --output FILE -- CMD [ARGS...]`

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use cordon::host::Host;
use cordon::learn::{looks_like_credential, render::relative_to, Base, Recorder, Setting};
use cordon::process::{Policy, Stops, EXIT_SETUP_FAILED};
use cordon::profile::{Environment, OnViolation, Profile};
use cordon::sandbox::Request;
use cordon::session::{Approvers, Egress, Planned, Start};

use super::run::{fail, session_base, supervised_signals};

#[derive(clap::Args)]
pub struct LearnArgs {
    /// Start from this profile: the learned one extends it and adds only
    /// what the run needed beyond it (each addition is reported).
    #[arg(long)]
    base: Option<PathBuf>,
    /// The agent's workspace, `{workspace}` in the profile (default: the current directory).
    #[arg(long, short)]
    workspace: Option<PathBuf>,
    /// Where to write the profile.
    #[arg(long, short)]
    output: PathBuf,
    /// The profile's name (default: from the output file's name).
    #[arg(long)]
    name: Option<String>,
    /// Replace the output file if it exists.
    #[arg(long)]
    force: bool,
    /// Run the command in its own network namespace behind cordon's proxy,
    /// which allows and records every host, and write `allow_hosts` rules.
    /// Clients that ignore HTTPS_PROXY get no network during the run.
    #[arg(long)]
    hosts: bool,
    /// Give the observed run this variable from cordon's environment (as
    /// `[environment] pass` does), and pass it in the learned profile: the
    /// agent's own settings and its own API key stay the agent's, never a
    /// tool secret. Repeatable.
    #[arg(long = "pass", value_name = "VAR")]
    pass: Vec<String>,
    /// The command to observe, and its arguments.
    #[arg(last = true, required = true)]
    command: Vec<OsString>,
}

/// A valid profile name made from a file name: lower case, `a-z0-9_-`.
fn name_from(output: &Path) -> String {
    let stem = output
        .file_stem()
        .map(|s| s.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let name: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .skip_while(|c| !c.is_ascii_alphanumeric())
        .take(64)
        .collect();
    if name.is_empty() {
        "learned".into()
    } else {
        name
    }
}

pub fn learn(args: LearnArgs) -> ExitCode {
    if args.output.exists() && !args.force {
        return fail(
            format_args!(
                "{} exists; choose another --output or add --force",
                args.output.display()
            ),
            EXIT_SETUP_FAILED,
        );
    }
    let base = match &args.base {
        None => None,
        Some(path) => match cordon::profile::load(path) {
            Ok(p) => Some((p, path.clone())),
            Err(e) => {
                eprintln!("{e}");
                return fail(
                    "the base profile has errors; nothing was run",
                    EXIT_SETUP_FAILED,
                );
            }
        },
    };
    eprintln!(
        "cordon: LEARN MODE: the command runs OBSERVED, NOT CONFINED: no Landlock, no seccomp deny-list, no masks. It can do whatever your user can; only learn from a run you would trust outside cordon."
    );
    let invocation_dir = match std::env::current_dir() {
        Ok(d) => d,
        Err(e) => {
            return fail(
                format_args!("cannot read the current directory: {e}"),
                EXIT_SETUP_FAILED,
            )
        }
    };
    let request = Request {
        workspace: args
            .workspace
            .clone()
            .unwrap_or_else(|| invocation_dir.clone()),
        command: args.command.clone(),
        invocation_dir,
        session_base: session_base(),
        shim: None,
        cache: None,
    };
    let signals = match supervised_signals() {
        Ok(fd) => fd,
        Err(code) => return code,
    };
    for var in &args.pass {
        let ok = var.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && var.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !ok || var == "HOME" || var == "TMPDIR" {
            return fail(
                format_args!(
                    "--pass {}: not a variable name cordon passes ([A-Za-z_][A-Za-z0-9_]*; HOME and TMPDIR are cordon's own)",
                    var.escape_debug()
                ),
                EXIT_SETUP_FAILED,
            );
        }
    }
    let host = Host::probe();
    let mut environment = base
        .as_ref()
        .map_or_else(Environment::default, |(p, _)| p.environment.clone());
    for var in &args.pass {
        if !environment.pass.contains(var) {
            environment.pass.push(var.clone());
        }
    }
    let observed_profile = match &base {
        Some((p, _)) => Arc::new(p.clone()),
        None => match unconfined_profile() {
            Ok(p) => Arc::new(p),
            Err(e) => return fail(e, EXIT_SETUP_FAILED),
        },
    };
    let planned =
        match Planned::observed(observed_profile, &environment, args.hosts, &request, &host) {
            Ok(p) => p,
            Err(e) => return fail(&e, e.exit_code()),
        };
    let values = planned.plan.placeholders.clone();
    let recorder = Arc::new(Recorder::new(vec![
        values.workspace.clone(),
        values.home.clone(),
        values.tmp.clone(),
    ]));
    let egress_log = planned.plan.session.root.join("egress.jsonl");
    let egress = match recording_egress(&egress_log) {
        Ok(e) => e,
        Err(e) => {
            return fail(
                format_args!("cannot set up the recording proxy: {e}"),
                EXIT_SETUP_FAILED,
            )
        }
    };
    let stop_grace = planned.profile.stop_grace;
    let start = Start {
        audit: Arc::clone(&egress.1),
        intent: None,
        argv: Vec::new(),
        io: cordon::process::Io::default(),
        parent: None,
        loud: true,
        approvers: Approvers::default(),
        egress: egress.0,
        control_socket: None,
    };
    let started = match planned.start(start) {
        Ok(s) => s,
        Err(e) => return fail(&e, e.exit_code()),
    };
    let policy = Policy {
        observer: Some(recorder.clone()),
        on_violation: OnViolation::Kill,
        stop_grace,
        exec: None,
        deadline: None,
        loud: true,
        net: None,
        notices: None,
    };
    let outcome = match started.supervise(Stops::Signals(&signals), policy) {
        Ok(o) => o,
        Err(e) => return fail(e, EXIT_SETUP_FAILED),
    };
    if let Some(message) = outcome.message(&started.plan.confined, &started.plan.command) {
        eprintln!("cordon: {message}");
    }
    let status = outcome.exit_code();
    if status != 0 {
        eprintln!("cordon: learn: the command exited with status {status}; the profile covers only what it did before that");
    }
    let hosts = args.hosts;
    let ended = started.finish(&outcome);
    let mut observations = recorder.take();
    if hosts {
        observations.hosts = hosts_seen(&egress_log);
    }

    // Credentials are recognised by name; their values are only used to
    // keep them out of what is written. A passed one is the agent's own
    // (its model key): passed again, never made a tool's secret.
    let mut secrets = Vec::new();
    let mut redact = Vec::new();
    for (k, v) in std::env::vars_os() {
        let Some(k) = k.to_str().filter(|k| looks_like_credential(k)) else {
            continue;
        };
        if let Some(v) = v.to_str().filter(|v| v.len() >= 4) {
            redact.push(v.to_string());
        }
        // cordon's own variables (CORDON_*) and the loader's cannot be
        // secrets: writing one would make a profile that fails its check.
        if !environment.pass.iter().any(|p| p == k) && cordon::profile::is_secret_name(k) {
            secrets.push(k.to_string());
        }
    }
    secrets.sort();
    let name = args.name.clone().unwrap_or_else(|| name_from(&args.output));
    let out_dir = args
        .output
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let out_dir = std::fs::canonicalize(&out_dir).unwrap_or(out_dir);
    let base_setting = base.as_ref().map(|(profile, path)| Base {
        profile,
        extends: relative_to(
            &std::fs::canonicalize(path).unwrap_or_else(|_| path.clone()),
            &out_dir,
        ),
    });
    let command: Vec<String> = args
        .command
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let learned = cordon::learn::write_profile(
        &observations,
        &Setting {
            name: &name,
            command: &command,
            values: &values,
            base: base_setting,
            secrets: &secrets,
            redact: &redact,
            pass: &args.pass,
        },
    );
    drop(ended);
    if let Err(e) = write_atomically(&args.output, learned.text.as_bytes()) {
        return fail(
            format_args!("cannot write {}: {e}", args.output.display()),
            EXIT_SETUP_FAILED,
        );
    }
    for a in &learned.additions {
        eprintln!("cordon: learned: + {a}");
    }
    // The profile must pass the same check as any other.
    if let Err(e) = cordon::profile::load(&args.output) {
        eprintln!("{e}");
        return fail(
            format_args!("the learned profile {} does not pass `cordon check` (a bug in cordon learn; please report it)", args.output.display()),
            1,
        );
    }
    eprintln!(
        "cordon: learned profile `{name}` written to {} ({} additions); check it, then: cordon run --profile {} -- ...",
        args.output.display(),
        learned.additions.len(),
        args.output.display()
    );
    if status == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(status)
    }
}

/// The profile an observed run starts from without `--base`: it grants
/// nothing and is never enforced (only its defaults are used).
fn unconfined_profile() -> Result<Profile, String> {
    cordon::profile::load_text(Path::new("<cordon learn>"), "[profile]\nname = \"learn\"\n")
        .map_err(|e| e.to_string())
}

/// The egress of an observed run: every host allowed (internal addresses
/// too: the run is not confined anyway), each connection recorded in a
/// log of the session's own.
fn recording_egress(log: &Path) -> Result<(Egress, Arc<cordon::audit::AuditLog>), String> {
    use cordon::profile::hosts::parse_rule;
    let origin = cordon::profile::Location::whole_file(Path::new("<cordon learn>"));
    let allow: Vec<_> = ["*:* via 0.0.0.0/0, ::/0", "0.0.0.0/0:*", "[::/0]:*"]
        .into_iter()
        .map(|r| parse_rule(r, origin.clone()))
        .collect::<Result<_, _>>()?;
    let audit = Arc::new(cordon::audit::AuditLog::open(log).map_err(|e| e.to_string())?);
    let egress = Egress::Custom {
        rules: cordon::egress::Rules::new(&allow, &[], "learn"),
        audit: Arc::clone(&audit),
    };
    Ok((egress, audit))
}

/// The hosts the recording proxy let through.
fn hosts_seen(log: &Path) -> std::collections::BTreeSet<cordon::learn::HostSeen> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut out = std::collections::BTreeSet::new();
    for line in text.lines() {
        let Ok(rec) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if rec["kind"] != "connect" || rec["decision"] != "allow" {
            continue;
        }
        let (Some(host), Some(port)) = (rec["host"].as_str(), rec["port"].as_u64()) else {
            continue;
        };
        let internal = rec["address"]
            .as_str()
            .unwrap_or("")
            .split_whitespace()
            .filter_map(|a| a.parse::<std::net::IpAddr>().ok())
            .filter(|ip| cordon::egress::address::internal_kind(*ip).is_some())
            .collect();
        if let Ok(port) = u16::try_from(port) {
            out.insert(cordon::learn::HostSeen {
                host: host.to_string(),
                port,
                internal,
            });
        }
    }
    out
}

/// Writes `bytes` to `path` through a temporary file in the same
/// directory, so a reader never sees half a profile.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let file = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file}.cordon-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
