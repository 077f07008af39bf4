// Tests may panic on a broken fixture: that is how they fail.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use proptest::prelude::*;

use super::*;
use crate::egress::h1::parse_request;

const GH: &str = "ghp_RealGitHubValue0123456789abcdef";
const ANT: &str = "sk-ant-RealAnthropicValue-0123456789";
const OAI: &str = "sk-RealOpenAIValue-abcdefghij0123";

fn placeholder(n: u8) -> Placeholder {
    Placeholder::from_random([n; 20])
}

/// The session CA, made once: key generation is the slow part.
fn tls() -> Arc<Tls> {
    static TLS: OnceLock<Arc<Tls>> = OnceLock::new();
    Arc::clone(TLS.get_or_init(|| {
        let ca = rcgen::generate_simple_self_signed(vec!["root.test".into()]).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.cert.der().clone()).unwrap();
        let hosts = [
            "api.github.com",
            "github.com",
            "api.anthropic.com",
            "api.openai.com",
        ]
        .map(String::from);
        Arc::new(Tls::with_roots("test", &hosts, roots).unwrap())
    }))
}

fn secret(
    name: &str,
    p: u8,
    value: &str,
    hosts: &[&str],
    header: &str,
    form: Presentation,
) -> InjectSecret {
    InjectSecret {
        name: name.into(),
        placeholder: placeholder(p),
        value: SecretValue::new(value.as_bytes().to_vec()).into(),
        hosts: hosts.iter().map(|h| (h.to_string(), 443)).collect(),
        header: header.into(),
        form,
        expires: None,
        max_uses: None,
    }
}

fn secrets() -> Vec<InjectSecret> {
    vec![
        secret(
            "GITHUB_TOKEN",
            1,
            GH,
            &["api.github.com", "github.com"],
            "Authorization",
            Presentation::Basic {
                user: "x-access-token".into(),
            },
        ),
        secret(
            "ANTHROPIC_API_KEY",
            2,
            ANT,
            &["api.anthropic.com"],
            "x-api-key",
            Presentation::Format {
                before: String::new(),
                after: String::new(),
            },
        ),
        secret(
            "OPENAI_API_KEY",
            3,
            OAI,
            &["api.openai.com"],
            "Authorization",
            Presentation::Format {
                before: "Bearer ".into(),
                after: String::new(),
            },
        ),
    ]
}

/// The value a test secret was given.
fn value_of(s: &InjectSecret) -> &[u8] {
    match &s.value {
        Supply::Value(v) => v.expose(),
        Supply::Lazy(_) => panic!("{} has no value yet", s.name),
    }
}

fn injector() -> Injector {
    Injector::new(tls(), secrets()).unwrap()
}

fn p(n: u8) -> String {
    placeholder(n).as_str().to_string()
}

fn basic(user: &str, pass: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{pass}")))
}

/// Rewrites `head` (a full request head) toward `host:443`.
fn rewrite(inj: &Injector, host: &str, head: &str) -> Result<(String, Vec<String>), Refused> {
    let req = parse_request(head.as_bytes()).unwrap();
    inj.rewrite(&req, host, 443, Instant::now())
        .map(|r| (String::from_utf8(r.head.to_vec()).unwrap(), r.injected))
}

#[test]
fn each_shape_is_swapped_toward_its_own_hosts() {
    let inj = injector();
    let (head, names) = rewrite(&inj, "api.openai.com", &format!("POST /v1/chat HTTP/1.1\r\nHost: api.openai.com\r\nauthorization: bearer {}\r\nContent-Length: 2\r\n\r\n", p(3))).unwrap();
    assert_eq!(names, ["OPENAI_API_KEY"]);
    assert!(
        head.contains(&format!("authorization: Bearer {OAI}\r\n")),
        "{head}"
    );
    assert!(
        head.starts_with("POST /v1/chat HTTP/1.1\r\nHost: api.openai.com\r\n"),
        "{head}"
    );
    assert!(
        head.ends_with("Content-Length: 2\r\nAccept-Encoding: identity\r\n\r\n"),
        "{head}"
    );
    let (head, names) = rewrite(&inj, "github.com", &format!("GET /o/r.git/info/refs?service=git-receive-pack HTTP/1.1\r\nHost: github.com\r\nAuthorization: {}\r\n\r\n", basic("x-access-token", &p(1)))).unwrap();
    assert_eq!(names, ["GITHUB_TOKEN"]);
    assert!(
        head.contains(&format!(
            "Authorization: {}\r\n",
            basic("x-access-token", GH)
        )),
        "{head}"
    );
    let (head, names) = rewrite(
        &inj,
        "api.anthropic.com",
        &format!(
            "POST /v1/messages HTTP/1.1\r\nHost: API.anthropic.com:443\r\nX-API-Key: {}\r\n\r\n",
            p(2)
        ),
    )
    .unwrap();
    assert_eq!(names, ["ANTHROPIC_API_KEY"]);
    assert!(head.contains(&format!("X-API-Key: {ANT}\r\n")), "{head}");
    // Without a placeholder nothing is injected and the head passes.
    let (head, names) = rewrite(
        &inj,
        "api.github.com",
        "GET /zen HTTP/1.1\r\nHost: api.github.com\r\nAuthorization: Bearer someone-elses\r\n\r\n",
    )
    .unwrap();
    assert!(names.is_empty());
    assert!(head.contains("Authorization: Bearer someone-elses\r\n"));
}

