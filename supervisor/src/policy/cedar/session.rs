//! One session's policies: the compiled engine, `unmatched`, and who asks
//! (the session, its profile, intent and ancestors). Every decision path
//! of a session (exec, MCP calls, the egress proxies of the agent and of
//! each tool call, secrets, sub-agents) asks through one of these, so
//! each sees the same principal and the same combination rule.

use std::sync::Arc;

use super::{combine, Combined, Engine, Principal, Request, Unmatched};
use crate::policy::Verdict;
use crate::profile::Profile;

/// A session's policies, shared by its broker and its egress proxies.
#[derive(Debug)]
pub struct SessionPolicies {
    /// `Err`: the file no longer compiles (it did when the profile was
    /// loaded, so it changed since); every decision then denies.
    engine: Result<Engine, String>,
    unmatched: Unmatched,
    session: String,
    profile: String,
    intent: Option<String>,
    chain: Vec<String>,
}

impl SessionPolicies {
    /// The policies of `profile`'s `[policy] cedar` for session `id`
    /// (`None` without one), compiled now.
    pub fn new(
        profile: &Profile,
        id: &str,
        intent: Option<&str>,
        chain: &[String],
    ) -> Option<Arc<SessionPolicies>> {
        let file = profile.policy.cedar.as_ref()?;
        let name = crate::profile::policy_file_name(&file.path);
        let engine = Engine::compile(&name, &file.text).map_err(|problems| {
            let first = problems
                .first()
                .map(|p| p.message.clone())
                .unwrap_or_default();
            format!(
                "the Cedar policies of {} do not compile: {first}",
                file.path.display()
            )
        });
        Some(Arc::new(SessionPolicies {
            engine,
            unmatched: profile.policy.unmatched,
            session: id.to_string(),
            profile: profile.name.clone(),
            intent: intent.map(str::to_string),
            chain: chain.to_vec(),
        }))
    }

    /// Who asks.
    pub fn principal(&self) -> Principal<'_> {
        Principal {
            session: &self.session,
            profile: &self.profile,
            intent: self.intent.as_deref(),
            chain: &self.chain,
        }
    }

    /// The decision on `req`, whose TOML verdict it carries: the policies
    /// are asked only when that verdict is not a deny (a TOML deny is
    /// final), and can only narrow it (see [`combine`]).
    pub fn decide(&self, req: &Request<'_>) -> Combined {
        if req.toml == Verdict::Deny {
            return combine(Verdict::Deny, None, self.unmatched);
        }
        match &self.engine {
            Ok(engine) => combine(req.toml, Some(&engine.evaluate(req)), self.unmatched),
            Err(e) => Combined {
                verdict: Verdict::Deny,
                policies: vec![],
                reason: Some(e.clone()),
            },
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test fails by panicking
mod tests {
    use super::*;

    fn profile(text: &str, unmatched: Unmatched) -> Profile {
        let mut p = crate::profile::load_text(
            std::path::Path::new("/x/p.toml"),
            "[profile]\nname = \"p\"\n",
        )
        .unwrap();
        p.policy.cedar = Some(crate::profile::CedarFile {
            path: "/x/team.cedar".into(),
            text: text.into(),
            origin: crate::profile::Location::whole_file(std::path::Path::new("/x/p.toml")),
        });
        p.policy.unmatched = unmatched;
        p
    }

    #[test]
    fn a_toml_deny_is_never_put_to_the_policies() {
        let p = profile("permit (principal, action, resource);", Unmatched::Toml);
        let s = SessionPolicies::new(&p, "s1", None, &[]).unwrap();
        let req = Request::connect(s.principal(), "evil.test", 443, None).decided(
            Verdict::Deny,
            String::new(),
            None,
        );
        let c = s.decide(&req);
        assert_eq!(c.verdict, Verdict::Deny);
        assert!(c.policies.is_empty());
        let req = Request::connect(s.principal(), "ok.test", 443, None);
        let c = s.decide(&req);
        assert_eq!(c.verdict, Verdict::Allow);
        assert_eq!(c.policies.len(), 1);
    }

    #[test]
    fn a_file_that_no_longer_compiles_denies_everything() {
        let p = profile(
            "permit (principal, action, resource) when { nope };",
            Unmatched::Toml,
        );
        let s = SessionPolicies::new(&p, "s1", None, &[]).unwrap();
        let c = s.decide(&Request::secret(s.principal(), "T", None));
        assert_eq!(c.verdict, Verdict::Deny);
        assert!(c.reason.unwrap().contains("do not compile"));
    }

    #[test]
    fn unmatched_deny_needs_a_permit_on_every_path() {
        let p = profile(
            "permit (principal, action == Cordon::Action::\"exec\", resource);",
            Unmatched::Deny,
        );
        let s = SessionPolicies::new(&p, "s1", None, &[]).unwrap();
        let exec = Request::exec(s.principal(), "git", &[b"status"], None, "/ws");
        assert_eq!(s.decide(&exec).verdict, Verdict::Allow);
        let secret = Request::secret(s.principal(), "TOKEN", Some("git"));
        assert_eq!(s.decide(&secret).verdict, Verdict::Deny);
        let spawn = Request::spawn(s.principal(), "child", &[b"sh"]);
        assert_eq!(s.decide(&spawn).verdict, Verdict::Deny);
    }
}
