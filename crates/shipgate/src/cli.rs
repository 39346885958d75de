//! The command line: `serve | sandbox | migrate | openapi | tenant | api-key | rotate-keys |
//! retention`.
//! `tenant create` and `api-key create` print the new id / key as the last line of
//! stdout; scripts rely on that (docs/product.md "Running it").

use std::net::SocketAddr;
use std::process::ExitCode;

use std::str::FromStr as _;
use std::time::Duration;

use clap::{Parser, Subcommand};
use secrecy::ExposeSecret;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions as _, Connection as _};

use crate::app::AppState;
use crate::config::{Config, ConfigError};
use crate::{http, ids, runtime, store, telemetry};

#[derive(Parser)]
#[command(name = "shipgate", version, about = "Multi-carrier shipment integration gateway")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API (needs DATABASE_URL and SHIPGATE_MASTER_KEY).
    Serve {
        /// Address to listen on (overrides SHIPGATE_LISTEN).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Do not apply pending migrations at start.
        #[arg(long)]
        no_migrate: bool,
    },
    /// The whole product on this machine: private Postgres, carrier simulators, demo tenant.
    Sandbox {
        /// Address to listen on (overrides SHIPGATE_LISTEN).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Where the private Postgres, the sandbox's master key and its simulators' state live.
        #[arg(long, default_value = ".shipgate")]
        data_dir: std::path::PathBuf,
        /// Move every simulated e-Courier order one step every N seconds (0: only on request).
        #[arg(long, default_value_t = 30)]
        sim_clock_secs: u64,
    },
    /// Apply pending database migrations.
    Migrate,
    /// Print the OpenAPI document.
    Openapi,
    /// Manage tenants.
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Manage API keys.
    ApiKey {
        #[command(subcommand)]
        command: ApiKeyCommand,
    },
    /// Re-encrypt every stored secret still under an older master key with the current
    /// one, online (SHIPGATE_MASTER_KEY new, SHIPGATE_PREVIOUS_MASTER_KEYS old); prints
    /// how many were rewritten as the last line.
    RotateKeys,
    /// Keep the monthly partitions now, as housekeeping does every few minutes: create
    /// the next months, drop the months past their retention (exchange_retention_days,
    /// outbound_event_retention_days, tracking_event_retention_days), count the rows in
    /// the default partitions; prints one line per table.
    Retention,
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Create a tenant; prints its id as the last line.
    Create { name: String },
}

#[derive(Subcommand)]
enum ApiKeyCommand {
    /// Create an API key; prints the key (shown once) as the last line.
    Create {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        name: Option<String>,
    },
    /// Revoke an API key by its id (the part after `sg_<env>_`).
    Revoke { id: String },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Openapi = cli.command {
        return match http::openapi().to_pretty_json() {
            Ok(doc) => print_document(&doc),
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let config = match Config::load() {
        Ok(c) => c,
        Err(e) => return config_failure(&e),
    };
    telemetry::init(config.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli.command, config));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => match e.downcast_ref::<ConfigError>() {
            Some(ce) => config_failure(ce),
            None => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

/// Write the document to stdout. A reader that stops early (`shipgate openapi | head`)
/// closes the pipe: that ends the command quietly, it is not an error (`println!`
/// would panic on it).
fn print_document(doc: &str) -> ExitCode {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(doc.as_bytes()).and_then(|()| out.write_all(b"\n")).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: cannot write the document: {e}");
            ExitCode::FAILURE
        }
    }
}

fn config_failure(e: &ConfigError) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(2)
}

/// How long the first connection may take before the database counts as unreachable.
const FIRST_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The pool, after one direct connection that, when it fails, says which server and
/// why (refused, no answer, authentication, no such database) instead of the pool's
/// "pool timed out".
async fn pool(config: &Config) -> anyhow::Result<sqlx::PgPool> {
    let url = config.require_database_url()?;
    let opts = PgConnectOptions::from_str(url.expose_secret())?;
    let target = format!(
        "{}@{}:{}/{}",
        opts.get_username(),
        opts.get_host(),
        opts.get_port(),
        opts.get_database().unwrap_or(opts.get_username())
    );
    match tokio::time::timeout(FIRST_CONNECT_TIMEOUT, opts.connect()).await {
        Err(_) => anyhow::bail!(
            "cannot reach the database {target} (DATABASE_URL): no answer within {} s \
             (wrong host or port, the host is down, or a firewall drops the connection)",
            FIRST_CONNECT_TIMEOUT.as_secs()
        ),
        Ok(Err(e)) => anyhow::bail!("cannot connect to the database {target} (DATABASE_URL): {}", why(&e)),
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
        }
    }
    store::connect(url.expose_secret(), config.database_max_connections).await
}