#[test]
fn a_placeholder_anywhere_else_is_refused_and_never_swapped() {
    let inj = injector();
    let cases = [
        // Another host than the secret's.
        ("api.openai.com", format!("GET / HTTP/1.1\r\nHost: api.openai.com\r\nx-api-key: {}\r\n\r\n", p(2)), "not one of its hosts (api.anthropic.com:443)"),
        ("api.anthropic.com", format!("GET / HTTP/1.1\r\nHost: api.anthropic.com\r\nAuthorization: {}\r\n\r\n", basic("x-access-token", &p(1))), "not one of its hosts (api.github.com:443, github.com:443)"),
        // The right host, the wrong place.
        ("api.anthropic.com", format!("GET /?key={} HTTP/1.1\r\nHost: api.anthropic.com\r\n\r\n", p(2)), "never swapped; it is injected only as `x-api-key: <placeholder>`"),
        ("api.anthropic.com", format!("GET / HTTP/1.1\r\nHost: api.anthropic.com\r\nX-Debug: {}\r\n\r\n", p(2)), "never swapped"),
        ("api.anthropic.com", format!("GET / HTTP/1.1\r\nHost: api.anthropic.com\r\nx-api-key: {} \r\nX: {}\r\n\r\n", p(2), p(2).to_uppercase()), "never swapped"),
        ("api.openai.com", format!("GET / HTTP/1.1\r\nHost: api.openai.com\r\nAuthorization: Bearer {}x\r\n\r\n", p(3)), "never swapped"),
        ("api.openai.com", format!("GET / HTTP/1.1\r\nHost: api.openai.com\r\nAuthorization: Token {}\r\n\r\n", p(3)), "Bearer <placeholder>"),
        ("github.com", format!("GET / HTTP/1.1\r\nHost: github.com\r\nAuthorization: {}\r\n\r\n", basic("someone", &p(1))), "Basic base64(x-access-token:<placeholder>)"),
        ("github.com", format!("GET / HTTP/1.1\r\nHost: github.com\r\nCookie: {}\r\n\r\n", basic("x-access-token", &p(1))), "never swapped"),
        ("github.com", format!("GET / HTTP/1.1\r\nHost: github.com\r\n{}: 1\r\n\r\n", p(1)), "never swapped"),
        ("github.com", format!("GET / HTTP/1.1\r\nHost: github.com\r\nProxy-Authorization: {}\r\n\r\n", basic("x-access-token", &p(1))), "never swapped"),
        // Twice.
        ("api.openai.com", format!("GET / HTTP/1.1\r\nHost: api.openai.com\r\nAuthorization: Bearer {0}\r\nauthorization: Bearer {0}\r\n\r\n", p(3)), "two `authorization` headers"),
    ];
    for (host, head, says) in cases {
        let e = rewrite(&inj, host, &head)
            .err()
            .unwrap_or_else(|| panic!("passed: {head}"));
        assert!(
            e.reason.contains(says) && e.charged,
            "{head}\n=> {}",
            e.reason
        );
        for v in [GH, ANT, OAI] {
            assert!(!e.reason.contains(v));
        }
    }
}

