//! The `[approval]` section: how long a call may wait for a human yes,
//! who is asked, and how many requests an agent may put to people.

use std::time::Duration;

use toml::de::DeTable;

use super::layer::Layer;
use super::secrets::check_argv;
use super::walk::{Value, Walker};
use super::{Approval, DivergenceAction};

const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
const MAX_PENDING: u64 = 64;
const MAX_PER_MINUTE: u64 = 600;

pub(super) fn approval(w: &mut Walker<'_>, t: &DeTable<'_>, layer: &mut Layer) {
    const KEYS: [&str; 7] = [
        "timeout",
        "approver",
        "prompt",
        "max_pending",
        "max_per_minute",
        "on_limit",
        "self_approval",
    ];
    w.unknown_keys(t, &KEYS, "[approval]");
    let mut a = Approval::default();
    let words = [
        ("kill", DivergenceAction::Kill),
        ("deny", DivergenceAction::Deny),
    ];
    for (key, value) in t.iter() {
        let k = key.get_ref().as_ref();
        match k {
            "timeout" => {
                if let Some(d) = timeout(w, value) {
                    a.timeout = d;
                }
            }
            "approver" => a.approver = approver(w, value),
            "prompt" => a.prompt = w.boolean(k, value).unwrap_or(a.prompt),
            "max_pending" => {
                let n = w.integer(k, value, 1, MAX_PENDING, "an integer 1-64");
                if let Some(n) = n.and_then(|n| u32::try_from(n).ok()) {
                    a.max_pending = n;
                }
            }
            "max_per_minute" => {
                let n = w.integer(k, value, 1, MAX_PER_MINUTE, "an integer 1-600");
                if let Some(n) = n.and_then(|n| u32::try_from(n).ok()) {
                    a.max_per_minute = n;
                }
            }
            "on_limit" => a.on_limit = w.word(k, value, &words).unwrap_or(a.on_limit),
            "self_approval" => {
                a.self_approval = w.word(k, value, &words).unwrap_or(a.self_approval);
            }
            _ => {}
        }
    }
    layer.approval = Some(a);
}

fn timeout(w: &mut Walker<'_>, v: &Value<'_>) -> Option<Duration> {
    w.duration("timeout", v, MAX_TIMEOUT, "24h", ("\"5m\"", "\"90s\""))
}

/// `approver = "command:ARGV"`, split on whitespace without quoting.
fn approver(w: &mut Walker<'_>, v: &Value<'_>) -> Option<Vec<String>> {
    let text = w.string(
        "approver",
        v,
        "a hook such as \"command:/usr/local/bin/ask-oncall --team infra\"",
    )?;
    let Some(line) = text.strip_prefix("command:") else {
        let msg = format!(
            "`approver` must start with `command:`, as in \"command:/usr/local/bin/ask-oncall\", got \"{}\"",
            text.escape_debug()
        );
        w.error(&v.span(), msg);
        return None;
    };
    if line.contains(['"', '\'', '\\']) {
        let msg = "`approver = \"command:...\"` is split on whitespace, without quoting or escapes; put arguments with spaces in a script";
        w.error(&v.span(), msg);
        return None;
    }
    let argv: Vec<_> = line
        .split_ascii_whitespace()
        .map(|s| (s.to_string(), v.span()))
        .collect();
    if argv.is_empty() {
        let msg = "`approver = \"command:\"` needs a command, as in \"command:/usr/local/bin/ask-oncall\"";
        w.error(&v.span(), msg);
        return None;
    }
    check_argv(w, "approver", argv, &v.span())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test fails by panicking
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use super::*;
    use crate::profile::parse::parse_layer;

    fn parse(src: &str) -> (Option<Approval>, Vec<String>) {
        let mut diags = Vec::new();
        let layer = parse_layer(Arc::from(Path::new("p.toml")), src, &mut diags);
        let msgs = diags.iter().map(ToString::to_string).collect();
        (layer.and_then(|l| l.approval), msgs)
    }

    #[test]
    fn defaults_and_every_key() {
        let (a, diags) = parse("[approval]\n");
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(a.unwrap(), Approval::default());
        let (a, diags) = parse(
            "[approval]\ntimeout = \"90s\"\napprover = \"command:/usr/bin/ask --team infra\"\nprompt = false\nmax_pending = 2\nmax_per_minute = 5\non_limit = \"kill\"\nself_approval = \"deny\"\n",
        );
        assert!(diags.is_empty(), "{diags:?}");
        let a = a.unwrap();
        assert_eq!(a.timeout, Duration::from_secs(90));
        assert_eq!(
            a.approver.unwrap(),
            ["/usr/bin/ask", "--team", "infra"].map(String::from)
        );
        assert!(!a.prompt);
        assert_eq!((a.max_pending, a.max_per_minute), (2, 5));
        assert_eq!(a.on_limit, DivergenceAction::Kill);
        assert_eq!(a.self_approval, DivergenceAction::Deny);
    }

    #[test]
    fn mistakes_are_located() {
        let (_, diags) = parse(
            "[approval]\ntimeout = \"0s\"\napprover = \"/usr/bin/ask\"\nmax_pending = 0\non_limit = \"explode\"\ntimeuot = \"1m\"\n",
        );
        let all = diags.join("\n");
        assert!(
            all.contains("p.toml:2:11: `timeout` must be longer than 0s"),
            "{all}"
        );
        assert!(
            all.contains("p.toml:3:12: `approver` must start with `command:`"),
            "{all}"
        );
        assert!(
            all.contains("p.toml:4:15: `max_pending` expects an integer 1-64, got 0"),
            "{all}"
        );
        assert!(
            all.contains("p.toml:5:12: `on_limit` must be \"kill\" or \"deny\""),
            "{all}"
        );
        assert!(
            all.contains(
                "p.toml:6:1: unknown key `timeuot` in [approval]; did you mean `timeout`?"
            ),
            "{all}"
        );
        let (_, diags) = parse("[approval]\napprover = \"command:ask 'a b'\"\n");
        assert!(diags[0].contains("without quoting"), "{diags:?}");
        let (_, diags) = parse("[approval]\napprover = \"command:./ask\"\n");
        assert!(
            diags[0].contains("absolute path or a bare name"),
            "{diags:?}"
        );
    }
}
