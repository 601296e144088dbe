//! PostgreSQL's date and time patterns (`to_timestamp(text, 'YYYY-MM-DD HH24:MI:SS.US')`, as
//! Superset filters a time column) in chrono's words, which DataFusion's `to_timestamp` and
//! `to_date` read. Only the fields BI tools write are known; a pattern with another one is
//! left as written (and DataFusion reports it).

/// PostgreSQL's fields, longest first, and chrono's.
const FIELDS: &[(&str, &str)] = &[
    ("YYYY", "%Y"),
    ("HH24", "%H"),
    ("HH12", "%I"),
    ("YY", "%y"),
    ("MM", "%m"),
    ("DD", "%d"),
    ("HH", "%I"),
    ("MI", "%M"),
    ("SS", "%S"),
    ("MS", "%3f"),
    ("US", "%6f"),
    ("AM", "%p"),
    ("PM", "%p"),
    ("TZH", "%#z"),
];

/// `pattern` in chrono's words, or `None` when it has a field not known here.
pub fn chrono_pattern(pattern: &str) -> Option<String> {
    let mut out = String::new();
    let mut rest = pattern;
    while let Some(c) = rest.chars().next() {
        if c == '"' {
            // "literal text"
            let end = rest[1..].find('"')? + 1;
            out.push_str(&rest[1..end].replace('%', "%%"));
            rest = &rest[end + 1..];
        } else if let Some((field, chrono)) =
            FIELDS.iter().find(|(field, _)| rest.get(..field.len()).is_some_and(|r| r.eq_ignore_ascii_case(field)))
        {
            out.push_str(chrono);
            rest = &rest[field.len()..];
        } else if c.is_ascii_alphabetic() {
            return None;
        } else {
            if c == '%' {
                out.push('%');
            }
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supersets_patterns_read_as_chrono_ones() {
        assert_eq!(chrono_pattern("YYYY-MM-DD HH24:MI:SS.US").as_deref(), Some("%Y-%m-%d %H:%M:%S.%6f"));
        assert_eq!(chrono_pattern("YYYY-MM-DD").as_deref(), Some("%Y-%m-%d"));
        assert_eq!(chrono_pattern("YYYY\"T\"HH24").as_deref(), Some("%YT%H"));
        assert_eq!(chrono_pattern("Month DD"), None);
    }
}
