//! `writ serve`: turns the validated configuration into a running server (backend, engine, API,
//! optional MCP gateway, alerts and their webhook, TLS) and checkpoints changed stores once requests are done.
//!
//! Invariant: the checkpoint of changed stores runs only after the server has stopped taking
//! requests (SIGINT or SIGTERM), so it never races a write.
//! Must not import `index` or `eval`; of `store` it names only the backends it opens.

pub(super) fn serve(args: crate::config::Args) -> anyhow::Result<()> {
    args.log_format.install();
    let config = crate::config::Config::from_args(args)?;
    match &config.auth {
        crate::api::Auth::None => {
            tracing::warn!("--auth none: no authentication is enforced; every caller may do everything")
        }
        crate::api::Auth::Preshared(keys) => tracing::info!(keys = keys.len(), "--auth preshared"),
        crate::api::Auth::With(authenticator) => tracing::info!(?authenticator, "authenticated"),
    }
    let backend: Box<dyn crate::store::TupleStore> = match (&config.datastore, &config.data_dir) {
        (Some(url), _) => Box::new(crate::store::PostgresStore::open(url.expose())?),
        (None, Some(dir)) => Box::new(crate::store::SledStore::open(dir)?),
        (None, None) => Box::new(crate::store::MemoryStore::new()),
    };
    let engine = std::sync::Arc::new(crate::Engine::open(backend, config.engine)?);
    if let Some(store_id) = &config.authzen_store {
        if engine.get_store(store_id).is_err() {
            tracing::warn!(store = %store_id, "--authzen-store names no existing store; root AuthZEN routes answer 404");
        }
    }
    if let Some(interval) = config.expiry_sweep_interval {
        crate::engine::spawn_expiry_sweeper(&engine, interval)?;
    }
    let runtime = tokio::runtime::Runtime::new()?;
    if let Some(alerts) = config.alerts.clone() {
        engine.alerts().start(alerts)?;
        tracing::info!("alerts computed from the decision stream");
    }
    let alert_webhook = match config.alert_webhook.clone() {
        // The webhook's delivery task runs on the server's runtime.
        Some(settings) => Some(runtime.block_on(async { crate::api::AlertWebhook::start(engine.alerts(), settings) })?),
        None => None,
    };
    let router_config = crate::api::RouterConfig { alert_webhook, ..config.router_config() };
    let app = crate::api::router_with_config(engine.clone(), router_config);
    let tls = config.tls.as_ref().map(crate::api::serve::tls_config).transpose()?;
    let gateway_config = match &config.gateway {
        Some(path) => Some(crate::gateway::read_config(path, &|name| std::env::var(name).ok())?),
        None => None,
    };
    let gateway_engine = engine.clone();
    runtime.block_on(async move {
        let app = match gateway_config {
            Some(gateway_config) => {
                let options = crate::gateway::GatewayOptions { max_body_bytes: config.api.max_body_bytes };
                let servers = gateway_config.servers.len();
                let gateway = crate::gateway::Gateway::start(gateway_config, gateway_engine, options).await?;
                tracing::info!(servers, "gateway mounted at /mcp/{{server}}");
                app.merge(gateway.router())
            }
            None => app,
        };
        let listener = std::net::TcpListener::bind(config.listen)
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
        tracing::info!(address = %config.listen, data_dir = ?config.data_dir, postgres = config.datastore.is_some(), tls = tls.is_some(), "listening");
        crate::api::serve::serve(listener, app, tls, shutdown_signal()).await?;
        Ok::<_, anyhow::Error>(())
    })?;
    // Requests are done: pack large changed stores so the next start reads a few big rows.
    let started = std::time::Instant::now();
    match engine.checkpoints().checkpoint_changed() {
        Ok(0) => {}
        Ok(n) => tracing::info!(stores = n, seconds = started.elapsed().as_secs_f64(), "checkpointed"),
        Err(error) => tracing::warn!(%error, "checkpoint not written"),
    }
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
