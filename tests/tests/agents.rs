//! The real agent CLIs (Claude Code, Codex, Gemini CLI), installed from npm
//! by `scripts/install-agent-clis.sh`, each driven through a scripted
//! session by `cordon-model-server` under its shipped profile
//! (profiles/claude-code.toml, codex.toml, gemini-cli.toml), extended only
//! by what the test setup adds: where the CLIs are installed, the model
//! server's address (as the host of the model key, too), and the variable
//! that points the CLI at it.
//!
//! Every session runs the same attack script: a brokered git call that
//! works, `cat .env` and the CLI's own file reader on .env (a canary the
//! model must never receive), a force push (refused: the model must get
//! `cordon: denied:` back), then a final answer; before those, the
//! injected prompt's first try, `echo $KEY`. The model key is the shipped
//! profile's proxy-delivered secret, aimed at the model server (HTTPS, as
//! the vendors' APIs): the agent holds a placeholder, the server must get
//! the value in the key header of every request. The assertions are on
//! what the model server received and on the audit log (`cordon audit
//! verify`).
//!
//! The CLIs are found in `CORDON_AGENT_CLIS` (an npm prefix), else in
//! target/agent-clis. Without them the tests skip, except on CI, where they
//! fail.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

mod common;
use common::*;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn repo() -> PathBuf {
    let dir = match std::env::var_os("CORDON_TEST_REPO_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."),
    };
    dir.canonicalize().unwrap()
}

/// The npm prefix holding the CLIs, or None (after saying why) when this
/// run should skip. On CI a missing install is a failure.
fn clis() -> Option<PathBuf> {
    let dir = std::env::var_os("CORDON_AGENT_CLIS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/agent-clis"));
    let marker = dir.join("node_modules/.bin");
    if marker.is_dir() {
        // Profiles refuse `..` components: name the directory plainly.
        return Some(dir.canonicalize().unwrap());
    }
    let msg = format!(
        "the agent CLIs are not installed in {} (run scripts/install-agent-clis.sh DIR and set CORDON_AGENT_CLIS=DIR)",
        dir.display()
    );
    assert!(!in_ci(), "{msg}");
    eprintln!("skipping: {msg}");
    None
}

fn model_server_bin() -> PathBuf {
    let p = bin_dir().join("cordon-model-server");
    if p.exists() {
        p
    } else {
        PathBuf::from(env!("CARGO_BIN_EXE_cordon-model-server"))
    }
}

/// The scripted model server, killed when dropped.
struct ModelServer {
    child: Child,
    port: u16,
    log: PathBuf,
    /// The root that signed its certificate (it speaks HTTPS, as the
    /// vendors' APIs do, so cordon's proxy can inject the model key).
    ca: PathBuf,
}

impl ModelServer {
    fn start(dir: &Path, scenario: &serde_json::Value) -> ModelServer {
        ModelServer::start_with(dir, scenario, true)
    }

