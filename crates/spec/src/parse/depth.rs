//! The nesting limit, checked on the text before KDL parses it (the KDL
//! parser recurses once per level, so a deep enough file would overflow
//! its stack).
//!
//! In: a file's text. Out: the byte offset of the first `{` that opens a
//! block deeper than [`MAX_DEPTH`], if any. Braces inside strings, raw
//! strings and comments do not count.

/// How deep children blocks may nest. An experiment needs about six
/// (`experiment → matrix → axis → bundle → dataset → quantize`).
pub const MAX_DEPTH: usize = 32;

/// The offset of the first `{` nested deeper than `limit`.
pub(super) fn too_deep(text: &str, limit: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        i = match bytes[i] {
            b'{' => {
                depth += 1;
                if depth > limit {
                    return Some(i);
                }
                i + 1
            }
            b'}' => {
                depth = depth.saturating_sub(1);
                i + 1
            }
            b'"' => skip_string(bytes, i),
            b'#' => skip_raw_string(bytes, i),
            b'/' if bytes.get(i + 1) == Some(&b'/') => skip_line(bytes, i),
            b'/' if bytes.get(i + 1) == Some(&b'*') => skip_block_comment(bytes, i),
            _ => i + 1,
        };
    }
    None
}

/// Past a `"..."` or `"""..."""` string starting at `start`.
fn skip_string(bytes: &[u8], start: usize) -> usize {
    let triple = bytes[start..].starts_with(b"\"\"\"");
    let mut i = start + if triple { 3 } else { 1 };
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' if !triple => return i + 1,
            b'"' if bytes[i..].starts_with(b"\"\"\"") => return i + 3,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// Past a raw string `#"..."#` (any number of `#`, single or triple
/// quoted) starting at `start`; past the `#` alone for `#true` and the like.
fn skip_raw_string(bytes: &[u8], start: usize) -> usize {
    let hashes = bytes[start..].iter().take_while(|b| **b == b'#').count();
    let mut i = start + hashes;
    if bytes.get(i) != Some(&b'"') {
        return i;
    }
    i += 1;
    while i < bytes.len() {
        if bytes[i] == b'"' && bytes[i + 1..].iter().take(hashes).filter(|b| **b == b'#').count() == hashes {
            return i + 1 + hashes;
        }
        i += 1;
    }
    bytes.len()
}

/// Past the end of the line.
fn skip_line(bytes: &[u8], start: usize) -> usize {
    bytes[start..]
        .iter()
        .position(|b| *b == b'\n')
        .map_or(bytes.len(), |n| start + n + 1)
}

/// Past a `/* ... */` comment, which may nest.
fn skip_block_comment(bytes: &[u8], start: usize) -> usize {
    let mut depth = 0usize;
    let mut i = start;
    while i < bytes.len() {
        if bytes[i..].starts_with(b"/*") {
            depth += 1;
            i += 2;
        } else if bytes[i..].starts_with(b"*/") {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(levels: usize) -> String {
        format!("{}{}", "a { ".repeat(levels), "} ".repeat(levels))
    }

    #[test]
    fn finds_the_first_brace_past_the_limit() {
        assert_eq!(too_deep(&nested(3), 3), None);
        assert_eq!(too_deep(&nested(4), 3), Some(14));
        assert_eq!(too_deep(&nested(100_000), MAX_DEPTH), Some(4 * MAX_DEPTH + 2));
    }

    #[test]
    fn braces_in_strings_and_comments_do_not_count() {
        let text = r####"a "{{{" #"{{"# ##"{"#{"## """
            {{ \""" {""" // {{{{
            /* { /* {{ */ { */ b { c { } }"####;
        assert_eq!(too_deep(text, 2), None);
        assert_eq!(too_deep(text, 1), Some(text.rfind("c {").unwrap() + 2));
        assert_eq!(too_deep("a #true { b { } }", 1), Some(12));
    }
}
