//! The decision on one connection by host rules (pure; the proxy does
//! the I/O): deny rules first, then allow rules, then the addresses the
//! name resolved to (internal ones only when a rule names them). The rule
//! language itself is `profile::hosts`.

use std::net::IpAddr;

use super::address::{canonical, internal_kind};
pub use crate::profile::hosts::{HostRule, Target};

/// A rule's name in records: `network.allow_hosts[2]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleRef {
    pub label: String,
    pub text: String,
}

/// The host rules of the agent or of one tool.
#[derive(Debug, Clone)]
pub struct Rules {
    allow: Vec<HostRule>,
    deny: Vec<HostRule>,
    /// `network` or `tools.NAME.sandbox`, for labels.
    prefix: String,
}

/// A refusal, with the rule that caused it if one did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: String,
    pub rule: Option<RuleRef>,
}

/// A target that passed the rules before resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    /// The allow rules that match, by index (the first is reported).
    matching: Vec<usize>,
    pub rule: RuleRef,
}

impl Rules {
    pub fn new(allow: &[HostRule], deny: &[HostRule], prefix: &str) -> Rules {
        Rules {
            allow: allow.to_vec(),
            deny: deny.to_vec(),
            prefix: prefix.to_string(),
        }
    }

    fn label(&self, list: &str, i: usize, rule: &HostRule) -> RuleRef {
        RuleRef {
            label: format!("{}.{list}[{i}]", self.prefix),
            text: rule.text.clone(),
        }
    }

    /// The decision on the target alone: a deny rule refuses; otherwise
    /// some allow rule must match.
    pub fn admit(&self, target: &Target, port: u16) -> Result<Admitted, Refusal> {
        if let Some((i, r)) = self
            .deny
            .iter()
            .enumerate()
            .find(|(_, r)| r.matches(target, port))
        {
            return Err(Refusal {
                reason: format!("{target}:{port} is denied by `{}`", r.text),
                rule: Some(self.label("deny_hosts", i, r)),
            });
        }
        let matching: Vec<usize> = self
            .allow
            .iter()
            .enumerate()
            .filter(|(_, r)| r.matches(target, port))
            .map(|(i, _)| i)
            .collect();
        let Some(&first) = matching.first() else {
            let reason = match target {
                Target::Ip(_) => {
                    format!("{target}:{port} is a literal address that no allow_hosts rule names")
                }
                Target::Name(_) => format!("{target}:{port} is not in allow_hosts"),
            };
            return Err(Refusal { reason, rule: None });
        };
        Ok(Admitted {
            rule: self.label("allow_hosts", first, &self.allow[first]),
            matching,
        })
    }

    /// The addresses an admitted target may be reached at: public ones,
    /// and internal ones a matching rule names; never one a deny rule's
    /// block covers. Errs when none is left, saying why.
    pub fn permitted(
        &self,
        admitted: &Admitted,
        target: &Target,
        port: u16,
        resolved: &[IpAddr],
    ) -> Result<Vec<IpAddr>, Refusal> {
        let mut ok = Vec::new();
        let mut first_refusal: Option<Refusal> = None;
        for &ip in resolved {
            let ip = canonical(ip);
            if let Some((i, r)) = self
                .deny
                .iter()
                .enumerate()
                .find(|(_, r)| r.blocks_address(ip, port))
            {
                first_refusal.get_or_insert(Refusal {
                    reason: format!("{target} resolves to {ip}, denied by `{}`", r.text),
                    rule: Some(self.label("deny_hosts", i, r)),
                });
                continue;
            }
            match internal_kind(ip) {
                None => ok.push(ip),
                Some(_) if admitted.matching.iter().any(|&i| self.allow[i].names(ip)) => {
                    ok.push(ip)
                }
                Some(kind) => {
                    first_refusal.get_or_insert(Refusal {
                        reason: format!(
                            "{target} resolves to {ip} ({kind}), which no rule names; add `via {ip}` to the rule if this is intended"
                        ),
                        rule: Some(admitted.rule.clone()),
                    });
                }
            }
        }
        if !ok.is_empty() {
            return Ok(ok);
        }
        Err(first_refusal.unwrap_or_else(|| Refusal {
            reason: format!("{target} has no address"),
            rule: Some(admitted.rule.clone()),
        }))
    }

