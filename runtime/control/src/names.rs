//! What a resource name and an artifact path may be. Names appear in URLs and CLI arguments;
//! artifact paths become object-store keys and files, so anything that could climb out of its
//! prefix, or mean something else to a store or a shell, is refused.

use crate::ControlError;

/// Checks a resource name: 1-63 characters of `a-z`, `0-9`, `-`, `_`, `.`, starting with a
/// letter or digit.
pub fn check_name(kind: &str, name: &str) -> Result<(), ControlError> {
    let valid = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
    if valid {
        Ok(())
    } else {
        Err(ControlError::Invalid(format!(
            "invalid {kind} name '{}': use 1-63 characters of a-z, 0-9, '-', '_', '.', starting with a letter or digit",
            printable(name)
        )))
    }
}

/// Checks a relative artifact path (`dir/file.ext`): no `..` or `.` segments, not absolute, no
/// empty segments, no backslash, no `%` (so no encoded traversal such as `%2e%2e` or `%252e`),
/// no `;`, `#`, `?` or `:` (so no URL tricks and no `file:` or other schemes), no control
/// characters, at most 1024 bytes.
pub fn check_artifact_path(path: &str) -> Result<(), ControlError> {
    let fail = |why: &str| {
        Err(ControlError::Invalid(format!(
            "invalid path '{}': {why}",
            printable(path)
        )))
    };
    if path.is_empty() {
        return fail("empty");
    }
    if path.len() > 1024 {
        return fail("longer than 1024 bytes");
    }
    if path.starts_with('/') {
        return fail("absolute paths are not allowed");
    }
    if let Some(c) = path
        .chars()
        .find(|c| matches!(c, '\\' | '%' | ';' | '#' | '?' | ':') || c.is_control())
    {
        return fail(&format!("'{}' is not allowed", c.escape_default()));
    }
    for segment in path.split('/') {
        match segment {
            "" => return fail("empty path segment"),
            "." | ".." => return fail("'.' and '..' segments are not allowed"),
            _ => {}
        }
    }
    Ok(())
}

/// A name or path as it may be shown in a message: control characters escaped, at most 80
/// characters.
fn printable(text: &str) -> String {
    let escaped: String = text.chars().flat_map(char::escape_default).collect();
    if escaped.chars().count() > 80 {
        format!("{}...", escaped.chars().take(80).collect::<String>())
    } else {
        escaped
    }
}

/// Paths that must be refused wherever a path is accepted (the tests feed every path-like
/// field with these).
pub const HOSTILE_PATHS: &[&str] = &[
    "../escape.txt",
    "a/../../escape.txt",
    "/etc/passwd",
    "%2e%2e/escape.txt",
    "%252e%252e/escape.txt",
    "..%2fescape.txt",
    "a\\..\\escape.txt",
    "a;rm -rf",
    "a#fragment",
    "a?query=1",
    "file:///etc/passwd",
    ":empty-scheme",
    "a//b",
    "a/./b",
    "",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_paths_are_refused() {
        for path in HOSTILE_PATHS {
            assert!(check_artifact_path(path).is_err(), "{path}");
        }
        for path in [
            "model.onnx",
            "weights/layer-1.bin",
            "a.b/c_d/e f.txt",
            "été.txt",
            "..x/y",
        ] {
            assert!(check_artifact_path(path).is_ok(), "{path}");
        }
    }

    #[test]
    fn names() {
        for name in ["iris", "team-1", "a", "x.y_z"] {
            assert!(check_name("team", name).is_ok(), "{name}");
        }
        for name in ["", "Iris", "-a", "a/b", "a b", &"x".repeat(64), "..", "é"] {
            assert!(check_name("team", name).is_err(), "{name}");
        }
    }
}
