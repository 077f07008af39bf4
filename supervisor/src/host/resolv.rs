//! The name servers this host uses (`nameserver` lines of
//! /etc/resolv.conf): the only destinations of a sandbox's UDP.

use std::net::IpAddr;
use std::path::Path;

/// The addresses of `resolv.conf`'s `nameserver` lines, in order, at most
/// three (as glibc uses them). A scope suffix (`fe80::1%eth0`) is dropped.
pub fn nameservers(text: &str) -> Vec<IpAddr> {
    text.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            (words.next() == Some("nameserver"))
                .then(|| words.next())
                .flatten()
        })
        .filter_map(|a| a.split('%').next()?.parse().ok())
        .take(3)
        .collect()
}

/// [`nameservers`] of the file at `path` (normally /etc/resolv.conf);
/// none when it cannot be read.
pub fn read(path: &Path) -> Vec<IpAddr> {
    std::fs::read_to_string(path)
        .map(|t| nameservers(&t))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nameserver_lines_only_and_at_most_three() {
        let text = "# comment nameserver 9.9.9.9\nsearch example\nnameserver 10.0.0.2\nnameserver  fe80::1%eth0\nnameserver bogus\nnameserver 1.1.1.1\nnameserver 8.8.8.8\n";
        let got = nameservers(text);
        assert_eq!(
            got,
            ["10.0.0.2", "fe80::1", "1.1.1.1"]
                .map(|a| a.parse::<IpAddr>().unwrap())
                .to_vec()
        );
    }
}
