//! The MQTT listener: accepts TCP connections under a connection limit and
//! runs one [`super::task::Task`] per connection; also publishes `$SYS/`
//! statistics and expires offline sessions.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sluice_core::{Message, TopicName};
use sluice_mqtt::QoS;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::node::Node;

/// Listener-wide counters, for `$SYS/` and `/metrics`.
#[derive(Debug, Default)]
pub struct ListenerStats {
    pub connections_accepted: AtomicU64,
    pub connections_refused: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub publishes_in: AtomicU64,
}

/// How bytes reach MQTT on a listener.
#[derive(Clone)]
pub enum Transport {
    Tcp,
    Tls(tokio_rustls::TlsAcceptor),
    /// WebSocket with the `mqtt` subprotocol (MQTT 5 §6), binary frames.
    WebSocket,
}

impl Transport {
    fn name(&self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Tls(_) => "tls",
            Transport::WebSocket => "websocket",
        }
    }
}

/// How long a client may take over the TLS or WebSocket handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes buffered between a WebSocket and its MQTT task, each way.
const WS_PIPE_BYTES: usize = 64 * 1024;

/// Builds the TLS acceptor from PEM; errors name what is wrong.
pub fn tls_acceptor(
    cert_chain_pem: &[u8],
    key_pem: &[u8],
) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_chain_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("TLS certificate: {e}"))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "TLS certificate file holds no certificate"
    );
    let key =
        PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| anyhow::anyhow!("TLS key: {e}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| anyhow::anyhow!("TLS certificate and key do not fit together: {e}"))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Accepts MQTT connections until `stopped` flips.
pub async fn serve(
    node: Arc<Node>,
    listener: TcpListener,
    transport: Transport,
    mut stopped: watch::Receiver<bool>,
) {
    let stats = node.mqtt_stats.clone();
    // One limit across every MQTT listener of the node.
    let permits = node.mqtt_permits.clone();
    if matches!(transport, Transport::Tcp) {
        tokio::spawn(housekeeping(node.clone(), Instant::now(), stopped.clone()));
    }
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.expect("semaphore never closed"),
            _ = stopped.changed() => break,
        };
        let socket = tokio::select! {
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(error = %e, transport = transport.name(), "mqtt accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped.changed() => break,
        };
        let _ = socket.set_nodelay(true);
        let (node, stats) = (node.clone(), stats.clone());
        // One spawn per transport: a single `async` block over all three
        // would make every plain TCP connection's task as large as a TLS
        // one's (rustls state included).
        match &transport {
            Transport::Tcp => {
                tokio::spawn(async move {
                    super::task::Task::new(node, stats, socket).run().await;
                    drop(permit);
                });
            }
            Transport::Tls(acceptor) => {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(socket)).await {
                        Ok(Ok(tls)) => super::task::Task::new(node, stats, tls).run().await,
                        Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!("TLS handshake timed out"),
                    }
                    drop(permit);
                });
            }
            Transport::WebSocket => {
                tokio::spawn(async move {
                    serve_websocket(node, stats, socket).await;
                    drop(permit);
                });
            }
        }
    }
    node.router.shutdown_all();
}

