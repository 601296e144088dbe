//! The `connaudit` command: parses the command line and hands over to the stage crates.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use connaudit_service::shutdown_on_signal;

/// jemalloc instead of glibc's malloc, as Vector does: glibc keeps the freed column buffers of
/// every batch in per-thread arenas (docs/PERFORMANCE.md, "memory").
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// An argument that begins with a SQL comment (`-- ...`, as the dashboard's panels and the
/// audits' `--show-sql` do) is SQL, not a flag: no flag has a space after its `--`. A leading
/// space makes clap take it as a value; SQL ignores it.
fn sql_comment_as_value(arg: std::ffi::OsString) -> std::ffi::OsString {
    match arg.to_str() {
        Some(text) if text.strip_prefix("--").and_then(|rest| rest.chars().next()).is_some_and(char::is_whitespace) => {
            format!(" {text}").into()
        }
        _ => arg,
    }
}

#[derive(Parser)]
#[command(name = "connaudit", version, about = "MQTT client lifecycle events into an audit warehouse.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Bridge the broker's client-event topics (and POST /events) into Kafka.
    Ingest(connaudit_ingest::IngestArgs),
    /// Read the events topic and write the Delta warehouse and its analytics, exactly once.
    Transform(connaudit_transform::TransformArgs),
    /// Merge the small files of closed warehouse partitions into one per partition.
    Compact(connaudit_warehouse::CompactArgs),
    /// Erase one client's rows (a privacy request) from every table that holds a client id.
    Forget(connaudit_warehouse::ForgetArgs),
    /// Run SQL over the warehouse (a statement, a file, or an interactive prompt).
    Query(connaudit_query::QueryArgs),
    /// Answer the everyday questions: a client's timeline, failures, reasons, flapping, alerts.
    Audit(connaudit_query::AuditArgs),
    /// Serve the warehouse over the PostgreSQL protocol, read-only, for Grafana, Metabase and other BI tools.
    Serve(connaudit_serve::ServeArgs),
    /// Publish a simulated fleet's client events to a broker (or ingest's /events), with its ground truth.
    Simulate(connaudit_demo::SimulateArgs),
    /// Run the whole pipeline on embedded brokers with a simulated fleet, and show the answers.
    Demo(connaudit_demo::DemoArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse_from(std::env::args_os().map(sql_comment_as_value));
    // The demo and the simulator draw progress bars; only warnings interrupt them. The
    // embedded rumqttd logs every probe of its port as an error.
    let quiet = matches!(cli.command, Command::Demo(_) | Command::Simulate(_));
    // delta-rs and its kernel log every snapshot they build at info.
    init_tracing(if quiet {
        "warn,rumqttd=off"
    } else {
        "info,rdkafka=warn,buoyant_kernel=warn,deltalake_core=warn,pgwire=warn,datafusion_postgres=warn"
    });
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        match cli.command {
            Command::Ingest(args) => match args.into_config() {
                Ok(config) => service(
                    "Ingest",
                    connaudit_ingest::run(config, shutdown_on_signal()).await,
                    connaudit_ingest::Error::is_user_error,
                ),
                Err(e) => user_error(&e.to_string()),
            },
            Command::Transform(args) => match args.into_config() {
                Ok(config) => service(
                    "Transform",
                    connaudit_transform::run(config, shutdown_on_signal()).await,
                    connaudit_transform::Error::is_user_error,
                ),
                Err(e) => user_error(&e.to_string()),
            },
            Command::Forget(args) => match args.run().await {
                Ok((erased, deleted)) => {
                    for e in &erased {
                        println!("{}\t{} rows erased", e.table, e.rows);
                    }
                    eprintln!(
                        "Erased {} rows; deleted {deleted} files no version needs (the erased rows' files go once older than --retain).",
                        erased.iter().map(|e| e.rows).sum::<u64>()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) if e.is_user_error() => user_error(&e.to_string()),
                Err(e) => failure("Forget", &e),
            },
            Command::Compact(args) => match args.run().await {
                Ok(done) if done.failed.is_empty() => {
                    for (table, rows) in &done.expired {
                        eprintln!("{table}: {rows} rows past retention removed.");
                    }
                    eprintln!(
                        "Merged {} files in {} partitions; deleted {} unreferenced files.",
                        done.files, done.partitions, done.deleted
                    );
                    ExitCode::SUCCESS
                }
                Ok(done) => {
                    for (partition, why) in &done.failed {
                        eprintln!("error: cannot merge {partition}: {why}");
                    }
                    eprintln!(
                        "Merged {} files in {} partitions; {} partitions failed (run it again).",
                        done.files,
                        done.partitions,
                        done.failed.len()
                    );
                    ExitCode::FAILURE
                }
                Err(e) if e.is_user_error() => user_error(&e.to_string()),
                Err(e) => failure("Compact", &e),
            },
            Command::Serve(args) => match args.into_config() {
                Ok(config) => service(
                    "Serve",
                    connaudit_serve::run(config, shutdown_on_signal()).await,
                    connaudit_serve::Error::is_user_error,
                ),
                Err(e) => user_error(&e.to_string()),
            },
            Command::Query(args) => exit(connaudit_query::query(args).await, connaudit_query::Error::is_user_error),
            Command::Audit(args) => exit(connaudit_query::audit(args).await, connaudit_query::Error::is_user_error),
            Command::Simulate(args) => exit(
                connaudit_demo::simulate(args, shutdown_on_signal()).await.map(drop),
                connaudit_demo::Error::is_user_error,
            ),
            Command::Demo(args) => {
                exit(connaudit_demo::demo(args, shutdown_on_signal()).await, connaudit_demo::Error::is_user_error)
            }
        }
    })
}

/// A service's end: 0 after SIGTERM, 2 with the user's error, 1 (logged) for a failure.
fn service<E: std::fmt::Display>(what: &str, result: Result<(), E>, is_user_error: fn(&E) -> bool) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_user_error(&e) => user_error(&e.to_string()),
        Err(e) => failure(what, &e),
    }
}

fn failure(what: &str, e: &dyn std::fmt::Display) -> ExitCode {
    tracing::error!(error = %e, "{what} failed.");
    ExitCode::FAILURE
}

/// The commands a person runs by hand print errors as they are: exit 2 for the user's, 1 for
/// failures.
fn exit<E: std::fmt::Display>(result: Result<(), E>, is_user_error: fn(&E) -> bool) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_user_error(&e) => user_error(&e.to_string()),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn user_error(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(2)
}

/// Logs go to stderr; `RUST_LOG` filters them and `CONNAUDIT_LOG_FORMAT=json` makes them JSON.
fn init_tracing(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let colours = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(colours);
    if std::env::var("CONNAUDIT_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
}