#[test]
fn the_host_header_must_be_the_tunnels() {
    let inj = injector();
    for (head, says) in [
        (format!("GET / HTTP/1.1\r\nHost: evil.test\r\nAuthorization: Bearer {}\r\n\r\n", p(3)), "Host `evil.test` is not the tunnel's host api.openai.com:443"),
        (format!("GET / HTTP/1.1\r\nHost: api.openai.com:8443\r\nAuthorization: Bearer {}\r\n\r\n", p(3)), "not the tunnel's host"),
        (format!("GET / HTTP/1.1\r\nAuthorization: Bearer {}\r\n\r\n", p(3)), "exactly one Host header (it has 0)"),
        ("GET / HTTP/1.1\r\nHost: api.openai.com\r\nHost: evil.test\r\n\r\n".to_string(), "exactly one Host header (it has 2)"),
        ("GET / HTTP/1.1\r\nHost: api.openai.com\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n".to_string(), "protocol upgrades"),
    ] {
        let e = rewrite(&inj, "api.openai.com", &head).err().unwrap_or_else(|| panic!("passed: {head}"));
        assert!(e.reason.contains(says) && e.charged, "{head}\n=> {}", e.reason);
    }
    assert!(rewrite(
        &inj,
        "api.openai.com",
        "GET / HTTP/1.1\r\nHost: API.OpenAI.com.\r\n\r\n"
    )
    .is_ok());
}

#[test]
fn hop_by_hop_headers_go_and_expect_is_answered_by_the_proxy() {
    let inj = injector();
    let req = parse_request(b"POST / HTTP/1.1\r\nHost: api.openai.com\r\nConnection: close, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: 5\r\nProxy-Authorization: Basic eA==\r\nTE: trailers\r\nExpect: 100-continue\r\nAccept-Encoding: gzip, br\r\nX-Kept: 2\r\n\r\n").unwrap();
    let r = inj
        .rewrite(&req, "api.openai.com", 443, Instant::now())
        .unwrap();
    assert!(r.close && r.expect_continue);
    assert_eq!(
        String::from_utf8(r.head.to_vec()).unwrap(),
        "POST / HTTP/1.1\r\nHost: api.openai.com\r\nX-Kept: 2\r\nAccept-Encoding: identity\r\nConnection: close\r\n\r\n"
    );
}

#[test]
fn revoked_expired_and_used_up_secrets_are_refused_without_charge() {
    let mut s = secrets();
    s[2].max_uses = Some(1);
    s[1].expires = Some(Instant::now() + Duration::from_secs(60));
    let inj = Injector::new(tls(), s).unwrap();
    let oai = format!(
        "GET / HTTP/1.1\r\nHost: api.openai.com\r\nAuthorization: Bearer {}\r\n\r\n",
        p(3)
    );
    assert!(rewrite(&inj, "api.openai.com", &oai).is_ok());
    let e = rewrite(&inj, "api.openai.com", &oai).unwrap_err();
    assert!(
        e.reason.contains("reached its max_uses = 1") && !e.charged,
        "{e:?}"
    );
    let ant = format!(
        "GET / HTTP/1.1\r\nHost: api.anthropic.com\r\nx-api-key: {}\r\n\r\n",
        p(2)
    );
    let req = parse_request(ant.as_bytes()).unwrap();
    let later = Instant::now() + Duration::from_secs(61);
    let e = inj
        .rewrite(&req, "api.anthropic.com", 443, later)
        .err()
        .unwrap();
    assert!(e.reason.contains("has expired") && !e.charged, "{e:?}");
    assert!(inj.revoke("ANTHROPIC_API_KEY"));
    assert!(!inj.revoke("NOT_HERE"));
    let e = rewrite(&inj, "api.anthropic.com", &ant).unwrap_err();
    assert_eq!(e.reason, "secret `ANTHROPIC_API_KEY` was revoked");
    assert_eq!(e.secret.as_deref(), Some("ANTHROPIC_API_KEY"));
}

#[test]
fn the_registry_refuses_what_it_cannot_inject_safely() {
    let mut s = secrets();
    s[0].value = SecretValue::new(b"line\r\nX-Evil: 1".to_vec()).into();
    let e = Injector::new(tls(), s).unwrap_err().to_string();
    assert!(
        e.contains("control character") && !e.contains("X-Evil"),
        "{e}"
    );
    let mut s = secrets();
    s[1].hosts.push(("evil.test".into(), 443));
    let e = Injector::new(tls(), s).unwrap_err().to_string();
    assert!(e.contains("cannot sign for its host evil.test"), "{e}");
    let mut s = secrets();
    s[2].placeholder = placeholder(1);
    assert!(matches!(
        Injector::new(tls(), s),
        Err(InjectError::SamePlaceholder(..))
    ));
    let inj = injector();
    assert!(inj.intercepts("API.GITHUB.COM", 443));
    assert!(!inj.intercepts("api.github.com", 8443));
    assert!(!inj.intercepts("gist.github.com", 443));
    let head = format!(
        "GET http://x.test/ HTTP/1.1\r\nAuthorization: {}\r\n\r\n",
        basic("u", &p(2))
    );
    assert_eq!(
        inj.find_placeholder(head.as_bytes()),
        Some("ANTHROPIC_API_KEY")
    );
    assert_eq!(
        inj.find_placeholder(p(3).to_uppercase().as_bytes()),
        Some("OPENAI_API_KEY")
    );
    assert_eq!(inj.find_placeholder(b"GET / HTTP/1.1\r\n\r\n"), None);
    let masked = inj
        .redactor("api.github.com", 443)
        .unwrap()
        .redact(format!("echo: {GH}").as_bytes());
    assert_eq!(masked, b"echo: [cordon: redacted]");
}

