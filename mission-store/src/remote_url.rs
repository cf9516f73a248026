//! Telling a URL root from a directory, and showing a URL without credentials: needed with
//! and without the `object-store` feature (a build without it still says what a URL root
//! needs).

/// Whether `root` looks like a URL (`scheme://…`) rather than a directory: what
/// [`Store::open`](crate::Store::open) uses to tell them apart.
pub(crate) fn looks_like_url(root: &str) -> bool {
    let Some((scheme, _)) = root.split_once("://") else { return false };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// Whether a store root names object storage (`s3://…`, `file://…`) rather than a directory,
/// as [`Store::open`](crate::Store::open) decides it. Such a root "exists" as far as a caller
/// can tell without a request; opening it says whether it can be read.
pub fn is_url_root(root: &std::path::Path) -> bool {
    root.to_str().is_some_and(looks_like_url)
}

/// Whether there is a store to read at `root`: a URL root, or a directory that exists.
pub fn store_exists(root: &std::path::Path) -> bool {
    is_url_root(root) || root.exists()
}

/// `url` with any `user:password@` removed, for messages.
pub fn redact_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            match rest[..authority_end].rfind('@') {
                Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
                None => url.to_owned(),
            }
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_detection_and_redaction() {
        assert!(looks_like_url("s3://b/p") && looks_like_url("file:///tmp"));
        assert!(!looks_like_url("/tmp/x") && !looks_like_url("./data") && !looks_like_url("C:\\x"));
        assert_eq!(redact_url("s3://key:secret@b/p"), "s3://b/p");
        assert_eq!(redact_url("s3://b/p@x"), "s3://b/p@x");
    }
}
