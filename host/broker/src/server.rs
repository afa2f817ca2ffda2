//! Starting and stopping a node: bind the listeners, open the node, write
//! `ports.json` once traffic is accepted, serve HTTP connections under a
//! connection limit, run retention, and on shutdown stop accepting and let
//! every stream writer sync what it holds.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::node::Node;
use crate::options::NodeOptions;

/// A running node: its bound addresses and the handle to stop it.
pub struct Running {
    pub node: Arc<Node>,
    pub http_addr: SocketAddr,
    pub mqtt_addr: SocketAddr,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Binds, opens and starts serving. Returns once traffic is accepted and
/// `ports.json` is written.
pub async fn start(options: NodeOptions) -> anyhow::Result<Running> {
    let bind = |what: &'static str, addr: SocketAddr| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen for {what} on {addr}: {e}"))
    };
    let http = bind("HTTP", options.http_listen).await?;
    let mqtt = bind("MQTT", options.mqtt_listen).await?;
    let mqtt_tls = match &options.mqtt.tls {
        Some(t) => Some((
            bind("MQTT over TLS", t.listen).await?,
            crate::mqtt::tls_acceptor(&t.cert_chain_pem, &t.key_pem)?,
        )),
        None => None,
    };
    let mqtt_ws = match options.mqtt.ws_listen {
        Some(a) => Some(bind("MQTT over WebSocket", a).await?),
        None => None,
    };
    let node = Node::open(options.clone()).await?;
    let mut ports: BTreeMap<&str, String> = BTreeMap::new();
    let http_addr = http.local_addr()?;
    let mqtt_addr = mqtt.local_addr()?;
    ports.insert("http", http_addr.to_string());
    ports.insert("mqtt", mqtt_addr.to_string());
    let (stop, stopped) = watch::channel(false);
    let mut tasks = vec![
        tokio::spawn(serve_http(node.clone(), http, stopped.clone())),
        tokio::spawn(crate::mqtt::serve(
            node.clone(),
            mqtt,
            crate::mqtt::Transport::Tcp,
            stopped.clone(),
        )),
        tokio::spawn(run_retention(node.clone(), stopped.clone())),
    ];
    if let Some((listener, acceptor)) = mqtt_tls {
        ports.insert("mqtt_tls", listener.local_addr()?.to_string());
        tasks.push(tokio::spawn(crate::mqtt::serve(
            node.clone(),
            listener,
            crate::mqtt::Transport::Tls(acceptor),
            stopped.clone(),
        )));
    }
    if let Some(listener) = mqtt_ws {
        ports.insert("mqtt_ws", listener.local_addr()?.to_string());
        tasks.push(tokio::spawn(crate::mqtt::serve(
            node.clone(),
            listener,
            crate::mqtt::Transport::WebSocket,
            stopped.clone(),
        )));
    }
    write_ports(&options, &ports)?;
    tracing::info!(?ports, data_dir = %options.data_dir.display(), "sluice node accepting traffic");
    Ok(Running {
        node,
        http_addr,
        mqtt_addr,
        stop,
        tasks,
    })
}

impl Running {
    /// Stops accepting, then lets every writer finish and sync what it holds.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        let node = self.node.clone();
        let _ = tokio::task::spawn_blocking(move || node.shutdown()).await;
        let _ = std::fs::remove_file(self.node.options.data_dir.join("ports.json"));
        tracing::info!("sluice node stopped");
    }
}

/// Writes the bound addresses atomically (temp file + rename), so a reader
/// never sees half a file.
fn write_ports(options: &NodeOptions, ports: &BTreeMap<&str, String>) -> anyhow::Result<()> {
    let tmp = options.data_dir.join("ports.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(ports)?)?;
    std::fs::rename(&tmp, options.data_dir.join("ports.json"))?;
    Ok(())
}

async fn serve_http(node: Arc<Node>, listener: TcpListener, mut stopped: watch::Receiver<bool>) {
    let permits = Arc::new(Semaphore::new(node.options.limits.http_connections_max));
    loop {
        // Take a permit before accepting: past the limit, clients wait in the
        // kernel's backlog instead of costing us memory (mini-redis does this).
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.expect("semaphore never closed"),
            _ = stopped.changed() => return,
        };
        let (socket, _) = tokio::select! {
            r = listener.accept() => match r {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped.changed() => return,
        };
        let _ = socket.set_nodelay(true);
        let node = node.clone();
        let mut conn_stopped = stopped.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let node = node.clone();
                async move {
                    Ok::<_, std::convert::Infallible>(crate::http_api::handle(node, req).await)
                }
            });
            let conn = http1::Builder::new().serve_connection(TokioIo::new(socket), service);
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "http connection ended with an error");
                    }
                }
                _ = conn_stopped.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
                }
            }
            drop(permit);
        });
    }
}

async fn run_retention(node: Arc<Node>, mut stopped: watch::Receiver<bool>) {
    let mut interval = tokio::time::interval(Duration::from_millis(
        node.options.retention_check_ms.max(10),
    ));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stopped.changed() => return,
        }
        let n = node.clone();
        let _ = tokio::task::spawn_blocking(move || n.enforce_retention()).await;
    }
}
