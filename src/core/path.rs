//! Znode paths: validation exactly as ZooKeeper's `PathUtils.validatePath`,
//! and splitting a path into parent and name.
//!
//! ZooKeeper validates UTF-16 code units; a Rust `char` above U+FFFF is a
//! surrogate pair in Java, and surrogates are rejected there, so every
//! non-BMP character is rejected here.

/// Why a path is not acceptable (the message ZooKeeper logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidPath(pub String);

/// The root path.
pub const ROOT: &str = "/";

/// Checks a path the way `PathUtils.validatePath` does.
pub fn validate(path: &str) -> Result<(), InvalidPath> {
    let bad = |why: &str| Err(InvalidPath(format!("Invalid path string \"{path}\" caused by {why}")));
    if path.is_empty() {
        return bad("path length must be > 0");
    }
    if !path.starts_with('/') {
        return bad("path must start with / character");
    }
    if path.len() == 1 {
        return Ok(());
    }
    if path.ends_with('/') {
        return bad("path must not end with / character");
    }
    let chars: Vec<char> = path.chars().collect();
    for i in 1..chars.len() {
        let (c, last) = (chars[i], chars[i - 1]);
        let next_is_end = i + 1 == chars.len() || chars[i + 1] == '/';
        if c == '\0' {
            return bad(&format!("null character not allowed @{i}"));
        } else if c == '/' && last == '/' {
            return bad(&format!("empty node name specified @{i}"));
        } else if c == '.' && last == '.' {
            if chars[i - 2] == '/' && next_is_end {
                return bad(&format!("relative paths not allowed @{i}"));
            }
        } else if c == '.' {
            if last == '/' && next_is_end {
                return bad(&format!("relative paths not allowed @{i}"));
            }
        } else if is_forbidden_char(c) {
            return bad(&format!("invalid character @{i}"));
        }
    }
    Ok(())
}

/// Characters `PathUtils` rejects: controls, U+007F-U+009F, surrogates and the
/// private use area (U+D800-U+F8FF), U+FFF0-U+FFFF, and anything outside the BMP.
fn is_forbidden_char(c: char) -> bool {
    let u = c as u32;
    (0x01..=0x1f).contains(&u) || (0x7f..=0x9f).contains(&u) || (0xd800..=0xf8ff).contains(&u) || u >= 0xfff0
}

/// Splits `/a/b` into (`/a`, `b`) and `/a` into (`/`, `a`). `None` for the
/// root and for strings without a slash.
pub fn split(path: &str) -> Option<(&str, &str)> {
    let slash = path.rfind('/')?;
    if path == ROOT {
        return None;
    }
    let parent = if slash == 0 { ROOT } else { &path[..slash] };
    Some((parent, &path[slash + 1..]))
}

/// Joins a parent path and a child name.
pub fn join(parent: &str, name: &str) -> String {
    if parent == ROOT { format!("/{name}") } else { format!("{parent}/{name}") }
}

/// The path reads use: ZooKeeper aliases `""` to the root.
pub fn normalize_read(path: &str) -> &str {
    if path.is_empty() { ROOT } else { path }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_matches_path_utils() {
        for ok in ["/", "/a", "/a/b", "/a.b", "/...", "/a/.b", "/ü", "/a\u{ffef}"] {
            assert!(validate(ok).is_ok(), "{ok}");
        }
        for bad in
            ["", "a", "/a/", "//a", "/a//b", "/.", "/a/..", "/a/./b", "/a\0", "/a\u{1}", "/\u{7f}", "/\u{9f}", "/\u{e000}", "/\u{fff0}", "/a\u{fffd}", "/😀"]
        {
            assert!(validate(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn split_and_join() {
        assert_eq!(split("/a"), Some(("/", "a")));
        assert_eq!(split("/a/b"), Some(("/a", "b")));
        assert_eq!(split("/a/"), Some(("/a", "")));
        assert_eq!(split("/"), None);
        assert_eq!(split("x"), None);
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/a", "b"), "/a/b");
    }
}