    pub fn is_empty(&self) -> bool {
        self.allow.is_empty() && self.deny.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::hosts::parse_rule;
    use crate::profile::Location;
    use std::path::Path;

    fn rule(text: &str) -> HostRule {
        parse_rule(text, Location::whole_file(Path::new("t.toml")))
            .unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn rules(allow: &[&str], deny: &[&str]) -> Rules {
        let a: Vec<HostRule> = allow.iter().map(|t| rule(t)).collect();
        let d: Vec<HostRule> = deny.iter().map(|t| rule(t)).collect();
        Rules::new(&a, &d, "network")
    }

    fn name(n: &str) -> Target {
        Target::parse(n).unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn deny_beats_allow_in_any_order() {
        let r = rules(&["*.example.com:*"], &["bad.example.com:443"]);
        let e = r.admit(&name("bad.example.com"), 443).unwrap_err();
        assert_eq!(e.rule.unwrap().label, "network.deny_hosts[0]");
        assert!(r.admit(&name("bad.example.com"), 80).is_ok());
        let ok = r.admit(&name("good.example.com"), 443).unwrap();
        assert_eq!(ok.rule.label, "network.allow_hosts[0]");
    }

    #[test]
    fn internal_addresses_need_a_rule_that_names_them() {
        let r = rules(
            &[
                "localhost:8080",
                "svc.test:80 via 127.0.0.1",
                "127.0.0.1:9000",
            ],
            &[],
        );
        let t = name("localhost");
        let a = r.admit(&t, 8080).unwrap();
        let e = r
            .permitted(&a, &t, 8080, &[ip("127.0.0.1"), ip("::1")])
            .unwrap_err();
        assert!(
            e.reason.contains("loopback") && e.reason.contains("via 127.0.0.1"),
            "{}",
            e.reason
        );
        let t = name("svc.test");
        let a = r.admit(&t, 80).unwrap();
        assert_eq!(
            r.permitted(&a, &t, 80, &[ip("127.0.0.1"), ip("::1")])
                .unwrap(),
            [ip("127.0.0.1")]
        );
        let t = Target::Ip(ip("127.0.0.1"));
        let a = r.admit(&t, 9000).unwrap();
        assert_eq!(
            r.permitted(&a, &t, 9000, &[ip("127.0.0.1")]).unwrap(),
            [ip("127.0.0.1")]
        );
        assert!(r.admit(&t, 9001).is_err());
    }

    #[test]
    fn metadata_and_rebinding_are_refused() {
        let r = rules(&["*.example.com:80"], &[]);
        let t = name("rebind.example.com");
        let a = r.admit(&t, 80).unwrap();
        let e = r
            .permitted(&a, &t, 80, &[ip("169.254.169.254")])
            .unwrap_err();
        assert!(e.reason.contains("metadata"), "{}", e.reason);
        let e = r
            .permitted(&a, &t, 80, &[ip("::ffff:10.0.0.1")])
            .unwrap_err();
        assert!(e.reason.contains("private"), "{}", e.reason);
        // Mixed answers keep only the public address.
        assert_eq!(
            r.permitted(&a, &t, 80, &[ip("10.0.0.1"), ip("93.184.215.14")])
                .unwrap(),
            [ip("93.184.215.14")]
        );
    }

    #[test]
    fn a_deny_block_covers_names_that_resolve_into_it() {
        let r = rules(&["*:443"], &["203.0.113.0/24:*"]);
        let t = name("cdn.example");
        let a = r.admit(&t, 443).unwrap();
        let e = r.permitted(&a, &t, 443, &[ip("203.0.113.7")]).unwrap_err();
        assert_eq!(e.rule.unwrap().label, "network.deny_hosts[0]");
    }

    #[test]
    fn names_match_as_written() {
        let r = rules(
            &["api.github.com:443", "*.pythonhosted.org:443", "*:8443"],
            &[],
        );
        assert!(r.admit(&name("api.github.com"), 443).is_ok());
        assert!(r.admit(&name("API.GITHUB.COM."), 443).is_ok());
        assert!(r.admit(&name("api.github.com"), 80).is_err());
        assert!(r.admit(&name("evil-api.github.com"), 443).is_err());
        assert!(r.admit(&name("github.com"), 443).is_err());
        assert!(r.admit(&name("files.pythonhosted.org"), 443).is_ok());
        assert!(r.admit(&name("a.b.pythonhosted.org"), 443).is_ok());
        assert!(r.admit(&name("pythonhosted.org"), 443).is_err());
        assert!(r.admit(&name("evilpythonhosted.org"), 443).is_err());
        assert!(r.admit(&name("anything.example"), 8443).is_ok());
        // A wildcard never covers a literal address.
        let e = r.admit(&Target::Ip(ip("140.82.112.3")), 8443).unwrap_err();
        assert!(e.reason.contains("literal address"), "{}", e.reason);
    }
}
