// Tests may panic on a broken fixture: that is how they fail.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use super::canonical::{canonicalize, Why};
use super::grammar::{Grammar, Style};
use crate::profile::shipped_grammar;

pub(super) fn shipped(name: &str) -> Arc<Grammar> {
    shipped_grammar(name).unwrap().unwrap()
}

/// The canonical form of `args` (split on spaces), or the reason.
fn canon(g: &str, args: &str) -> Result<String, String> {
    let g = shipped(g);
    let args: Vec<&[u8]> = args
        .split(' ')
        .filter(|a| !a.is_empty())
        .map(str::as_bytes)
        .collect();
    canonicalize(&g, &args)
        .map(|c| {
            c.tokens
                .iter()
                .map(|t| String::from_utf8_lossy(t).into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .map_err(|u| u.to_string())
}

fn ok(g: &str, args: &str) -> String {
    canon(g, args).unwrap_or_else(|e| panic!("{g} {args}: {e}"))
}

fn err(g: &str, args: &str) -> String {
    match canon(g, args) {
        Ok(c) => panic!("{g} {args}: expected a refusal, got {c}"),
        Err(e) => e,
    }
}

#[test]
fn git_push_spellings_an_attacker_would_try() {
    assert_eq!(
        ok("git", "push --del origin old"),
        "push --delete origin old"
    );
    assert_eq!(ok("git", "push --mirr origin"), "push --mirror origin");
    assert_eq!(ok("git", "push --pru origin"), "push --prune origin");
    assert_eq!(
        ok("git", "push --rece=sh origin"),
        "push --receive-pack=sh origin"
    );
    assert_eq!(
        ok("git", "push --rece sh origin"),
        "push --receive-pack=sh origin"
    );
    assert_eq!(ok("git", "push -f origin main"), "push --force origin main");
    // git too finds `--forc` ambiguous (--force-with-lease, --force-if-includes).
    assert!(err("git", "push --forc origin").contains("ambiguous"));
    assert_eq!(ok("git", "push --mir origin"), "push --mirror origin");
    assert_eq!(
        ok("git", "push -uf origin main"),
        "push --set-upstream --force origin main"
    );
    assert_eq!(
        ok("git", "push origin -fu main"),
        "push origin --force --set-upstream main"
    );
    assert_eq!(
        ok("git", "push --force-w=main:abc origin"),
        "push --force-with-lease=main:abc origin"
    );
    assert_eq!(
        ok("git", "push --no-force origin"),
        "push --no-force origin"
    );
    assert_eq!(ok("git", "push -d origin x"), "push --delete origin x");
    assert_eq!(
        ok("git", "push -o ci.skip origin"),
        "push --push-option=ci.skip origin"
    );
    // `--` and `--end-of-options` end the options: what follows is a refspec.
    assert_eq!(
        ok("git", "push origin -- --force"),
        "push origin -- --force"
    );
    assert_eq!(
        ok("git", "push --end-of-options --force"),
        "push --end-of-options --force"
    );
    let e = err("git", "push --fo origin");
    assert!(
        e.starts_with("git push: `--fo` is an ambiguous abbreviation ("),
        "{e}"
    );
    assert!(
        e.contains("--follow-tags") && e.contains("--force-with-lease"),
        "{e}"
    );
    assert!(err("git", "push --no-fo").contains("ambiguous"));
    assert_eq!(
        err("git", "push --frob"),
        "git push: unknown option `--frob`"
    );
    assert_eq!(err("git", "push -fz"), "git push: unknown option `-fz`");
    assert_eq!(
        err("git", "push --force=yes"),
        "git push: `--force` takes no value"
    );
    assert_eq!(
        err("git", "push --repo"),
        "git push: `--repo` needs a value"
    );
    assert_eq!(
        err("git", "push --no-repo=x"),
        "git push: `--no-repo` takes no value"
    );
}

#[test]
fn git_main_options_and_subcommands() {
    assert_eq!(
        ok(
            "git",
            "-c core.hooksPath=/dev/null -c core.fsmonitor= --no-optional-locks ls-files"
        ),
        "-c=core.hooksPath=/dev/null -c=core.fsmonitor= --no-optional-locks ls-files"
    );
    assert_eq!(ok("git", "-C /x status"), "-C=/x status");
    assert_eq!(ok("git", "--git-dir=/x status"), "--git-dir=/x status");
    assert_eq!(ok("git", "--git-dir /x status"), "--git-dir=/x status");
    assert_eq!(ok("git", "--version"), "--version");
    // git.c takes no prefixes, no bundles, no attached -c.
    assert_eq!(err("git", "--no-pag log"), "git: unknown option `--no-pag`");
    assert_eq!(
        err("git", "-ccore.pager=sh log"),
        "git: unknown option `-ccore.pager=sh`"
    );
    assert_eq!(err("git", "-pP log"), "git: unknown option `-pP`");
    assert_eq!(
        err("git", "st"),
        "git: `st` is not a subcommand the grammar knows"
    );
    assert!(
        err("git", "filter-branch --tree-filter x").contains("`filter-branch` is not a subcommand")
    );
    // Options of the main command are not options of the subcommand.
    assert_eq!(
        err("git", "status --no-optional-locks"),
        "git status: unknown option `--no-optional-locks`"
    );
}

#[test]
fn git_subcommand_values_and_bundles() {
    assert_eq!(ok("git", "commit -am msg"), "commit --all --message=msg");
    assert_eq!(ok("git", "commit -ammsg"), "commit --all --message=msg");
    assert_eq!(ok("git", "commit --mess msg"), "commit --message=msg");
    assert_eq!(ok("git", "commit -m --amend"), "commit --message=--amend");
    assert_eq!(ok("git", "status -sb"), "status --short --branch");
    assert_eq!(ok("git", "status -uno"), "status --untracked-files=no");
    assert_eq!(ok("git", "status -u"), "status --untracked-files");
    assert_eq!(ok("git", "checkout -b feature/x"), "checkout -b=feature/x");
    assert_eq!(
        ok("git", "switch -c feature/x"),
        "switch --create=feature/x"
    );
    assert_eq!(
        ok("git", "fetch --upl=sh origin"),
        "fetch --upload-pack=sh origin"
    );
    assert_eq!(
        ok("git", "config --get remote.origin.url"),
        "config --get remote.origin.url"
    );
    assert_eq!(ok("git", "branch --show-current"), "branch --show-current");
    assert_eq!(
        ok("git", "rev-parse --show-toplevel"),
        "rev-parse --show-toplevel"
    );
    assert_eq!(
        ok("git", "rev-parse --abbrev-ref HEAD"),
        "rev-parse --abbrev-ref HEAD"
    );
    assert_eq!(ok("git", "ls-files -z --others"), "ls-files -z --others");
}

#[test]
fn git_log_show_and_diff_parse_exactly() {
    assert_eq!(ok("git", "log -5 --oneline"), "log --max-count=5 --oneline");
    assert_eq!(ok("git", "log -n5"), "log --max-count=5");
    assert_eq!(ok("git", "log -n 5"), "log --max-count=5");
    assert_eq!(
        ok("git", "log --author a --format=%H"),
        "log --author=a --format=%H"
    );
    assert_eq!(ok("git", "show -p HEAD"), "show --patch HEAD");
    assert_eq!(ok("git", "diff --stat HEAD~1"), "diff --stat HEAD~1");
    assert_eq!(ok("git", "diff -U5"), "diff --unified=5");
    assert_eq!(ok("git", "diff --output /tmp/x"), "diff --output=/tmp/x");
    assert_eq!(ok("git", "diff --cached -- src"), "diff --cached -- src");
    assert_eq!(err("git", "log --onel"), "git log: unknown option `--onel`");
    assert_eq!(
        err("git", "log --outp=/tmp/x"),
        "git log: unknown option `--outp=/tmp/x`"
    );
    assert_eq!(err("git", "log -pR"), "git log: unknown option `-pR`");
    assert_eq!(
        err("git", "diff --no-ext"),
        "git diff: unknown option `--no-ext`"
    );
    // --format's value is attached only: `--format X` would be an operand
    // to git, and is a refusal here.
    assert_eq!(
        err("git", "log --format %H"),
        "git log: `--format` needs a value"
    );
}

#[test]
fn make_spellings_an_attacker_would_try() {
    assert_eq!(ok("make", "--eva x:;sh"), "--eval=x:;sh");
    assert_eq!(ok("make", "--eva=x:;sh all"), "--eval=x:;sh all");
    assert_eq!(ok("make", "--fil other.mk"), "--file=other.mk");
    assert_eq!(ok("make", "--makefile=other.mk"), "--file=other.mk");
    assert_eq!(ok("make", "-kf other.mk"), "--keep-going --file=other.mk");
    assert_eq!(ok("make", "-kfother.mk"), "--keep-going --file=other.mk");
    assert_eq!(ok("make", "--dir /elsewhere"), "--directory=/elsewhere");
    assert_eq!(
        ok("make", "-knC /elsewhere"),
        "--keep-going --just-print --directory=/elsewhere"
    );
    assert_eq!(ok("make", "-C/elsewhere"), "--directory=/elsewhere");
    assert_eq!(ok("make", "test CC=evil"), "test CC=evil");
    assert_eq!(ok("make", "-j 4 test"), "--jobs=4 test");
    assert_eq!(ok("make", "-j4 test"), "--jobs=4 test");
    assert_eq!(ok("make", "-j test"), "--jobs test");
    assert_eq!(ok("make", "-j 2x"), "--jobs 2x");
    assert_eq!(ok("make", "-l 2.5 x"), "--load-average=2.5 x");
    assert_eq!(ok("make", "--jobs 2 x"), "--jobs=2 x");
    assert!(err("make", "--no- x").contains("ambiguous"));
    assert_eq!(
        err("make", "--jobserver-auth=3,4"),
        "make: unknown option `--jobserver-auth=3,4`"
    );
}

#[test]
fn find_primaries_take_their_values() {
    assert_eq!(ok("find", ". -name *.rs"), ". -name=*.rs");
    // The value of -name is not a primary.
    assert_eq!(ok("find", ". -name -delete"), ". -name=-delete");
    assert_eq!(
        ok("find", ". -name x -o -name y -a ! -type d"),
        ". -name=x -or -name=y -and -not -type=d"
    );
    assert_eq!(ok("find", "-L . -maxdepth 1"), "-L . -maxdepth=1");
    assert_eq!(ok("find", "-O3 . -print"), "-O=3 . -print");
    assert_eq!(
        ok("find", ". -exec sh -c x ; -print"),
        ". -exec sh -c x ; -print"
    );
    assert_eq!(ok("find", ". -execdir rm {} +"), ". -execdir rm {} +");
    assert_eq!(ok("find", ". -exec echo + x {} +"), ". -exec echo + x {} +");
    assert_eq!(
        ok("find", ". ( -name a , -name b )"),
        ". ( -name=a , -name=b )"
    );
    assert_eq!(
        ok("find", "a b -fprintf /tmp/x %p"),
        "a b -fprintf=/tmp/x %p"
    );
    assert_eq!(ok("find", ". -wholename x -mount"), ". -path=x -xdev");
    assert_eq!(ok("find", ". -newermt 2020-01-01"), ". -newermt=2020-01-01");
    assert_eq!(
        err("find", ". -exec rm {}"),
        "find: `-exec` is not ended by `;` or `+`"
    );
    assert_eq!(err("find", ". -frob"), "find: unknown option `-frob`");
    assert_eq!(err("find", ". -L"), "find: `-L` is out of place");
    assert_eq!(err("find", ". -print x"), "find: `x` is out of place");
    assert_eq!(err("find", ". -name"), "find: `-name` needs a value");
    assert_eq!(err("find", ". -nam x"), "find: unknown option `-nam`");
}

#[test]
fn grep_and_curl() {
    assert_eq!(
        ok("grep", "-rn5 TODO src"),
        "--recursive --line-number --context=5 TODO src"
    );
    assert_eq!(ok("grep", "-5 x"), "--context=5 x");
    assert_eq!(
        ok("grep", "--inc=*.rs -r x ."),
        "--include=*.rs --recursive x ."
    );
    assert_eq!(ok("grep", "-e -x f"), "--regexp=-x f");
    assert_eq!(ok("grep", "--colo=never x"), "--color=never x");
    assert_eq!(
        ok("curl", "-sSo/tmp/x https://h/"),
        "--silent --show-error --output=/tmp/x https://h/"
    );
    assert_eq!(ok("curl", "--verb https://h/"), "--verbose https://h/");
    assert_eq!(
        ok("curl", "--no-verb https://h/"),
        "--no-verbose https://h/"
    );
    assert_eq!(
        ok("curl", "-d @secret https://h/"),
        "--data=@secret https://h/"
    );
    assert_eq!(
        err("curl", "--output=x https://h/"),
        "curl: unknown option `--output=x`"
    );
    assert!(err("curl", "--outp x").contains("ambiguous"));
    let e = err("curl", "-K cfg https://h/");
    assert_eq!(e, "curl: `--config` makes the tool read more arguments from elsewhere, which cordon cannot see");
    assert!(err("curl", "-sK cfg").contains("`--config` makes the tool read"));
}

#[test]
fn a_refusal_keeps_what_was_canonicalised_and_the_rest_as_written() {
    let g = shipped("git");
    let args: [&[u8]; 4] = [b"push", b"-f", b"--frob", b"-d"];
    let u = canonicalize(&g, &args).unwrap_err();
    assert_eq!(u.at, 2);
    assert_eq!(u.why, Why::UnknownOption(b"--frob".to_vec()));
    let partial: Vec<&[u8]> = u.partial.iter().map(Vec::as_slice).collect();
    assert_eq!(partial, [&b"push"[..], b"--force", b"--frob", b"-d"]);
}

#[test]
fn non_utf8_and_empty_arguments_are_plain_bytes() {
    let g = shipped("git");
    let args: [&[u8]; 4] = [b"commit", b"-m", b"\xff\xfe", b""];
    let c = canonicalize(&g, &args).unwrap();
    assert_eq!(
        c.tokens,
        [
            b"commit".to_vec(),
            b"--message=\xff\xfe".to_vec(),
            Vec::new()
        ]
    );
    let g2 = shipped("find");
    assert_eq!(g2.main.syntax.style, Style::Find);
}

#[test]
fn messages_about_hostile_arguments_stay_short() {
    let g = shipped("git");
    let huge = [b"--".to_vec(), vec![b'x'; 100_000]].concat();
    let args: [&[u8]; 2] = [b"push", &huge];
    let msg = canonicalize(&g, &args).unwrap_err().to_string();
    assert!(msg.len() < 200 && msg.contains('…'), "{}", msg.len());
    let args: [&[u8]; 2] = [b"push", b"--no-"];
    let msg = canonicalize(&g, &args).unwrap_err().to_string();
    assert!(msg.contains("more)"), "{msg}");
}