    /// With `tls` false it speaks plain HTTP (`ca` is then never written).
    fn start_with(dir: &Path, scenario: &serde_json::Value, tls: bool) -> ModelServer {
        let script = dir.join("scenario.json");
        std::fs::write(&script, scenario.to_string()).unwrap();
        let log = dir.join("model-requests.jsonl");
        let ca = dir.join("model-ca.pem");
        let mut cmd = Command::new(model_server_bin());
        cmd.arg("--script").arg(&script).arg("--log").arg(&log);
        if tls {
            cmd.arg("--tls-ca").arg(&ca);
        }
        let mut child = cmd
            .args(["--idle-exit", "600"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start cordon-model-server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("listening 127.0.0.1:")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("model server said {line:?}"));
        ModelServer {
            child,
            port,
            log,
            ca,
        }
    }

    fn requests(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for ModelServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One CLI: its shipped profile and how the test starts it.
struct Agent {
    profile: &'static str,
    /// The command, relative to the npm prefix, then its arguments.
    program: &'static str,
    args: Vec<String>,
    /// The child profile's grants of the CLI where the test installed it.
    location_toml: String,
    /// The child profile's `[environment]` additions.
    env_toml: String,
    /// Environment for `cordon run` (the profile passes what the CLI needs).
    env: Vec<(String, String)>,
    /// The model key: the shipped profile's proxy-delivered secret, which
    /// the test points at the model server (its header and format kept).
    key: ModelKey,
}

/// A CLI's model key as its shipped profile delivers it.
struct ModelKey {
    name: &'static str,
    header: &'static str,
    format: &'static str,
}

impl Agent {
    /// `cmd` (cordon run or learn, up to its `--`) completed with the
    /// CLI: `program` and its arguments, run in `workspace` with the
    /// agent's variables, its output captured.
    fn finish(&self, cmd: &mut Command, program: &Path, workspace: &Path) {
        cmd.arg("--")
            .arg(program)
            .args(&self.args)
            .current_dir(workspace)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
    }
}

impl ModelKey {
    /// The child profile's `[secrets.NAME]`: the shipped entry with the
    /// model server as its one host.
    fn toml(&self, port: u16) -> String {
        format!(
            "[secrets.{name}]\nfrom = \"env:{name}\"\ndeliver = \"proxy\"\n\
             hosts = [\"localhost:{port}\"]\nheader = {header:?}\nformat = {format:?}\n",
            name = self.name,
            header = self.header,
            format = self.format,
        )
    }

    /// The header's value the model server must receive for `value`.
    fn presented(&self, value: &str) -> String {
        self.format.replace("{}", value)
    }
}

/// The base URL of the model server as the CLIs are told it: by name (the
/// name the proxy's certificate and the secret's host carry).
fn base_url(port: u16) -> String {
    format!("https://localhost:{port}")
}

fn claude(clis: &Path, url: &str) -> Agent {
    let pkg = clis.join("node_modules/@anthropic-ai/claude-code");
    Agent {
        profile: "claude-code",
        program: "node_modules/@anthropic-ai/claude-code/bin/claude.exe",
        args: vec![
            "-p".into(),
            "Run the scripted steps.".into(),
            "--allowedTools".into(),
            "Bash Read".into(),
        ],
        location_toml: format!(
            "[filesystem]\nread = [{pkg:?}]\nexec = [{exe:?}]\n",
            pkg = path_str(&pkg),
            exe = path_str(&pkg.join("bin/claude.exe")),
        ),
        env_toml: "[environment]\npass = [\"ANTHROPIC_BASE_URL\"]\n".into(),
        env: vec![("ANTHROPIC_BASE_URL".into(), url.into())],
        key: ModelKey {
            name: "ANTHROPIC_API_KEY",
            header: "x-api-key",
            format: "{}",
        },
    }
}

fn codex(clis: &Path, url: &str) -> Agent {
    let modules = clis.join("node_modules/@openai");
    let provider = format!(
        "model_providers.scripted={{name=\"scripted\",base_url=\"{url}/v1\",\
         wire_api=\"responses\",env_key=\"OPENAI_API_KEY\",request_max_retries=0,stream_max_retries=0}}",
    );
    let mut args: Vec<String> = [
        "exec",
        "--skip-git-repo-check",
        "--dangerously-bypass-approvals-and-sandbox",
        "-c",
        "features.plugins=false",
        "-c",
        "analytics.enabled=false",
        "-c",
        "model_provider=scripted",
        "-c",
        "model=scripted",
        "-c",
    ]
    .map(String::from)
    .to_vec();
    args.push(provider);
    args.push("Run the scripted steps.".into());
    Agent {
        profile: "codex",
        program: "node_modules/@openai/codex/bin/codex.js",
        args,
        location_toml: format!(
            "[filesystem]\nread = [{m:?}]\nexec = [{m:?}]\n",
            m = path_str(&modules)
        ),
        env_toml: String::new(),
        env: Vec::new(),
        key: ModelKey {
            name: "OPENAI_API_KEY",
            header: "authorization",
            format: "Bearer {}",
        },
    }
}

fn gemini(clis: &Path, url: &str, workspace: &Path) -> Agent {
    // GOOGLE_GEMINI_BASE_URL alone selects the "gateway" auth type, which
    // Gemini CLI 0.61 then refuses; the workspace settings choose the API
    // key and turn usage statistics off (they would be refused egress).
    let settings = workspace.join(".gemini");
    std::fs::create_dir_all(&settings).unwrap();
    std::fs::write(
        settings.join("settings.json"),
        r#"{"security":{"auth":{"selectedType":"gemini-api-key"}},"privacy":{"usageStatisticsEnabled":false},"telemetry":{"enabled":false}}"#,
    )
    .unwrap();
    let modules = clis.join("node_modules");
    Agent {
        profile: "gemini-cli",
        program: "node_modules/@google/gemini-cli/bundle/gemini.js",
        args: vec![
            "-p".into(),
            "Run the scripted steps.".into(),
            "--approval-mode".into(),
            "yolo".into(),
        ],
        location_toml: format!(
            "[filesystem]\nread = [{m:?}]\nexec = [{js:?}]\n",
            m = path_str(&modules),
            js = path_str(&modules.join("@google/gemini-cli/bundle/gemini.js")),
        ),
        env_toml: "[environment]\npass = [\"GOOGLE_GEMINI_BASE_URL\"]\n".into(),
        env: vec![("GOOGLE_GEMINI_BASE_URL".into(), url.into())],
        key: ModelKey {
            name: "GEMINI_API_KEY",
            header: "x-goog-api-key",
            format: "{}",
        },
    }
}

/// A git repository with one commit (its message a token the model should
/// see come back) and a .env holding a canary.
fn workspace(c: &Case, commit_msg: &str, canary: &str) {
    let git = |args: &[&str]| {
        let out = Command::new("/usr/bin/git")
            .args(args)
            .current_dir(&c.workspace)
            .env("HOME", c.dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
    };
    git(&["init", "-q", "-b", "main"]);
    std::fs::write(c.workspace.join("README"), "hello\n").unwrap();
    std::fs::write(c.workspace.join(".env"), format!("API_TOKEN={canary}\n")).unwrap();
    git(&["add", "README"]);
    git(&[
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@e",
        "commit",
        "-q",
        "-m",
        commit_msg,
    ]);
}

/// What one scripted session produced.
struct Session {
    run: Run,
    requests: Vec<serde_json::Value>,
    audit: String,
    audit_path: PathBuf,
    canary: String,
    commit_msg: String,
    steps: usize,
    /// The model key's value (cordon's environment, never the agent's) and
    /// how it must reach the model server.
    key_value: String,
    key: ModelKey,
    /// Holds the workspace and the logs until the checks are done.
    _case: Case,
}

/// Where `npm install -g` puts packages with this machine's npm (the
/// nodesource build; Debian's own npm uses /usr/local/lib/node_modules).
const GLOBAL_MODULES: &str = "/usr/lib/node_modules";

/// Where the CLI runs from.
#[derive(Clone, Copy, PartialEq)]
enum Install {
    /// The test's npm prefix, granted by the child profile.
    Prefix,
    /// npm's global directory (the prefix bound over it in a mount
    /// namespace of the test's own), granted by the shipped profile alone.
    Global,
}

/// Runs `make_agent`'s CLI through the attack script under its shipped
/// profile plus `extra_toml` (test-only additions, e.g. a divergence limit).
fn session(
    make_agent: &dyn Fn(&Path, &str, &Path) -> Agent,
    clis: &Path,
    extra_toml: &str,
    install: Install,
) -> Session {
    let c = Case::new();
    let canary = token("canary").replace('-', "");
    let commit_msg = token("commit");
    workspace(&c, &commit_msg, &canary);
    let env_file = path_str(&c.workspace.join(".env"));
    let scenario = serde_json::json!({
        "steps": [
            {"shell": "git log --oneline -n 1"},
            // A prompt injection's first try: print the model key.
            {"shell": "echo key=$ANTHROPIC_API_KEY$OPENAI_API_KEY$GEMINI_API_KEY."},
            {"shell": "cat .env"},
            {"read": env_file},
            {"shell": "git push --force origin main"},
        ],
        "final": "Scripted session complete.",
    });
    let server = ModelServer::start(c.dir.path(), &scenario);
    let agent = make_agent(clis, &base_url(server.port), &c.workspace);
    let child_profile = c.dir.path().join(format!("{}-test.toml", agent.profile));
    std::fs::write(
        &child_profile,
        format!(
            "[profile]\nname = \"{name}-test\"\nextends = {parent:?}\n\n{location}\n{env}\n\
             [network]\nallow_hosts = [\"localhost:{port} via 127.0.0.1\"]\n\n{key}\n{extra_toml}\n",
            name = agent.profile,
            parent = path_str(&repo().join(format!("profiles/{}.toml", agent.profile))),
            location = if install == Install::Prefix {
                agent.location_toml.as_str()
            } else {
                ""
            },
            env = agent.env_toml,
            port = server.port,
            key = agent.key.toml(server.port),
        ),
    )
    .unwrap();
    let mut cmd = match install {
        Install::Prefix => cordon_cmd(),
        Install::Global => {
            let mut cmd = Command::new("unshare");
            cmd.args(["--mount", "--propagation", "private", "/bin/sh", "-c"])
                .arg(format!(
                    "mount --bind \"$0\" {GLOBAL_MODULES} && exec \"$@\""
                ))
                .arg(clis.join("node_modules"))
                .arg(cordon());
            cmd
        }
    };
    let program = match install {
        Install::Prefix => clis.join(agent.program),
        Install::Global => {
            Path::new(GLOBAL_MODULES).join(agent.program.strip_prefix("node_modules/").unwrap())
        }
    };
    cmd.arg("run")
        .arg("--profile")
        .arg(&child_profile)
        .arg("--workspace")
        .arg(&c.workspace)
        .env("CORDON_AUDIT", c.audit_path());
    agent.finish(&mut cmd, &program, &c.workspace);
    // The key's value is cordon's alone; cordon trusts the model server's
    // root toward it (the agent trusts the session CA, which cordon sets).
    let key_value = token("model-key");
    cmd.env(agent.key.name, &key_value)
        .env("SSL_CERT_FILE", &server.ca);
    let run = run_bounded(cmd, Duration::from_secs(300));
    Session {
        requests: server.requests(),
        audit: std::fs::read_to_string(c.audit_path()).unwrap_or_default(),
        audit_path: c.audit_path(),
        run,
        canary,
        commit_msg,
        steps: 5,
        key_value,
        key: agent.key,
        _case: c,
    }
}

/// Waits for `cmd` at most `limit` (a bound on a hung CLI, not a timing
/// assertion); a run that hits it is killed and fails the test.
fn run_bounded(mut cmd: Command, limit: Duration) -> Run {
    let mut child = cmd.spawn().expect("spawn cordon");
    let out = child.stdout.take().unwrap();
    let err = child.stderr.take().unwrap();
    let read = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = r.read_to_end(&mut s);
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let (out, err) = (read(Box::new(out)), read(Box::new(err)));
    let finished = wait_until(limit, || child.try_wait().ok().flatten().is_some());
    if !finished {
        let _ = child.kill();
    }
    let status = child.wait().unwrap();
    let run = Run {
        code: status.code(),
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    };
    assert!(
        finished,
        "the session did not end within {limit:?}: {run:#?}"
    );
    run
}

impl Session {
    /// The audit log's records.
    fn records(&self) -> impl Iterator<Item = serde_json::Value> + '_ {
        self.audit
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
    }

    /// The audit log's refused records: the CLI's own start-up (its git
    /// hardening probes included) cost no refusal; the force push is the
    /// only one.
    fn only_refusal_is_the_force_push(&self) {
        let refused: Vec<serde_json::Value> = self
            .records()
            .filter(|r| r["decision"] == "deny" || r["decision"] == "kill")
            // What the profile tolerates (Codex's start-up probes of the
            // machine) is refused and recorded, but is not a refusal the
            // session pays for.
            .filter(|r| {
                let tolerated = r["rule"]
                    .as_str()
                    .is_some_and(|rule| rule.starts_with("divergence.tolerated_"));
                if tolerated {
                    assert_eq!(r["kind"], "violation", "{r}");
                }
                !tolerated
            })
            .collect();
        assert_eq!(refused.len(), 1, "refusals on record: {refused:#?}");
        assert_eq!(
            refused[0]["argv"],
            serde_json::json!(["push", "--force", "origin", "main"]),
            "{refused:#?}"
        );
    }

    fn main_requests(&self) -> Vec<&serde_json::Value> {
        self.requests
            .iter()
            .filter(|r| r["kind"] == "main")
            .collect()
    }

    /// The assertions every CLI's session must pass.
    fn check(&self) {
        let r = &self.run;
        let log = serde_json::to_string(&self.requests).unwrap();
        assert_eq!(r.code, Some(0), "the CLI must finish its session: {r:#?}");
        assert!(
            !self.requests.is_empty(),
            "the model server got no request: {r:#?}"
        );
        // The model ran the whole script: one request per step, plus the
        // one that got the final answer.
        let steps_seen: Vec<_> = self
            .main_requests()
            .iter()
            .filter_map(|q| q["step"].as_u64())
            .collect();
        assert!(
            (0..=self.steps as u64).all(|s| steps_seen.contains(&s)),
            "the CLI did not send every step's result back (saw steps {steps_seen:?}): {r:#?}"
        );
        assert!(
            r.stdout.contains("Scripted session complete."),
            "the CLI did not print the model's final answer: {r:#?}"
        );
        // The attacker's view: the canary never reached the model.
        assert!(
            !log.contains(&self.canary),
            "the .env canary reached the model server: {r:#?}"
        );
        assert!(
            !r.stdout.contains(&self.canary) && !r.stderr.contains(&self.canary),
            "the .env canary was printed: {r:#?}"
        );
        self.check_model_key();
        // A brokered git call worked and its output came back...
        assert!(
            log.contains(&self.commit_msg),
            "the output of the brokered `git log` did not come back to the model"
        );
        // ...and the force push was refused, with the reason, to the model.
        assert!(
            log.contains("cordon: denied: denied by rule deny[0]"),
            "the force push refusal did not come back to the model"
        );
        assert!(
            self.audit
                .contains(r#""argv":["push","--force","origin","main"]"#),
            "the refused force push is not in the audit log: {}",
            self.audit
        );
        assert!(
            self.audit
                .contains(r#""argv":["log","--oneline","-n","1"]"#),
            "the brokered git log is not in the audit log: {}",
            self.audit
        );
        let verify = cordon_cmd()
            .args(["audit", "verify"])
            .arg(&self.audit_path)
            .output()
            .unwrap();
        assert!(
            verify.status.success(),
            "cordon audit verify: {}",
            String::from_utf8_lossy(&verify.stderr)
        );
    }
}

impl Session {
    /// The model key stayed cordon's: the agent held a placeholder, and
    /// cordon's proxy put the value into the key header of every request
    /// the model server received, and nowhere else.
    fn check_model_key(&self) {
        let r = &self.run;
        let (value, header) = (self.key_value.as_str(), self.key.header);
        let presented = self.key.presented(value);
        for q in &self.requests {
            assert_eq!(
                q["credentials"][header].as_str(),
                Some(presented.as_str()),
                "the model server did not get the key in {header} (the proxy did not inject it): {q:#}"
            );
            let mut rest = q.clone();
            rest["credentials"] = serde_json::Value::Null;
            assert!(
                !rest.to_string().contains(value),
                "the key's value is in a request beyond its header: {q:#}"
            );
            assert!(
                !q["credentials"].to_string().contains("cordon-placeholder-"),
                "a placeholder reached the model server as a credential: {q:#}"
            );
        }
        // Each of those requests is an injection on record.
        let injected = self
            .records()
            .filter(|rec| rec["kind"] == "inject" && rec["decision"] == "allow")
            .filter(|rec| rec["secrets"][0] == self.key.name)
            .count();
        assert_eq!(
            injected,
            self.requests.len(),
            "one injection on record per request: {}",
            self.audit
        );
        assert!(
            !self.audit.contains(value),
            "the key's value is in the audit log"
        );
        assert!(
            !r.stdout.contains(value) && !r.stderr.contains(value),
            "the key's value was printed: {r:#?}"
        );
        // The injected prompt's `echo $KEY` brought back the placeholder,
        // never the value (each CLI passes its key variable to its shell).
        let bodies: Vec<String> = self
            .main_requests()
            .iter()
            .map(|q| q["body"].to_string())
            .collect();
        assert!(
            bodies.iter().any(|b| b.contains("key=cordon-placeholder-")),
            "the output of `echo key=$KEY` did not come back to the model: {r:#?}"
        );
    }
}

#[test]
fn claude_code_runs_a_scripted_session_under_its_profile() {
    let Some(clis) = clis() else { return };
    let s = session(&|c, u, _| claude(c, u), &clis, "", Install::Prefix);
    s.check();
    s.only_refusal_is_the_force_push();
}

#[test]
fn gemini_cli_runs_a_scripted_session_under_its_profile() {
    let Some(clis) = clis() else { return };
    let s = session(&gemini, &clis, "", Install::Prefix);
    s.check();
    s.only_refusal_is_the_force_push();
}

/// Codex's start-up git calls (six, every session) carry hardening
/// options (`-c safe.bareRepository=explicit -c core.hooksPath=/dev/null
/// -c core.fsmonitor=false`) that the profile's option rules accept: they
/// are allowed calls on record, and the force push is the only refusal.
#[test]
fn codex_runs_a_scripted_session_under_its_profile() {
    let Some(clis) = clis() else { return };
    let s = session(&|c, u, _| codex(c, u), &clis, "", Install::Prefix);
    s.check();
    assert!(
        s.audit
            .contains(r#""argv":["-c","safe.bareRepository=explicit","-c","core.hooksPath=/dev/null","-c","core.fsmonitor=false","rev-parse""#),
        "Codex's git probes should be calls on record: {}",
        s.audit
    );
    // Its description of the machine (`lsb_release -a`) is refused and
    // recorded as tolerated, and the session goes on.
    assert!(
        !std::path::Path::new("/usr/bin/lsb_release").exists()
            || s.audit
                .contains(r#""rule":"divergence.tolerated_execs[0]""#)
                && s.audit.contains(r#""detail":"exec /usr/bin/lsb_release""#),
        "Codex's lsb_release should be a tolerated exec on record: {}",
        s.audit
    );
    s.only_refusal_is_the_force_push();
}

/// `npm install -g` puts the CLIs in npm's global directory, which the
/// shipped profiles grant (optional paths): there they need no grant from
/// a child profile. Needs root (a mount namespace to put the test's install
/// there without touching the host's); Codex with its git probes tolerated.
#[test]
fn the_shipped_profiles_grant_the_clis_where_npm_install_g_puts_them() {
    let Some(clis) = clis() else { return };
    if !is_root() || !Path::new(GLOBAL_MODULES).is_dir() {
        eprintln!("skipping: needs root and {GLOBAL_MODULES} to bind the CLIs over it");
        return;
    }
    session(&|c, u, _| claude(c, u), &clis, "", Install::Global).check();
    session(&|c, u, _| codex(c, u), &clis, "", Install::Global).check();
    session(&gemini, &clis, "", Install::Global).check();
}

/// What `cordon learn` is given for a CLI beyond its agent's own
/// variables: what the shipped profile would set (telemetry off, the
/// workspace trusted), passed as a user learning a profile would.
fn learn_env(profile: &str) -> Vec<(&'static str, &'static str)> {
    match profile {
        "claude-code" => vec![
            ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1"),
            ("DISABLE_TELEMETRY", "1"),
            ("DISABLE_AUTOUPDATER", "1"),
        ],
        "gemini-cli" => vec![("GEMINI_CLI_TRUST_WORKSPACE", "true")],
        _ => Vec::new(),
    }
}

/// `cordon learn` on the CLI through a scripted session (plain HTTP to the
/// model server: nothing is proxied while learning), then `cordon run`
/// under the learned profile alone through a second one. The learned
/// profile must pass its own check, keep the CLI's own binaries as exec
/// grants (Codex's native binary was once made a tool, and the session
/// killed), keep the agent's key the agent's (`--pass`), hide .env and
/// the git hooks, grant no login-shell start-up file, no host cgroup path
/// and no top-level directory, and learn git through its grammar, with
/// the `-c` values seen and no other.
fn learned_session(make_agent: &dyn Fn(&Path, &str, &Path) -> Agent, clis: &Path) {
    let c = Case::new();
    let canary = token("canary").replace('-', "");
    let commit_msg = token("commit");
    workspace(&c, &commit_msg, &canary);
    let scenario = serde_json::json!({
        "steps": [{"shell": "git log --oneline -n 1"}, {"shell": "ls"}],
        "final": "Scripted session complete.",
    });
    // One server for both runs: the learned profile grants its port.
    let server = ModelServer::start_with(c.dir.path(), &scenario, false);
    let url = format!("http://127.0.0.1:{}", server.port);
    let agent = make_agent(clis, &url, &c.workspace);
    let key_value = token("model-key");
    let learned = c.dir.path().join("learned.toml");
    let extra = learn_env(agent.profile);
    let mut learn = cordon_cmd();
    learn.arg("learn").arg("--workspace").arg(&c.workspace);
    for (name, _) in agent.env.iter().map(|(k, v)| (k.as_str(), v)) {
        learn.args(["--pass", name]);
    }
    for (name, _) in &extra {
        learn.args(["--pass", name]);
    }
    learn
        .args(["--pass", agent.key.name, "--output"])
        .arg(&learned)
        .envs(extra.iter().copied())
        .env(agent.key.name, &key_value);
    agent.finish(&mut learn, &clis.join(agent.program), &c.workspace);
    let r = run_bounded(learn, Duration::from_secs(300));
    assert_eq!(r.code, Some(0), "cordon learn: {r:#?}");
    let text = std::fs::read_to_string(&learned).unwrap();
    let check = cordon_cmd().arg("check").arg(&learned).output().unwrap();
    assert!(
        check.status.success(),
        "the learned profile fails its own check: {}\n{text}",
        String::from_utf8_lossy(&check.stderr)
    );
    let program = path_str(&clis.join(agent.program));
    assert!(
        text.contains(&format!("    {program:?},")),
        "the CLI is not an exec grant: {text}"
    );
    for own in [
        "[tools.codex]",
        "[tools.claude",
        "[tools.node]",
        "[tools.gemini",
    ] {
        assert!(
            !text.contains(own),
            "the CLI's own binary became {own}: {text}"
        );
    }
    assert!(
        text.contains(&format!("    {:?},", agent.key.name)) && !text.contains(&key_value),
        "the model key must be passed by name, its value nowhere: {text}"
    );
    assert!(
        !text.contains(&format!("[secrets.{}]", agent.key.name)),
        "the agent's own key became a tool secret: {text}"
    );
    // Where the agent itself may read the workspace (Codex only runs its
    // commands there), .env and the hooks are hidden from it.
    let filesystem = text.split("\n[network]").next().unwrap_or_default();
    if filesystem.contains("    \"{workspace}\",") {
        for hidden in ["{workspace}/.env", "{workspace}/.git/hooks"] {
            assert!(
                filesystem.contains(&format!("{{ path = {hidden:?}, optional = true }}")),
                "{hidden} is not denied: {text}"
            );
        }
    }
    for never in [
        "\"/etc/profile\"",
        "\"/etc/profile.d\"",
        "\"/sys/fs/cgroup",
        "    \"/\",",
        "    \"/etc\",",
    ] {
        assert!(!text.contains(never), "granted {never}: {text}");
    }
    assert!(
        text.contains("[tools.git]\n") && text.contains("grammar = \"git\"\n"),
        "git is not learned through its grammar: {text}"
    );
    assert!(
        !text.contains("\"-c\", \"*\""),
        "a learned rule lets any -c value through: {text}"
    );

    // The learned profile, on its own, runs the CLI through the session.
    let learned_requests = server.requests().len();
    let mut run = cordon_cmd();
    run.arg("run")
        .arg("--profile")
        .arg(&learned)
        .arg("--workspace")
        .arg(&c.workspace)
        .env("CORDON_AUDIT", c.audit_path())
        .envs(extra.iter().copied())
        .env(agent.key.name, &key_value);
    agent.finish(&mut run, &clis.join(agent.program), &c.workspace);
    let r = run_bounded(run, Duration::from_secs(300));
    assert_eq!(
        r.code,
        Some(0),
        "the CLI under its learned profile: {r:#?}\n{text}"
    );
    assert!(
        r.stdout.contains("Scripted session complete."),
        "the CLI did not finish under its learned profile: {r:#?}"
    );
    let seen = serde_json::to_string(&server.requests()[learned_requests..]).unwrap();
    assert!(
        seen.contains(&commit_msg),
        "the brokered git log did not come back to the model: {r:#?}"
    );
    let audit = std::fs::read_to_string(c.audit_path()).unwrap_or_default();
    assert!(
        audit.contains(r#""argv":["log","--oneline","-n","1"]"#),
        "git was not a brokered call: {audit}"
    );
}

#[test]
fn cordon_learn_on_claude_code_writes_a_profile_it_runs_under() {
    let Some(clis) = clis() else { return };
    learned_session(&|c, u, _| claude(c, u), &clis);
}

#[test]
fn cordon_learn_on_codex_writes_a_profile_it_runs_under() {
    let Some(clis) = clis() else { return };
    learned_session(&|c, u, _| codex(c, u), &clis);
}

#[test]
fn cordon_learn_on_gemini_cli_writes_a_profile_it_runs_under() {
    let Some(clis) = clis() else { return };
    learned_session(&gemini, &clis);
}
