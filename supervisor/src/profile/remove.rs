//! A child profile dropping what it inherits: `KEY = { remove = [...],
//! add = [...] }` instead of `KEY = [...]` for a list key.
//!
//! Lists otherwise only concatenate down an `extends` chain, so a site or
//! test profile could never narrow a shipped one (drop its port 443, its
//! vendor host, a `pass` variable). A removal names an entry as the
//! parent wrote it (a port, a `HOST:PORT` rule's text, a path as written,
//! a variable name) and must match one: a removal that matches nothing is
//! an error, since it would leave in place what its writer believed gone.

use toml::de::DeValue;

use super::layer::Located;
use super::walk::{article, Value, Walker};
use super::{Diagnostic, Location};

/// One entry a child removes from an inherited list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Removal {
    /// The list, as its section and key (`[network] connect_tcp`).
    pub list: &'static str,
    /// The entry as the list compares them.
    pub text: String,
    pub origin: Location,
}

/// `KEY = [...]` gives the whole value as the list to add. `KEY = { add =
/// [...], remove = [...] }` gives `add` (if any) and the `remove` array
/// (if any); other keys in that table are errors.
pub(super) fn split<'v, 'i>(
    w: &mut Walker<'_>,
    key: &str,
    value: &'v Value<'i>,
) -> (Option<&'v Value<'i>>, Option<&'v Value<'i>>) {
    let DeValue::Table(t) = value.get_ref() else {
        return (Some(value), None);
    };
    w.unknown_keys(t, &["add", "remove"], &format!("the `{key}` table"));
    let (add, remove) = (t.get("add"), t.get("remove"));
    if add.is_none() && remove.is_none() {
        w.error(
            &value.span(),
            format!(
                "`{key}` as a table takes `remove` (entries of the parent profile's `{key}` to drop) and `add`, as in {key} = {{ remove = [...], add = [...] }}; for a plain list write {key} = [...]"
            ),
        );
    }
    if let Some(r) = remove {
        if !matches!(r.get_ref(), DeValue::Array(_)) {
            let msg = format!(
                "`{key}`'s `remove` expects an array of the parent's entries, got {}",
                article(r.get_ref())
            );
            w.error(&r.span(), msg);
            return (add, None);
        }
    }
    (add, remove)
}

/// The removals of `list`, one per entry of `items` (parsed by the
/// list's own parser, so they are checked like entries), keyed by `key`.
pub(super) fn removals<T>(
    list: &'static str,
    items: Vec<T>,
    key: impl Fn(&T) -> (String, Location),
) -> Vec<Removal> {
    items
        .iter()
        .map(|item| {
            let (text, origin) = key(item);
            Removal { list, text, origin }
        })
        .collect()
}

/// Ports as removals.
pub(super) fn ports(list: &'static str, ports: Vec<Located<u16>>) -> Vec<Removal> {
    removals(list, ports, |p| (p.value.to_string(), p.origin.clone()))
}

/// Drops from `parent` (the merged ancestors' `list`) the entries `removals`
/// name; a removal that matches nothing is reported.
pub(super) fn apply<T>(
    parent: Vec<T>,
    list: &'static str,
    removals: &[Removal],
    key: impl Fn(&T) -> String,
    diags: &mut Vec<Diagnostic>,
) -> Vec<T> {
    let mine: Vec<&Removal> = removals.iter().filter(|r| r.list == list).collect();
    if mine.is_empty() {
        return parent;
    }
    for r in &mine {
        if !parent.iter().any(|e| key(e) == r.text) {
            let had: Vec<String> = parent.iter().map(|e| format!("`{}`", key(e))).collect();
            let had = if had.is_empty() {
                "it has none".to_string()
            } else {
                format!("it has {}", had.join(", "))
            };
            diags.push(Diagnostic {
                location: r.origin.clone(),
                message: format!(
                    "`{list}` removes `{}`, which no profile this one extends lists ({had}); a removal must name an inherited entry as it is written there",
                    r.text
                ),
            });
        }
    }
    parent
        .into_iter()
        .filter(|e| !mine.iter().any(|r| r.text == key(e)))
        .collect()
}

/// A profile that extends nothing has nothing to remove.
pub(super) fn check_root(removals: &[Removal], has_parent: bool, diags: &mut Vec<Diagnostic>) {
    if has_parent {
        return;
    }
    for r in removals {
        diags.push(Diagnostic {
            location: r.origin.clone(),
            message: format!(
                "`{}` removes `{}`, but this profile has no `extends`: there is nothing inherited to remove; write the list without it",
                r.list, r.text
            ),
        });
    }
}

