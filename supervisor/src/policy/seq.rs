//! Matching a sequence against elements where a star matches any run of
//! items and every other element matches exactly one item.
//!
//! Used twice: for argv patterns (items are arguments, the star is `**`)
//! and for globs inside one argument (items are bytes, the star is `*`).
//!
//! The pattern is split at its stars into fixed-length segments. The first
//! segment must match the start, the last the end, and each middle segment
//! is matched at its leftmost place after the previous one: with fixed-length
//! segments, leftmost is always optimal, so there is no backtracking. The
//! cost is at most `items × elements` element tests, whatever the input.

/// One element before compilation.
#[derive(Debug, Clone)]
pub(super) enum Item<E> {
    /// Any run of items, possibly empty.
    Star,
    /// Exactly one item accepted by `E`.
    One(E),
}

/// A compiled sequence pattern.
#[derive(Debug, Clone)]
pub(super) struct Seq<E> {
    /// Elements before the first star (all of them when there is none).
    head: Vec<E>,
    /// Present when the pattern has a star: the segments between stars,
    /// and the segment after the last star.
    tail: Option<(Vec<Vec<E>>, Vec<E>)>,
}

impl<E> Seq<E> {
    pub fn new(items: Vec<Item<E>>) -> Seq<E> {
        let mut segments: Vec<Vec<E>> = vec![Vec::new()];
        for item in items {
            match item {
                Item::Star => segments.push(Vec::new()),
                Item::One(e) => {
                    if let Some(last) = segments.last_mut() {
                        last.push(e);
                    }
                }
            }
        }
        let mut it = segments.into_iter();
        let head = it.next().unwrap_or_default();
        let mut rest: Vec<Vec<E>> = it.collect();
        let tail = rest.pop().map(|last| {
            // Empty middle segments come from consecutive stars: drop them.
            rest.retain(|s| !s.is_empty());
            (rest, last)
        });
        Seq { head, tail }
    }

    /// The elements, when the pattern has no star (lets callers turn a
    /// glob without wildcards into a plain literal).
    pub fn fixed(&self) -> Option<&[E]> {
        match self.tail {
            None => Some(&self.head),
            Some(_) => None,
        }
    }

    pub fn matches<I>(&self, items: &[I], one: impl Fn(&E, &I) -> bool) -> bool {
        let seg_at = |seg: &[E], at: usize| -> bool {
            items
                .get(at..at + seg.len())
                .is_some_and(|win| seg.iter().zip(win).all(|(e, i)| one(e, i)))
        };
        let Some((middle, last)) = &self.tail else {
            return items.len() == self.head.len() && seg_at(&self.head, 0);
        };
        if items.len() < self.head.len() + last.len() {
            return false;
        }
        let end = items.len() - last.len();
        if !seg_at(&self.head, 0) || !seg_at(last, end) {
            return false;
        }
        let mut pos = self.head.len();
        for seg in middle {
            let mut found = None;
            let mut at = pos;
            while at + seg.len() <= end {
                if seg_at(seg, at) {
                    found = Some(at);
                    break;
                }
                at += 1;
            }
            match found {
                Some(at) => pos = at + seg.len(),
                None => return false,
            }
        }
        true
    }
}
