//! `deploy/k8s/monitoring`: the PrometheusRule renders with kustomize, its rules pass
//! `promtool check rules` and behave as `promtool test rules` says, and every runbook names an
//! audit the binary has.

use std::collections::BTreeSet;
use std::process::Command;

use anyhow::{Context, Result};
use connaudit_tests::*;

use crate::deploy::{objects, render_dir, repo};

/// `promtool` (Debian's prometheus package) on a rule file `rules.yaml` in `dir`: `check rules`
/// (strict: an unknown field is an error), then `test rules` of deploy/k8s/monitoring's tests.
fn promtool(dir: &std::path::Path) -> Result<(bool, String)> {
    let mut said = String::new();
    for args in [vec!["check", "rules", "rules.yaml"], vec!["test", "rules", "rules.test.yaml"]] {
        let out = Command::new("promtool")
            .args(&args)
            .current_dir(dir)
            .output()
            .context("promtool from Debian's prometheus package; scripts/install-deps.sh installs it")?;
        said += &format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        if !out.status.success() {
            return Ok((false, said));
        }
    }
    Ok((true, said))
}

#[test]
fn the_prometheus_rules_render_check_and_fire_as_tested() -> Result<()> {
    let yaml = render_dir(&repo().join("deploy/k8s/monitoring"))?;
    let objs = objects(&yaml)?;
    assert_eq!(objs.len(), 1, "{yaml}");
    let rule = &objs[0];
    assert_eq!(
        (rule["apiVersion"].as_str(), rule["kind"].as_str()),
        (Some("monitoring.coreos.com/v1"), Some("PrometheusRule"))
    );
    assert_eq!(rule["metadata"]["labels"]["app.kubernetes.io/part-of"], "connaudit");
    // The object has apiVersion, kind, metadata and spec only (the CRD's schema), and its spec
    // is a Prometheus rule file.
    let keys: BTreeSet<&str> = rule.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, BTreeSet::from(["apiVersion", "kind", "metadata", "spec"]));
    let dir = tempfile::tempdir()?;
    std::fs::copy(repo().join("deploy/k8s/monitoring/rules.test.yaml"), dir.path().join("rules.test.yaml"))?;
    let spec = serde_json::to_string(&rule["spec"])?; // JSON is YAML
    std::fs::write(dir.path().join("rules.yaml"), &spec)?;
    let (ok, said) = promtool(dir.path())?;
    assert!(ok, "{said}");
    // Every alert's runbook names the audit that explains it, as a command the binary takes.
    let mut alerts = 0;
    for group in rule["spec"]["groups"].as_array().unwrap() {
        for r in group["rules"].as_array().unwrap().iter().filter(|r| r.get("alert").is_some()) {
            alerts += 1;
            let runbook = r["annotations"]["runbook"].as_str().unwrap_or_default();
            assert!(runbook.contains("connaudit audit "), "{r}");
            for audit in runbook.split("connaudit audit ").skip(1).map(|s| s.split_whitespace().next().unwrap()) {
                let out = Command::new(connaudit_bin()?).args(["audit", audit, "--help"]).output()?;
                assert!(out.status.success(), "`connaudit audit {audit}` in {r}");
            }
        }
    }
    assert_eq!(alerts, 4);
    // The checks can fail: a misspelt field, and an alert that no longer fires as tested.
    std::fs::write(dir.path().join("rules.yaml"), spec.replacen("\"expr\"", "\"exr\"", 1))?;
    assert!(!promtool(dir.path())?.0, "promtool missed an unknown field");
    std::fs::write(dir.path().join("rules.yaml"), spec.replacen("> 0.25", "> 0.5", 1))?;
    assert!(!promtool(dir.path())?.0, "promtool's tests missed a changed threshold");
    Ok(())
}
