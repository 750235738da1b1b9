//! Label selectors in Kubernetes' string syntax (`WVA_NODE_SELECTOR`), checked before anything
//! starts: a selector the API server would refuse must stop `wva run` with a message that names
//! the variable and the requirement, not leave a watch failing in a loop. The API server does
//! the selecting; this only checks (apimachinery `labels.Parse` grammar: `k`, `!k`, `k=v`,
//! `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k>1`, `k<1`, comma-separated).

/// Checks `text`; the error names the offending requirement.
pub fn validate(text: &str) -> Result<(), String> {
    if text.trim().is_empty() {
        return Ok(());
    }
    for requirement in split_requirements(text)? {
        check_requirement(requirement.trim())
            .map_err(|why| format!("requirement {:?}: {why}", requirement.trim()))?;
    }
    Ok(())
}

/// Splits on the commas that are not inside `( … )`.
fn split_requirements(text: &str) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.checked_sub(1).ok_or("unbalanced ')'")?,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err("unbalanced '('".into());
    }
    parts.push(&text[start..]);
    Ok(parts)
}

fn check_requirement(r: &str) -> Result<(), String> {
    if r.is_empty() {
        return Err("empty requirement (a stray comma?)".into());
    }
    if let Some(key) = r.strip_prefix('!') {
        return check_key(key.trim());
    }
    for op in ["==", "!=", "=", ">", "<"] {
        if let Some((key, value)) = r.split_once(op) {
            check_key(key.trim())?;
            let value = value.trim();
            if matches!(op, ">" | "<") && value.parse::<i64>().is_err() {
                return Err(format!("{op} needs an integer, got {value:?}"));
            }
            return check_value(value);
        }
    }
    let mut words = r.splitn(2, char::is_whitespace);
    let key = words.next().unwrap_or_default();
    check_key(key)?;
    let Some(rest) = words.next().map(str::trim) else {
        return Ok(());
    };
    let list = rest
        .strip_prefix("notin")
        .or_else(|| rest.strip_prefix("in"))
        .map(str::trim)
        .ok_or_else(|| {
            format!("unknown operator in {rest:?}; expected =, ==, !=, in, notin, >, <")
        })?;
    let values = list
        .strip_prefix('(')
        .and_then(|l| l.strip_suffix(')'))
        .ok_or_else(|| format!("the values of in/notin go in parentheses, got {list:?}"))?;
    values.split(',').map(str::trim).try_for_each(check_value)
}

fn check_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix
        && (prefix.is_empty()
            || prefix.len() > 253
            || !prefix.split('.').all(|l| {
                !l.is_empty()
                    && l.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            }))
    {
        return Err(format!("key prefix {prefix:?} is not a DNS subdomain"));
    }
    if name.is_empty() {
        return Err("a key is required".into());
    }
    check_name(name).map_err(|why| format!("key {key:?}: {why}"))
}

fn check_value(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Ok(());
    }
    check_name(value).map_err(|why| format!("value {value:?}: {why}"))
}

fn check_name(name: &str) -> Result<(), String> {
    let alnum = |c: char| c.is_ascii_alphanumeric();
    if name.len() > 63 {
        return Err("longer than 63 characters".into());
    }
    if !name.starts_with(alnum) || !name.ends_with(alnum) {
        return Err("must start and end with a letter or digit".into());
    }
    if !name
        .chars()
        .all(|c| alnum(c) || matches!(c, '-' | '_' | '.'))
    {
        return Err("only letters, digits, '-', '_' and '.' are allowed".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::validate;

    #[test]
    fn the_selector_grammar_is_accepted_and_mistakes_are_named() {
        for ok in [
            "",
            "gpu",
            "!spot",
            "pool=gpu",
            "pool==gpu,zone!=us-east-1a",
            "node.kubernetes.io/instance-type in (p4d.24xlarge, p5.48xlarge)",
            "tier notin (dev),gpu",
            "gpus>3",
        ] {
            assert_eq!(validate(ok), Ok(()), "{ok}");
        }
        for (bad, says) in [
            ("pool=gpu,", "empty requirement"),
            ("pool in gpu", "parentheses"),
            ("pool is gpu", "unknown operator"),
            ("pool=-gpu", "start and end"),
            ("Bad_Prefix/x=1", "DNS subdomain"),
            ("gpus>many", "integer"),
            ("pool in (a,b", "unbalanced"),
        ] {
            let error = validate(bad).unwrap_err();
            assert!(error.contains(says), "{bad}: {error}");
        }
    }
}
