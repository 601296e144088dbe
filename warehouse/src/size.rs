//! Sizes as every command takes them (`512M`, `1.5G`, `2GiB`, `1T`, `65536`): one parser for
//! `query`, `serve` and `compact`, its errors naming the flag and the form.

/// The bytes `text` spells, at least `at_least`; the error names `flag`.
pub fn parse_size(text: &str, flag: &str, at_least: u64) -> Result<u64, String> {
    let bad = || format!("{flag} `{text}` is not a size; write it like 512M, 1G or 2GiB");
    let t = text.trim();
    let digits = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(digits);
    let scale: f64 = match unit.trim().to_ascii_uppercase().trim_end_matches("IB").trim_end_matches('B') {
        "" => 1.0,
        "K" => 1024.0,
        "M" => 1024.0 * 1024.0,
        "G" => 1024.0 * 1024.0 * 1024.0,
        "T" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return Err(bad()),
    };
    let value: f64 = number.parse().map_err(|_| bad())?;
    let bytes = value * scale;
    if !(bytes.is_finite() && bytes <= u64::MAX as f64) {
        return Err(bad());
    }
    let bytes = bytes as u64;
    if bytes < at_least.max(1) {
        let least = if at_least >= 1 << 20 && at_least % (1 << 20) == 0 {
            format!("{}M", at_least >> 20)
        } else {
            format!("{} bytes", at_least.max(1))
        };
        return Err(format!("{flag} `{text}` is too small; give at least {least}, e.g. 512M or 2G"));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_alike_everywhere_and_errors_name_the_flag() {
        let cases = [
            ("1G", 1 << 30),
            ("512M", 512 << 20),
            ("1.5GiB", 3 << 29),
            ("2048K", 2 << 20),
            ("2gb", 2 << 30),
            ("1T", 1 << 40),
            ("4096", 4096),
        ];
        for (text, want) in cases {
            assert_eq!(parse_size(text, "--x", 1).unwrap(), want, "{text}");
        }
        for bad in ["", "G", "1X", "-1G", "lots", "1e400"] {
            let err = parse_size(bad, "--x", 1).unwrap_err();
            assert!(err.contains("--x") && err.contains("not a size"), "{bad}: {err}");
        }
        assert!(parse_size("0", "--x", 1).unwrap_err().contains("at least 1 bytes"));
        assert!(parse_size("10", "--memory-limit", 1 << 20)
            .unwrap_err()
            .contains("--memory-limit `10` is too small; give at least 1M"));
    }
}