/// Header names as a client might case them.
fn casing(name: &'static str) -> impl Strategy<Value = String> {
    prop::collection::vec(any::<bool>(), name.len()).prop_map(move |upper| {
        name.chars()
            .zip(upper)
            .map(|(c, u)| if u { c.to_ascii_uppercase() } else { c })
            .collect()
    })
}

/// A header carrying (a piece of) some placeholder, in some shape.
fn header() -> impl Strategy<Value = (String, String)> {
    let name = prop_oneof![
        casing("authorization"),
        casing("x-api-key"),
        casing("x-other"),
        casing("cookie")
    ];
    let which = 1u8..=3;
    let shape = 0usize..8;
    (name, which, shape, "[a-z ]{0,6}").prop_map(|(name, n, shape, noise)| {
        let ph = p(n);
        let value = match shape {
            0 => ph.clone(),
            1 => format!("Bearer {ph}"),
            2 => basic("x-access-token", &ph),
            3 => basic(&noise.replace(' ', "_"), &ph),
            4 => format!("{noise}{ph}"),
            5 => ph[..ph.len() / 2].to_string(),
            6 => ph[ph.len() / 2..].to_string(),
            _ => format!("BEARER {}", ph.to_uppercase()),
        };
        (name, value)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// Whatever the headers, casing and splitting: what is sent holds no
    /// placeholder, a value only toward that secret's own hosts, and a
    /// refusal never holds a value.
    #[test]
    fn no_placeholder_leaves_and_no_value_goes_elsewhere(
        host in prop::sample::select(vec!["api.github.com", "github.com", "api.anthropic.com", "api.openai.com", "evil.test"]),
        headers in prop::collection::vec(header(), 0..5),
        in_target in any::<bool>(),
    ) {
        let inj = injector();
        let target = if in_target { format!("/q?x={}", p(2)) } else { "/q".into() };
        let mut head = format!("GET {target} HTTP/1.1\r\nHost: {host}\r\n");
        for (n, v) in &headers {
            head.push_str(&format!("{n}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let Ok(req) = parse_request(head.as_bytes()) else { return Ok(()); };
        let all = secrets();
        match inj.rewrite(&req, host, 443, Instant::now()) {
            Ok(r) => {
                let sent = r.head.to_ascii_lowercase();
                for s in &all {
                    let ph = s.placeholder.as_str().as_bytes();
                    prop_assert!(!sent.windows(ph.len()).any(|w| w == ph), "placeholder of {} sent: {head}", s.name);
                    let v = value_of(s);
                    let b64 = STANDARD.encode([b"x-access-token:".as_slice(), v].concat());
                    let shown = r.head.windows(v.len()).any(|w| w == v)
                        || r.head.windows(b64.len()).any(|w| w == b64.as_bytes());
                    if shown {
                        prop_assert!(s.hosts.iter().any(|(h, _)| h == host), "{} sent to {host}", s.name);
                        prop_assert!(r.injected.contains(&s.name));
                    }
                }
            }
            Err(e) => {
                for s in &all {
                    let v = std::str::from_utf8(value_of(s)).unwrap();
                    prop_assert!(!e.reason.contains(v));
                }
            }
        }
    }
}

/// A supplier that counts what it is asked, hands out `value-N`, and
/// can be told to fail or to give values that expire at once.
#[derive(Default)]
struct Counting {
    fetched: std::sync::atomic::AtomicU32,
    released: Mutex<Vec<String>>,
    fail: std::sync::atomic::AtomicBool,
    short_lived: std::sync::atomic::AtomicBool,
}

impl Supplier for Counting {
    fn fetch(&self, _name: &str) -> Result<Fetched, String> {
        use std::sync::atomic::Ordering::SeqCst;
        if self.fail.load(SeqCst) {
            return Err("the provider is down".into());
        }
        let n = self.fetched.fetch_add(1, SeqCst) + 1;
        let expires = self.short_lived.load(SeqCst).then(Instant::now);
        Ok(Fetched {
            value: Arc::new(SecretValue::new(format!("lazy-value-{n:04}").into_bytes())),
            expires,
        })
    }

    fn release(&self, _name: &str, value: Arc<SecretValue>) {
        let v = String::from_utf8(value.expose().to_vec()).unwrap();
        self.released.lock().unwrap().push(v);
    }
}

#[test]
fn a_lazy_secret_is_fetched_at_its_first_request_again_after_its_ttl_and_released() {
    use std::sync::atomic::Ordering::SeqCst;
    let supplier = Arc::new(Counting::default());
    let mut s = secrets();
    s[2].value = Supply::Lazy(Arc::clone(&supplier) as Arc<dyn Supplier>);
    s[2].max_uses = Some(4);
    let inj = Injector::new(tls(), s).unwrap();
    // Nothing is fetched until a request needs it, nor by one that does not.
    assert!(inj.redactor("api.openai.com", 443).is_some());
    let plain = "GET / HTTP/1.1\r\nHost: api.openai.com\r\n\r\n";
    assert!(rewrite(&inj, "api.openai.com", plain).is_ok());
    assert_eq!(supplier.fetched.load(SeqCst), 0);
    let oai = format!(
        "GET / HTTP/1.1\r\nHost: api.openai.com\r\nAuthorization: Bearer {}\r\n\r\n",
        p(3)
    );
    let (head, _) = rewrite(&inj, "api.openai.com", &oai).unwrap();
    assert!(head.contains("Bearer lazy-value-0001\r\n"), "{head}");
    let (head, _) = rewrite(&inj, "api.openai.com", &oai).unwrap();
    assert!(head.contains("Bearer lazy-value-0001\r\n"), "{head}");
    assert_eq!(supplier.fetched.load(SeqCst), 1, "held, not fetched again");
    // The response mask knows the fetched value.
    let masked = inj
        .redactor("api.openai.com", 443)
        .unwrap()
        .redact(b"echo lazy-value-0001");
    assert_eq!(masked, b"echo [cordon: redacted]");
    // Once the held value expires, the next request fetches again; a
    // failed fetch is refused without charge, takes no use, and the
    // expired value goes back to the supplier all the same.
    inj.entries[2]
        .current
        .lock()
        .unwrap()
        .as_mut()
        .unwrap()
        .expires = Some(Instant::now());
    supplier.fail.store(true, SeqCst);
    supplier.short_lived.store(true, SeqCst);
    let later = Instant::now() + Duration::from_secs(1);
    let req = parse_request(oai.as_bytes()).unwrap();
    let e = inj
        .rewrite(&req, "api.openai.com", 443, later)
        .err()
        .unwrap();
    assert!(
        e.reason
            .contains("could not be fetched: the provider is down")
            && !e.charged,
        "{e:?}"
    );
    assert_eq!(
        supplier.released.lock().unwrap().as_slice(),
        ["lazy-value-0001"]
    );
    supplier.fail.store(false, SeqCst);
    let r = inj.rewrite(&req, "api.openai.com", 443, later).unwrap();
    assert!(String::from_utf8_lossy(&r.head).contains("lazy-value-0002"));
    // That one expired at once: the next request fetches a third, and the
    // second goes back.
    let r = inj.rewrite(&req, "api.openai.com", 443, later).unwrap();
    assert!(String::from_utf8_lossy(&r.head).contains("lazy-value-0003"));
    assert_eq!(
        supplier.released.lock().unwrap().as_slice(),
        ["lazy-value-0001", "lazy-value-0002"]
    );
    // Four injected requests were allowed; the refused one took no use.
    let e = inj
        .rewrite(&req, "api.openai.com", 443, later)
        .err()
        .unwrap();
    assert!(e.reason.contains("reached its max_uses = 4"), "{e:?}");
    // Finishing hands the held value back and refuses from then on.
    inj.finish();
    assert_eq!(supplier.released.lock().unwrap().len(), 3);
    let e = rewrite(&inj, "api.openai.com", &oai).unwrap_err();
    assert!(e.reason.contains("was revoked"), "{e:?}");
    drop(inj);
    assert_eq!(supplier.released.lock().unwrap().len(), 3, "released once");
}
