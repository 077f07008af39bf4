//! The egress proxy's request-head parser and host-rule language, on
//! what an agent sends and what a profile says: never a panic; a parsed
//! plain-HTTP request is forwarded in origin form, closes after one
//! request and carries no proxy credentials; a literal address is never
//! matched by a name rule.
#![no_main]
use cordon::egress::http::{parse, Request};
use cordon::profile::hosts::{parse_rule, HostPattern, Target};
use cordon::profile::Location;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Request::Forward { head, host, port }) = parse(data) {
        let text = String::from_utf8(head).expect("a forwarded head is UTF-8");
        let line = text.split("\r\n").next().unwrap_or("");
        let target = line.split(' ').nth(1).unwrap_or("");
        assert!(target.starts_with('/'), "not origin form: {line:?}");
        assert!(text.ends_with("Connection: close\r\n\r\n"), "{text:?}");
        assert!(!text.to_ascii_lowercase().contains("\r\nproxy-authorization:"));
        assert!(port > 0 && !host.is_empty());
    }
    let Ok(text) = std::str::from_utf8(data) else { return };
    let origin = Location::whole_file(std::path::Path::new("fuzz.toml"));
    if let Ok(rule) = parse_rule(text, origin) {
        if !matches!(rule.host, HostPattern::Block(_)) {
            let ip = Target::Ip("203.0.113.9".parse().expect("an address"));
            assert!(!rule.matches(&ip, 443), "a name rule matched an address: {text:?}");
        }
    }
});
