//! A certificate authority and a server certificate for 127.0.0.1, made with openssl for one
//! test: webpki takes neither a self-signed leaf nor a CA certificate as a server's.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

/// Writes `ca.pem`, `server.pem` and `server.key` into `dir`.
pub fn certificate_for_loopback(dir: &Path) -> Result<()> {
    let ext = dir.join("server.ext");
    std::fs::write(
        &ext,
        "basicConstraints=critical,CA:FALSE\nsubjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )?;
    let steps: [&[&str]; 3] = [
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=connaudit test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ],
    ];
    for args in steps {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .context("openssl (scripts/install-deps.sh installs it)")?;
        if !out.status.success() {
            bail!("openssl {}: {}", args[0], String::from_utf8_lossy(&out.stderr));
        }
    }
    Ok(())
}