/// Why a connection failed, in words (Postgres error codes: PostgreSQL manual,
/// appendix A "PostgreSQL Error Codes").
fn why(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            "connection refused (nothing listens there: is Postgres running, on this host and port?)".to_owned()
        }
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => {
            "the connection timed out (host down or a firewall)".to_owned()
        }
        sqlx::Error::Io(io) => format!("network error: {io}"),
        sqlx::Error::Tls(t) => format!("TLS failed: {t}"),
        sqlx::Error::Database(db) => match db.code().as_deref() {
            Some("28P01") => format!("authentication failed: {}", db.message()),
            Some("28000") => format!("the server refused this user or host (pg_hba.conf): {}", db.message()),
            Some("3D000") => format!("{} (create it, or fix the name in the URL)", db.message()),
            Some("53300") => "the server has no connection slots left (too many connections)".to_owned(),
            _ => db.message().to_owned(),
        },
        other => other.to_string(),
    }
}

async fn run(command: Command, mut config: Config) -> anyhow::Result<()> {
    match command {
        Command::Openapi => Ok(()),
        Command::Serve { listen, no_migrate } => {
            if let Some(l) = listen {
                config.listen = l;
            }
            config.require_master_key()?;
            let db = pool(&config).await?;
            if config.migrate_on_start && !no_migrate {
                store::MIGRATOR.run(&db).await?;
            }
            let listener = tokio::net::TcpListener::bind(config.listen).await?;
            let state = AppState::new(db, config)?;
            runtime::spawn_housekeeping(state.clone());
            let workers = runtime::spawn_workers(&state);
            tracing::info!(addr = %listener.local_addr()?, "shipgate listening");
            runtime::serve(listener, runtime::router(state), workers).await
        }
        Command::Sandbox { listen, data_dir, sim_clock_secs } => {
            if let Some(l) = listen {
                config.listen = l;
            }
            crate::sandbox::run(config, &data_dir, sim_clock_secs).await
        }
        Command::Migrate => {
            let db = pool(&config).await?;
            store::MIGRATOR.run(&db).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Tenant { command: TenantCommand::Create { name } } => {
            if name.trim().is_empty() || name.len() > 200 {
                anyhow::bail!("tenant name must be 1-200 characters");
            }
            let db = pool(&config).await?;
            let id = ids::new_id("ten");
            let mut conn = db.acquire().await?;
            store::tenants::insert_tenant(&mut conn, &id, name.trim()).await?;
            println!("tenant {name:?} created");
            println!("{id}");
            Ok(())
        }
        Command::ApiKey { command: ApiKeyCommand::Create { tenant, name } } => {
            let db = pool(&config).await?;
            let (id, key) =
                crate::service::auth::create_key(&db, &tenant, &config.api_key_env, name.as_deref()).await?;
            println!("api key {id} created for tenant {tenant}; it is shown only once");
            println!("{}", key.expose_secret());
            Ok(())
        }
        Command::RotateKeys => {
            config.require_master_key()?;
            let db = pool(&config).await?;
            let state = AppState::new(db, config)?;
            let r = crate::service::rotation::rotate_all(&state).await?;
            println!(
                "re-encrypted {} secret(s) with master key {}; {} changed meanwhile (already current), {} undecryptable",
                r.rewritten,
                state.crypto.current_id(),
                r.skipped,
                r.undecryptable
            );
            println!("{}", r.rewritten);
            Ok(())
        }
        Command::Retention => {
            let db = pool(&config).await?;
            let reports = crate::service::retention::maintain(&db, &config, chrono::Utc::now()).await;
            let mut failed = 0;
            for r in &reports {
                println!(
                    "{}: retention {} days; created {:?}; dropped {:?} in {} ms; {} deliveries deleted in {} ms; \
                     default partition {} rows ({} past retention); {} ms",
                    r.table,
                    r.retention_days,
                    r.created,
                    r.dropped,
                    r.dropping.as_millis(),
                    r.deliveries_deleted,
                    r.deleting_deliveries.as_millis(),
                    r.default_rows,
                    r.default_rows_past_retention,
                    r.took.as_millis()
                );
                for e in &r.errors {
                    eprintln!("{}: {e}", r.table);
                    failed += 1;
                }
            }
            if failed > 0 {
                anyhow::bail!("{failed} partition change(s) failed; the next run tries again");
            }
            Ok(())
        }
        Command::ApiKey { command: ApiKeyCommand::Revoke { id } } => {
            let db = pool(&config).await?;
            let mut conn = db.acquire().await?;
            if store::tenants::revoke_api_key(&mut conn, &id).await? {
                println!("api key {id} revoked");
                Ok(())
            } else {
                anyhow::bail!("no api key {id}")
            }
        }
    }
}