/// Upgrades to WebSocket (insisting on the `mqtt` subprotocol when the
/// client offers any) and pipes binary frames to and from an MQTT task.
async fn serve_websocket(
    node: Arc<Node>,
    stats: Arc<ListenerStats>,
    socket: tokio::net::TcpStream,
) {
    use futures_util::{SinkExt, StreamExt};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_tungstenite::tungstenite::Message as Ws;
    use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
    use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};

    // The signature is tungstenite's callback type; its error is a whole HTTP response.
    #[allow(clippy::result_large_err)]
    let pick_mqtt = |req: &Request, mut resp: Response| -> Result<Response, ErrorResponse> {
        let offered = req
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if offered.split(',').any(|p| p.trim() == "mqtt") {
            resp.headers_mut()
                .insert("sec-websocket-protocol", HeaderValue::from_static("mqtt"));
            Ok(resp)
        } else {
            let mut refusal = ErrorResponse::new(Some(
                "this endpoint speaks the `mqtt` WebSocket subprotocol".into(),
            ));
            *refusal.status_mut() = StatusCode::BAD_REQUEST;
            Err(refusal)
        }
    };
    let ws = match tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        tokio_tungstenite::accept_hdr_async(socket, pick_mqtt),
    )
    .await
    {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => return tracing::debug!(error = %e, "WebSocket handshake failed"),
        Err(_) => return tracing::debug!("WebSocket handshake timed out"),
    };
    let (mqtt_side, pipe_side) = tokio::io::duplex(WS_PIPE_BYTES);
    let task = tokio::spawn(super::task::Task::new(node, stats, mqtt_side).run());
    let (mut ws_tx, mut ws_rx) = ws.split();
    let (mut pipe_rx, mut pipe_tx) = tokio::io::split(pipe_side);
    let inbound = async {
        while let Some(Ok(frame)) = ws_rx.next().await {
            match frame {
                Ws::Binary(b) if pipe_tx.write_all(&b).await.is_err() => break,
                Ws::Close(_) => break,
                _ => {}
            }
        }
        let _ = pipe_tx.shutdown().await;
    };
    let outbound = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match pipe_rx.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if ws_tx
                        .send(Ws::Binary(buf[..n].to_vec().into()))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
        let _ = ws_tx.close().await;
    };
    tokio::select! {
        _ = inbound => {}
        _ = outbound => {}
    }
    // Whichever side ended, close the pipe both ways so the MQTT task sees
    // end of file (and a blocked write fails) instead of waiting forever.
    drop(pipe_tx);
    drop(pipe_rx);
    let _ = task.await;
}

/// `$SYS/` statistics (retained, like Mosquitto's) and session expiry.
async fn housekeeping(node: Arc<Node>, started: Instant, mut stopped: watch::Receiver<bool>) {
    let every = node.options.mqtt.sys_interval_ms;
    let mut interval =
        tokio::time::interval(Duration::from_millis(if every == 0 { 1000 } else { every }));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stopped.changed() => return,
        }
        let expired = node.router.expire_sessions(Instant::now());
        if !expired.is_empty() {
            let writes = expired
                .into_iter()
                .map(|client| crate::meta::MetaWrite::DeleteSession { client })
                .collect();
            if let Err(e) = node.meta.apply(writes).await {
                tracing::error!(error = %e, "could not drop expired MQTT sessions from the store");
            }
        }
        if every == 0 {
            continue;
        }
        let s = &node.mqtt_stats;
        let r = &node.router.stats;
        let values: [(&str, u64); 11] = [
            ("$SYS/broker/uptime", started.elapsed().as_secs()),
            (
                "$SYS/broker/clients/connected",
                node.router.connected_clients() as u64,
            ),
            ("$SYS/broker/clients/total", node.router.sessions() as u64),
            (
                "$SYS/broker/connections/accepted",
                s.connections_accepted.load(Relaxed),
            ),
            (
                "$SYS/broker/messages/received",
                s.publishes_in.load(Relaxed),
            ),
            ("$SYS/broker/messages/sent", r.deliveries.load(Relaxed)),
            (
                "$SYS/broker/messages/dropped",
                r.dropped_queue_full.load(Relaxed),
            ),
            ("$SYS/broker/messages/spilled", r.spilled.load(Relaxed)),
            (
                "$SYS/broker/messages/publisher_waits",
                r.publisher_waits.load(Relaxed),
            ),
            ("$SYS/broker/bytes/received", s.bytes_in.load(Relaxed)),
            ("$SYS/broker/bytes/sent", s.bytes_out.load(Relaxed)),
        ];
        for (topic, value) in values {
            let msg = Message {
                topic: TopicName::new(topic).expect("literal topic"),
                key: None,
                headers: Vec::new(),
                content_type: None,
                msg_id: None,
                payload: Bytes::from(value.to_string()),
                timestamp_ms: crate::stream::now_ms(),
                mqtt: Default::default(),
            };
            node.router.retain(&msg, QoS::AtMostOnce);
            node.router.route(&msg, QoS::AtMostOnce, true, None, |_| ());
        }
    }
}
