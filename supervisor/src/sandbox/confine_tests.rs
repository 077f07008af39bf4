//! Confinement of expanded grants.

use super::*;

#[test]
fn pins_every_ancestor_the_agent_could_rename() {
    let ws = PathBuf::from("/w/ws");
    let target = Path::new("/w/ws/.git/hooks");
    assert_eq!(
        renamable_ancestors(target, std::slice::from_ref(&ws)),
        vec![PathBuf::from("/w/ws/.git")]
    );
    assert_eq!(
        renamable_ancestors(Path::new("/w/ws/a/b/.env"), &[ws]),
        vec![PathBuf::from("/w/ws/a/b"), PathBuf::from("/w/ws/a")]
    );
    // A writable parent of the workspace makes the workspace itself renamable.
    assert_eq!(
        renamable_ancestors(Path::new("/w/ws/.env"), &[PathBuf::from("/w")]),
        vec![PathBuf::from("/w/ws")]
    );
    assert!(renamable_ancestors(Path::new("/w/ws/.env"), &[]).is_empty());
}
