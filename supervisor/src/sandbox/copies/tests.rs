//! The copies scan on real trees: links, copies, what is skipped, the cache.

use super::*;

fn profile(tool: &Path, fs: &str) -> Profile {
    crate::profile::load_text(
        Path::new("c.toml"),
        &format!(
            "[profile]\nname = \"c\"\n[filesystem]\n{fs}\n[tools.t]\npath = \"{}\"\nallow = [[\"**\"]]\n",
            tool.display()
        ),
    )
    .unwrap()
}

#[test]
fn hard_links_and_copies_are_found_writable_and_denied_trees_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().canonicalize().unwrap();
    let bin = d.join("bin");
    let lib = d.join("lib");
    let rw = d.join("rw");
    let hidden = d.join("lib/hidden");
    for x in [&bin, &lib, &rw, &hidden] {
        std::fs::create_dir_all(x).unwrap();
    }
    let tool = bin.join("tool");
    std::fs::copy("/usr/bin/true", &tool).unwrap();
    std::fs::hard_link(&tool, lib.join("linked")).unwrap();
    std::fs::copy(&tool, lib.join("copied")).unwrap();
    std::fs::copy(&tool, rw.join("mine")).unwrap();
    std::fs::copy(&tool, hidden.join("masked")).unwrap();
    // Same size, other bytes: not a copy.
    let mut other = std::fs::read(&tool).unwrap();
    let last = other.len() - 1;
    other[last] ^= 0xff;
    std::fs::write(lib.join("lookalike"), other).unwrap();
    let p = profile(
        &tool,
        &format!(
            "read = [\"{}\", \"{}\"]\nwrite = [\"{}\"]\ndeny = [\"{}\"]",
            lib.display(),
            d.display(),
            rw.display(),
            hidden.display()
        ),
    );
    let values = Placeholders {
        workspace: d.clone(),
        home: d.clone(),
        tmp: d.clone(),
    };
    let s = scan(&p, &p.filesystem, &values, &[]);
    let mut got: Vec<(String, How)> = s
        .found
        .iter()
        .map(|r| {
            (
                r.path.file_name().unwrap().to_string_lossy().into_owned(),
                r.how,
            )
        })
        .collect();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        got,
        vec![
            ("copied".into(), How::Copy),
            ("linked".into(), How::HardLink)
        ],
        "{s:?}"
    );
    assert!(!s.truncated);
    assert!(s.found[0]
        .to_string()
        .contains("add it to [filesystem] deny"));
    // A shadowed path is the shim in the sandbox: not a way around.
    let s = scan(
        &p,
        &p.filesystem,
        &values,
        &[lib.join("linked"), lib.join("copied")],
    );
    assert!(s.found.is_empty(), "{s:?}");
}

#[test]
fn a_clean_scan_is_cached_until_a_walked_directory_changes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().canonicalize().unwrap();
    let (bin, lib, cache) = (d.join("bin"), d.join("lib/sub"), d.join("cache"));
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&lib).unwrap();
    let tool = bin.join("tool");
    std::fs::copy("/usr/bin/true", &tool).unwrap();
    let p = profile(&tool, &format!("read = [\"{}\"]", d.join("lib").display()));
    let values = Placeholders {
        workspace: d.clone(),
        home: d.clone(),
        tmp: d.clone(),
    };
    let first = scan_cached(&p, &p.filesystem, &values, &[], Some(&cache));
    assert!(first.found.is_empty() && !first.cached);
    let second = scan_cached(&p, &p.filesystem, &values, &[], Some(&cache));
    assert!(second.cached, "{second:?}");
    // A copy appears in a walked directory: its mtime moves, the cache
    // is not used, the copy is found.
    std::fs::copy(&tool, lib.join("copy")).unwrap();
    let third = scan_cached(&p, &p.filesystem, &values, &[], Some(&cache));
    assert!(!third.cached && third.found.len() == 1, "{third:?}");
    // Findings are not cached: still found.
    let fourth = scan_cached(&p, &p.filesystem, &values, &[], Some(&cache));
    assert!(!fourth.cached && fourth.found.len() == 1, "{fourth:?}");
}