/// An entry both added and removed in one file.
pub(super) fn check_added<T>(
    list: &'static str,
    removals: &[Removal],
    added: &[T],
    key: impl Fn(&T) -> String,
    diags: &mut Vec<Diagnostic>,
) {
    for r in removals.iter().filter(|r| r.list == list) {
        if added.iter().any(|a| key(a) == r.text) {
            diags.push(Diagnostic {
                location: r.origin.clone(),
                message: format!("`{list}` both adds and removes `{}`; keep one", r.text),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn load(dir: &Path, files: &[(&str, &str)]) -> Result<crate::profile::Profile, Vec<String>> {
        for (name, body) in files {
            std::fs::write(dir.join(name), body).unwrap();
        }
        crate::profile::load(&dir.join(files.last().unwrap().0))
            .map_err(|e| e.diagnostics.iter().map(|d| d.to_string()).collect())
    }

    const BASE: &str = "[profile]\nname = \"base\"\n[filesystem]\nread = [\"/usr\", \"/etc/ssl\"]\n\
        [network]\nconnect_tcp = [443, 80]\nallow_hosts = [\"api.example.com:443\", \"b.example.com:443\"]\n\
        [environment]\npass = [\"LANG\", \"API_KEY\"]\n";

    #[test]
    fn a_child_drops_inherited_entries_and_adds_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let child = "[profile]\nname = \"kid\"\nextends = \"base.toml\"\n\
            [filesystem]\nread = { remove = [\"/etc/ssl\"] }\n\
            [network]\nconnect_tcp = { remove = [443], add = [8443] }\n\
            allow_hosts = { remove = [\"b.example.com:443\"] }\n\
            [environment]\npass = { remove = [\"API_KEY\"] }\n";
        let p = load(dir.path(), &[("base.toml", BASE), ("kid.toml", child)]).unwrap();
        let read: Vec<&str> = p.filesystem.read.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(read, ["/usr"]);
        assert_eq!(p.network.connect_tcp, [80, 8443]);
        let hosts: Vec<&str> = p
            .network
            .allow_hosts
            .iter()
            .map(|r| r.text.as_str())
            .collect();
        assert_eq!(hosts, ["api.example.com:443"]);
        assert_eq!(p.environment.pass, ["LANG"]);
        // A grandchild sees what its parent left.
        let grand = "[profile]\nname = \"g\"\nextends = \"kid.toml\"\n[network]\nconnect_tcp = { remove = [443] }\n";
        let e = load(dir.path(), &[("g.toml", grand)]).unwrap_err();
        assert_eq!(e.len(), 1, "{e:#?}");
        assert!(
            e[0].starts_with(&format!("{}:5:27: `[network] connect_tcp` removes `443`, which no profile this one extends lists (it has `80`, `8443`)", dir.path().join("g.toml").display())),
            "{e:#?}"
        );
    }

    #[test]
    fn removals_that_cannot_mean_anything_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let root = "[profile]\nname = \"r\"\n[network]\nconnect_tcp = { remove = [443] }\n";
        let e = load(dir.path(), &[("r.toml", root)]).unwrap_err();
        assert!(
            e.len() == 1
                && e[0].contains(
                    "`[network] connect_tcp` removes `443`, but this profile has no `extends`"
                ),
            "{e:#?}"
        );
        let kid = "[profile]\nname = \"k\"\nextends = \"base.toml\"\n[filesystem]\n\
            read = { remove = [\"/usr/\"], add = [\"/etc/ssl\"], keep = [] }\n\
            [environment]\npass = { remove = [\"LANG\"], add = [\"LANG\"] }\n\
            [divergence]\ntolerated_hosts = { }\n";
        let e = load(dir.path(), &[("base.toml", BASE), ("k.toml", kid)]).unwrap_err();
        let all = e.join("\n");
        for want in [
            "unknown key `keep` in the `read` table",
            "`[filesystem] read` removes `/usr/`, which no profile this one extends lists (it has `/usr`, `/etc/ssl`)",
            "`[environment] pass` both adds and removes `LANG`; keep one",
            "`tolerated_hosts` as a table takes `remove`",
        ] {
            assert!(all.contains(want), "missing {want:?} in\n{all}");
        }
        // A sub-agent's profile (no extends there) cannot remove either.
        let e = crate::profile::load_text(Path::new("sub"), root).unwrap_err();
        assert!(e.to_string().contains("has no `extends`"), "{e}");
    }
}
