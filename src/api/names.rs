//! Kubernetes naming rules (DNS-1123 labels and subdomains), with the API server's messages.
//! Pure string checks.

/// A name the API server would refuse; the message is the API server's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidName(pub &'static str);

/// Checks an RFC 1123 label (namespaces, most names): at most 63 characters of `[a-z0-9-]`,
/// starting and ending alphanumeric. Returns the API server's message on failure.
pub fn check_dns1123_label(value: &str) -> Result<(), InvalidName> {
    if value.len() > 63 {
        return Err(InvalidName("must be no more than 63 characters"));
    }
    if !is_label(value) {
        return Err(InvalidName(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
        ));
    }
    Ok(())
}

/// Checks an RFC 1123 subdomain (Deployment names): at most 253 characters, dot-separated
/// labels of `[a-z0-9-]`, starting and ending alphanumeric.
pub fn check_dns1123_subdomain(value: &str) -> Result<(), InvalidName> {
    if value.len() > 253 {
        return Err(InvalidName("must be no more than 253 characters"));
    }
    if value.is_empty() || !value.split('.').all(is_label) {
        return Err(InvalidName(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        ));
    }
    Ok(())
}

fn is_label(value: &str) -> bool {
    let bytes = value.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            alnum(first) && alnum(last) && bytes.iter().all(|b| alnum(b) || *b == b'-')
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        for ok in ["a", "prod", "my-ns-1", "0abc", &"a".repeat(63)] {
            assert!(check_dns1123_label(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "A",
            "a.b",
            "a_b",
            "prod\",malicious=\"attack",
            &"a".repeat(64),
            "é",
        ] {
            assert!(check_dns1123_label(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn subdomains() {
        for ok in ["a", "llama-8b.a100", "x.y.z", &"a".repeat(253)] {
            assert!(check_dns1123_subdomain(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".a", "a.", "a..b", "Upper", "a/b", &"a".repeat(254)] {
            assert!(check_dns1123_subdomain(bad).is_err(), "{bad}");
        }
    }
}
